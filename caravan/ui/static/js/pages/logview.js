// One allocation's log: the tail (origin=end), optionally followed live, stdout or
// stderr, kept scrolled to the bottom unless the user scrolls up, downloadable whole.
// Where the definition has logLevel, Genvid's two dropdowns: "Default Log Level" (the
// loggerID's defaults) and "Log Level" (this allocation's override, or "use default").

import { del, enc, get, post, request } from "../api.js";
import { can, deniedNote, guard } from "../access.js";
import { actor } from "../act.js";
import { add, clear, errorBox, field, h } from "../dom.js";
import { AGAIN, stream } from "../lib/live.js";

const TAIL_BYTES = 64 * 1024;
const MAX_SHOWN = 2 * 1024 * 1024; // characters kept in the page; older ones are dropped
const LEVELS = ["debug", "info", "warning", "error", "fatal", "panic"];

export async function mount(main, params, query, { navigate, waitFor }) {
  const errors = h("div", { "aria-live": "polite" });
  let definition = null;
  let task = params.task;
  if (params.log) {
    try {
      definition = (await get("/v1/log/logs")).find((d) => d.id === params.log) || null;
    } catch (error) {
      add(main, h("h1", {}, params.alloc), errorBox(error));
      return undefined;
    }
    if (!definition) {
      add(main, h("h1", {}, params.alloc), errorBox(new Error(`no log '${params.log}'`)));
      return undefined;
    }
    task = definition.task;
  }
  const alloc = params.alloc;
  const fs = query.get("fs") === "stderr" ? "stderr" : "stdout";
  const following = query.get("follow") === "1";

  const streamSelect = h("select", {}, ["stdout", "stderr"].map((s) => h("option", { value: s, selected: s === fs }, s)));
  const follow = h("input", { type: "checkbox", checked: following });
  const download = guard(h("button", { type: "button" }, "Download whole log"), "logs.read");
  const bottom = h("button", { type: "button", hidden: true }, "Jump to the end");
  const state = h("span", { class: "muted", role: "status" });
  const text = document.createTextNode("");
  const pre = h("pre", { class: "log", tabindex: "0", "aria-label": `${fs} of ${task} in ${alloc}` }, text);
  const levels = h("section", { "aria-labelledby": "levels-h" });

  const crumbs = definition
    ? [h("a", { href: "/ui/logs", "data-nav": true }, "Logs"), " / ", h("a", { href: `/ui/logs/${enc(definition.id)}`, "data-nav": true }, definition.id), " / ", alloc]
    : [h("a", { href: "/ui/logs", "data-nav": true }, "Logs"), " / ", alloc, " / ", task];
  add(main, 
    h("p", { class: "crumbs" }, crumbs),
    h("h1", {}, definition ? `${definition.id} · ${alloc}` : `${alloc} · ${task}`),
    deniedNote(document, ["logs.read", ...(definition && definition.logLevel ? ["loggers.overrides.write", "loggers.defaults.write"] : [])]),
    errors,
    definition && definition.logLevel ? levels : null,
    h("div", { class: "toolbar" }, h("label", { class: "inline" }, "Stream ", streamSelect), h("label", { class: "inline" }, follow, " Follow"), download, bottom, h("span", { class: "spacer" }), state),
    pre,
  );

  // Address bar = what is shown: stream and follow are part of the deep link.
  const relink = () => {
    const q = new URLSearchParams();
    if (streamSelect.value !== "stdout") q.set("fs", streamSelect.value);
    if (follow.checked) q.set("follow", "1");
    const s = q.toString();
    navigate(location.pathname + (s ? `?${s}` : ""), { replace: true });
  };
  streamSelect.addEventListener("change", relink);
  follow.addEventListener("change", relink);

  // Stay at the bottom unless the reader scrolled up.
  let stick = true;
  pre.addEventListener("scroll", () => {
    stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    bottom.hidden = stick;
  });
  bottom.addEventListener("click", () => {
    stick = true;
    pre.scrollTop = pre.scrollHeight;
    bottom.hidden = true;
  });

  const path = `/v1/log/fs/${enc(alloc)}/${enc(task)}/${fs}`;

  function show(chunk) {
    text.appendData(chunk);
    if (text.length > MAX_SHOWN) text.deleteData(0, text.length - MAX_SHOWN);
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  function opened(response) {
    const combined = response.headers.get("X-Caravan-Log-Stream") === "combined";
    state.textContent = `${following ? "following" : "tail"}${combined ? " · stdout and stderr are combined on this cluster" : ""}`;
  }

  // The tail first. Followed, the stream is reopened when the server ends it (idle
  // streams are closed) with only what comes next, and after a pause while the tab was
  // hidden with the tail again, which replaces the text (nothing is lost or doubled).
  let live = null;
  let opens = 0;
  const fromTail = (cause) => opens === 0 || cause !== AGAIN;
  if (!can("logs.read")) {
    // nothing to read: the note above says why
  } else if (following) {
    live = stream((cause) => `${path}?origin=end&offset=${fromTail(cause) ? TAIL_BYTES : 0}&follow=true`, {
      onOpen: (response, cause) => {
        if (opens > 0 && fromTail(cause)) text.deleteData(0, text.length);
        opens += 1;
        clear(errors);
        opened(response);
      },
      onText: show,
      onError: (error) => clear(errors, errorBox(error)),
      onStatus: (s) => {
        state.textContent = s;
      },
      fatal: (error) => error.status === 401 || error.status === 404,
    });
    live.start();
    waitFor(live.first);
  } else {
    waitFor(readTail());
  }

  async function readTail() {
    try {
      const response = await request("GET", `${path}?origin=end&offset=${TAIL_BYTES}`, { raw: true });
      opened(response);
      show(await response.text());
    } catch (error) {
      clear(errors, errorBox(error));
    }
  }

  download.addEventListener("click", async () => {
    try {
      const response = await request("GET", `${path}?origin=start`, { raw: true });
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: `${alloc}-${task}-${fs}.log` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      clear(errors, errorBox(error));
    }
  });

  if (definition && definition.logLevel) renderLevels(levels, definition.id, alloc, errors);
  return () => {
    if (live) live.stop();
  };
}

async function renderLevels(section, loggerID, alloc, errors) {
  let defaults = {};
  let overrides = {};
  try {
    [defaults, overrides] = await Promise.all([
      get("/v1/log/defaults").then((all) => all[loggerID] || {}),
      can("loggers.overrides.read") ? get(`/v1/log/allocs/${enc(alloc)}`).then((all) => all[loggerID] || {}) : {},
    ]);
  } catch (error) {
    clear(section, errorBox(error));
    return;
  }
  const extra = new Set();
  const draw = () => {
    const loggers = [...new Set([...Object.keys(defaults), ...Object.keys(overrides), ...extra])].sort();
    const rows = loggers.map((logger) => {
      const def = h("select", { dataset: { logger, kind: "default" } }, h("option", { value: "" }, "(not set)"), LEVELS.map((l) => h("option", { value: l, selected: defaults[logger] === l }, l)));
      const own = h("select", { dataset: { logger, kind: "override" } }, h("option", { value: "" }, `use default${defaults[logger] ? ` (${defaults[logger]})` : ""}`), LEVELS.map((l) => h("option", { value: l, selected: overrides[logger] === l }, l)));
      guard(def, "loggers.defaults.write");
      guard(own, "loggers.overrides.write");
      def.addEventListener("change", () => save(async () => {
        const next = { ...defaults };
        if (def.value) next[logger] = def.value;
        else delete next[logger];
        const answer = await post(`/v1/log/defaults/${enc(loggerID)}`, next);
        defaults = answer && typeof answer === "object" ? answer : next; // the loggerID's map
      }));
      own.addEventListener("change", () => save(async () => {
        const next = { ...overrides };
        if (own.value) next[logger] = own.value;
        else delete next[logger];
        const answer = Object.keys(next).length
          ? await post(`/v1/log/allocs/${enc(alloc)}/${enc(loggerID)}`, next)
          : await del(`/v1/log/allocs/${enc(alloc)}/${enc(loggerID)}`);
        overrides = answer && typeof answer === "object" ? answer[loggerID] || {} : next;
      }));
      return h("tr", { dataset: { logger } }, h("th", { scope: "row" }, logger), h("td", {}, field("Default Log Level", def)), h("td", {}, field("Log Level", own)));
    });
    const name = h("input", { type: "text", placeholder: "logger name", pattern: "\\S+", required: true });
    const add = h(
      "form",
      {
        class: "inline-form",
        onsubmit: (event) => {
          event.preventDefault();
          if (name.value.trim()) extra.add(name.value.trim());
          draw();
        },
      },
      field("Add a logger", name),
      h("button", { type: "submit" }, "Add"),
    );
    clear(
      section,
      h("h2", { id: "levels-h" }, "Log levels"),
      h("p", { class: "muted" }, `loggerID ${loggerID}: defaults apply to every allocation; a level set here applies to ${alloc} only.`),
      loggers.length ? h("table", { class: "levels" }, h("tbody", {}, rows)) : h("p", { class: "muted" }, "No logger has a level yet."),
      add,
    );
  };
  const act = actor(errors);
  const save = async (write) => {
    await act(write);
    draw(); // the stored levels, or the previous ones when the write failed
  };
  draw();
}
