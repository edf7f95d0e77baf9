// The shell: routes in the browser under /ui/, one page mounted at a time, the caller's
// access loaded first. Deep links work because the server answers every /ui/ path with
// this same page.

import { onUnauthorized, token } from "./api.js";
import { accessNow, forgetAccess, loadAccess } from "./access.js";
import { clear, errorBox, h } from "./dom.js";

const ROUTES = [
  [/^\/ui\/?$/, "jobs", () => ({})],
  [/^\/ui\/jobs\/?$/, "jobs", () => ({})],
  [/^\/ui\/jobs\/([^/]+)\/?$/, "job", (m) => ({ job: m[1] })],
  [/^\/ui\/jobs\/([^/]+)\/versions\/?$/, "job", (m) => ({ job: m[1], tab: "versions" })],
  [/^\/ui\/logs\/?$/, "logs", () => ({})],
  [/^\/ui\/logs\/([^/]+)\/?$/, "logs", (m) => ({ log: m[1] })],
  [/^\/ui\/logs\/([^/]+)\/([^/]+)\/?$/, "logview", (m) => ({ log: m[1], alloc: m[2] })],
  [/^\/ui\/allocs\/([^/]+)\/([^/]+)\/?$/, "logview", (m) => ({ alloc: m[1], task: m[2] })],
  [/^\/ui\/settings\/?$/, "settings", () => ({})],
  [/^\/ui\/events\/?$/, "events", () => ({})],
  [/^\/ui\/secrets\/?$/, "secrets", () => ({})],
  [/^\/ui\/secrets\/([^/]+)\/?$/, "secrets", (m) => ({ secret: m[1] })],
  [/^\/ui\/access\/?$/, "access", () => ({})],
];
// Which top-level nav entry a page belongs to.
const SECTION = { job: "jobs", logview: "logs" };

const main = document.getElementById("main");
const banner = document.getElementById("banner");
let cleanup = null;
let generation = 0;

export function showBanner(message) {
  banner.textContent = message;
  banner.hidden = !message;
}

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

function match(pathname) {
  for (const [pattern, page, params] of ROUTES) {
    const m = pathname.match(pattern);
    if (m) {
      const decoded = params(m);
      for (const key of Object.keys(decoded)) decoded[key] = decodeURIComponent(decoded[key]);
      return { page, params: decoded };
    }
  }
  return null;
}

function markNav(page) {
  const section = SECTION[page] || page;
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    if (link.dataset.page === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function renderWho() {
  const who = document.getElementById("who");
  const access = accessNow();
  clear(who);
  if (!access) return;
  who.append(h("span", {}, access.user), " ", h("span", { class: "muted" }, `(${access.mode}, ${access.namespace})`));
  if (token.get()) {
    who.append(
      " ",
      h("button", {
        type: "button",
        class: "link",
        onclick: () => {
          token.clear();
          forgetAccess();
          navigate("/ui/access");
        },
      }, "Sign out"),
    );
  }
}

// The document says when the page's first view is drawn: <body data-ready="jobs">. A
// headless screenshot (docs/ui.md) or a test waits for it instead of catching "Loading…".
function markReady(mine, page) {
  if (mine === generation) document.body.dataset.ready = page;
}

async function render() {
  const mine = ++generation;
  delete document.body.dataset.ready;
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      console.warn("page cleanup failed", error);
    }
    cleanup = null;
  }
  showBanner("");
  const found = match(location.pathname);
  if (!found) {
    markNav("");
    clear(main, h("h1", {}, "Not found"), h("p", {}, `No page at ${location.pathname}. `, h("a", { href: "/ui/", "data-nav": true }, "Jobs")));
    markReady(mine, "notfound");
    return;
  }
  markNav(found.page);
  // The page's code and the caller's access load side by side, not one after the other.
  const loading = import(`./pages/${found.page}.js`);
  loading.catch(() => {}); // awaited below; an early failure is reported there
  if (found.page !== "access") {
    try {
      await loadAccess();
    } catch (error) {
      if (mine !== generation) return;
      if (error.status === 401) return; // onUnauthorized sends the user to the token page
      clear(main, h("h1", {}, "Caravan"), errorBox(error));
      markReady(mine, found.page);
      return;
    }
  }
  renderWho();
  if (mine !== generation) return;
  // What the page's first view waits for besides its mount (e.g. a live feed's first
  // answer); a failure counts as drawn, since the page then shows the error.
  const firstView = [];
  const waitFor = (promise) => firstView.push(Promise.resolve(promise).catch(() => null));
  let result;
  try {
    const module = await loading;
    if (mine !== generation) return;
    clear(main);
    const query = new URLSearchParams(location.search);
    result = await module.mount(main, found.params, query, { navigate, renderWho, waitFor });
  } catch (error) {
    if (mine !== generation || error.status === 401) return;
    // Whatever failed, the page says so rather than staying blank.
    main.append(errorBox(error));
    markReady(mine, found.page);
    return;
  }
  if (mine !== generation) {
    if (typeof result === "function") result();
    return;
  }
  cleanup = typeof result === "function" ? result : null;
  const heading = main.querySelector("h1");
  if (heading && document.activeElement === document.body) {
    heading.tabIndex = -1;
  }
  await Promise.all(firstView);
  markReady(mine, found.page);
}

// In-app links: same document, history entry, no reload.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
  main.focus({ preventScroll: true });
});

window.addEventListener("popstate", render);

onUnauthorized((error) => {
  if (location.pathname.startsWith("/ui/access")) return;
  forgetAccess();
  const next = location.pathname + location.search;
  navigate(`/ui/access?next=${encodeURIComponent(next)}&why=${encodeURIComponent(error.message)}`, { replace: true });
});

// A page's forgotten promise must still say what went wrong, on the page.
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  if (reason && reason.name === "AbortError") {
    event.preventDefault();
    return;
  }
  if (reason && reason.name === "ApiError") {
    event.preventDefault();
    showBanner(reason.message);
  }
});

render();
