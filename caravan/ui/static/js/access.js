// What the caller may do, from GET /v1/access (SubjectAccessReviews on the server).
// Controls the caller may not use are disabled and say why.

import { get } from "./api.js";

let current = null;
let loading = null;
const listeners = new Set();

export async function loadAccess({ force = false } = {}) {
  if (current && !force) return current;
  if (force) current = null; // a failed reload must not leave the previous caller's answer
  loading ||= get("/v1/access").finally(() => {
    loading = null;
  });
  current = await loading;
  listeners.forEach((l) => l(current));
  return current;
}

export function forgetAccess() {
  current = null;
}

export function onAccess(listener) {
  listeners.add(listener);
}

export function accessNow() {
  return current;
}

export function can(action) {
  return Boolean(current && current.actions[action] && current.actions[action].allowed);
}

export function whyNot(action) {
  const entry = current && current.actions[action];
  if (!entry) return "unknown permission";
  return entry.reason || `needs ${entry.needs}`;
}

// Disables `el` unless every action is allowed; its title and aria-description say why.
export function guard(el, ...actions) {
  const denied = actions.filter((a) => !can(a));
  if (denied.length) {
    el.disabled = true;
    const reason = denied.map(whyNot).join("; ");
    el.title = reason;
    el.setAttribute("aria-description", reason);
    el.classList.add("denied");
  }
  return el;
}

// A visible note listing the actions of a page the caller may not use.
export function deniedNote(document, actions) {
  const denied = actions.filter((a) => !can(a));
  if (!denied.length) return null;
  const note = document.createElement("div");
  note.className = "notice";
  note.setAttribute("role", "note");
  note.dataset.denied = denied.join(" ");
  const title = document.createElement("strong");
  title.textContent = "Some controls are disabled for you:";
  const list = document.createElement("ul");
  for (const action of denied) {
    const item = document.createElement("li");
    item.textContent = whyNot(action);
    list.append(item);
  }
  note.append(title, list);
  return note;
}
