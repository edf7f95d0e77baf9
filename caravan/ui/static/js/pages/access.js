// Access: who you are and what you may do (GET /v1/access). Under auth.mode=kubernetes
// it asks for a bearer token, kept in sessionStorage only (gone with the tab).

import { token } from "../api.js";
import { forgetAccess, loadAccess } from "../access.js";
import { add, clear, errorBox, h } from "../dom.js";

export async function mount(main, params, query, { navigate, renderWho }) {
  const next = query.get("next") || "";
  const why = query.get("why");
  const status = h("div", { "aria-live": "polite" });
  const summary = h("div");
  add(main, h("h1", {}, "Access"), status, summary);

  const input = h("input", { type: "password", id: "token", autocomplete: "off", spellcheck: "false", required: true });
  const form = h(
    "form",
    { class: "token" },
    h("h2", {}, "Sign in with a bearer token"),
    h("p", {}, "This Caravan checks every call with Kubernetes (auth.mode=kubernetes): paste a token, e.g. from ", h("code", {}, "kubectl create token <service-account>"), ". It is kept for this tab only."),
    h("div", { class: "field" }, h("label", { for: input.id }, "Bearer token"), input),
    h("div", { class: "toolbar" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    token.set(input.value);
    forgetAccess();
    try {
      await loadAccess({ force: true });
    } catch (error) {
      token.clear();
      clear(status, errorBox(error));
      return;
    }
    renderWho();
    // Only paths of this UI: `next` comes from the address bar.
    navigate(next.startsWith("/ui/") && !next.startsWith("/ui/access") ? next : "/ui/", { replace: true });
  });

  let access;
  try {
    access = await loadAccess({ force: true });
  } catch (error) {
    if (error.status !== 401) {
      clear(status, errorBox(error));
      return undefined;
    }
    if (why && token.get()) status.append(errorBox(new Error(why)));
    else if (why) status.append(h("p", { class: "notice" }, why));
    token.clear();
    renderWho();
    add(main, form);
    input.focus();
    return undefined;
  }
  renderWho();
  summary.append(
    h("p", {}, "Signed in as ", h("strong", {}, access.user), ` in namespace ${access.namespace}; authentication: ${access.mode}${access.mode === "none" ? " (loopback only, every action allowed)" : ""}.`),
    h(
      "table",
      { class: "access" },
      h("caption", {}, "What you may do (SubjectAccessReviews, refreshed every few seconds)"),
      h("thead", {}, h("tr", {}, ["Action", "Kubernetes permission", "Allowed"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        Object.entries(access.actions).map(([id, a]) =>
          h("tr", { dataset: { action: id, allowed: String(a.allowed) } }, h("th", { scope: "row" }, id), h("td", {}, h("code", {}, a.needs)), h("td", { class: a.allowed ? "yes" : "no" }, a.allowed ? "yes" : `no: ${a.reason}`)),
        ),
      ),
    ),
  );
  return undefined;
}
