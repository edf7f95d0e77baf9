// Small DOM helpers: elements built from data (never from HTML strings, so API text is
// always text), and formatting shared by the pages.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// el.append() without the nulls of optional parts (a note shown only when needed).
export function add(el, ...children) {
  append(el, children);
  return el;
}

let ids = 0;
export const uid = (prefix = "cv") => `${prefix}-${++ids}`;

// A labelled control: <label for=...>text</label> + control, ids wired.
export function field(labelText, control, help) {
  control.id ||= uid("f");
  const parts = [h("label", { for: control.id }, labelText), control];
  if (help) {
    const note = h("small", { id: uid("help"), class: "help" }, help);
    control.setAttribute("aria-describedby", note.id);
    parts.push(note);
  }
  return h("div", { class: "field" }, parts);
}

export function age(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (!iso || Number.isNaN(then)) return "–";
  let s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? ` ${s % 60}s` : ""}`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h${m % 60 ? ` ${m % 60}m` : ""}`;
  return `${Math.floor(hours / 24)}d`;
}

export function errorBox(error) {
  const box = h("div", { class: "error", role: "alert" }, h("strong", {}, error.message || String(error)));
  if (error.details && error.details.length) {
    box.append(
      h("ul", {}, error.details.map((d) => h("li", {}, typeof d === "string" ? d : d.path ? `${d.path}: ${d.message}` : JSON.stringify(d)))),
    );
  }
  return box;
}

// A modal confirmation (<dialog>): resolves true only when the user confirms.
export function confirmDialog(title, text, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const ok = h("button", { type: "submit", value: "ok", class: "danger" }, confirmLabel);
    const cancel = h("button", { type: "submit", value: "cancel", formnovalidate: true }, "Cancel");
    const heading = h("h2", { id: uid("dlg") }, title);
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": heading.id },
      h("form", { method: "dialog" }, heading, h("p", {}, text), h("div", { class: "actions" }, cancel, ok)),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

// A task group's problems ({reason, message, allocations}) as badges: the reason and how
// many allocations have it, the message as tooltip and description.
export function problemBadges(problems) {
  return (problems || []).map((p) =>
    h(
      "span",
      { class: "badge problem", title: p.message || p.reason, "aria-label": `${p.reason}${p.allocations ? ` (${p.allocations})` : ""}: ${p.message || ""}`, dataset: { reason: p.reason } },
      p.reason,
      p.allocations > 1 ? ` ×${p.allocations}` : "",
    ),
  );
}
