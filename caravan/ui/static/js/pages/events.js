// Events: the map-reduce documents in a JSON editor (422 errors listed at their paths),
// results live from the SSE stream as one table per reduction (latest values per key,
// a sparkline of recent periods), and a form to send a test event.

import { get, post } from "../api.js";
import { can, deniedNote, guard } from "../access.js";
import "../components.js";
import { add, clear, errorBox, field, h } from "../dom.js";
import { stream } from "../lib/live.js";
import { locate } from "../lib/schemaform.js";
import { ResultsTable, SseParser } from "../lib/sse.js";

const OPERATIONS = ["count", "sum", "min", "max", "average"];

function pathParts(path) {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]));
}

function format(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "–" : String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
}

export async function mount(main) {
  const errors = h("div", { "aria-live": "polite" });
  const stored = h("div");
  const editor = h("textarea", { class: "json", rows: 22, spellcheck: "false", "aria-label": "Events documents (JSON)" });
  const paths = h("ul", { class: "paths" });
  const saveStatus = h("span", { role: "status", class: "muted" });
  const save = guard(h("button", { type: "submit", class: "primary" }, "Save documents"), "events.write");
  const results = h("div", { class: "results", "aria-live": "off" });
  const streamStatus = h("span", { class: "muted", role: "status" }, "connecting…");
  const sendResult = h("span", { role: "status", class: "muted" });
  const channel = h("input", { type: "text", required: true, list: "event-channels", autocomplete: "off" });
  const channels = h("datalist", { id: "event-channels" });
  const key = h("input", { type: "text", required: true, placeholder: '["cheer", "red"] or cheer, red' });
  const value = h("input", { type: "text", placeholder: "5, \"e4\", true" });
  const send = guard(h("button", { type: "submit" }, "Send event"), "events.write");

  add(main, 
    h("h1", {}, "Events"),
    deniedNote(document, ["events.write"]),
    errors,
    h(
      "div",
      { class: "split" },
      h(
        "section",
        { "aria-labelledby": "docs-h" },
        h("h2", { id: "docs-h" }, "Documents"),
        stored,
        h("form", { novalidate: true, onsubmit: (e) => saveDocuments(e) }, editor, paths, h("div", { class: "toolbar" }, save, saveStatus)),
      ),
      h(
        "section",
        { "aria-labelledby": "results-h" },
        h("h2", { id: "results-h" }, "Results ", streamStatus),
        results,
        h("h2", {}, "Send a test event"),
        h("form", { class: "send", onsubmit: (e) => sendEvent(e) }, field("Channel", channel), channels, field("Key", key, "A JSON array, or words separated by commas."), field("Value", value, "JSON (a number, a string in quotes…); other text is sent as a string."), h("div", { class: "toolbar" }, send, sendResult)),
      ),
    ),
  );

  let documents = [];
  function showDocuments(view) {
    documents = view.mapreduce;
    editor.value = JSON.stringify({ mapreduce: view.mapreduce }, null, 2);
    clear(stored);
    if (view.errors) stored.append(h("div", { class: "error", role: "alert" }, h("strong", {}, "The stored documents are not running:"), h("pre", {}, view.errors)));
    clear(channels, [...new Set(documents.flatMap((d) => Object.keys((d && d.event) || {})))].map((c) => h("option", { value: c })));
    if (!channel.value && channels.firstChild) channel.value = channels.firstChild.value;
  }
  try {
    showDocuments(await get("/v1/events"));
  } catch (error) {
    errors.append(errorBox(error));
    return undefined;
  }

  async function saveDocuments(event) {
    event.preventDefault();
    clear(paths);
    clear(errors);
    let body;
    try {
      body = JSON.parse(editor.value);
    } catch (error) {
      errors.append(errorBox(new Error(`The JSON is not valid: ${error.message}`)));
      return;
    }
    if (Array.isArray(body)) body = { mapreduce: body };
    try {
      showDocuments(await post("/v1/events", body));
      saveStatus.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
    } catch (error) {
      saveStatus.textContent = "Not saved.";
      errors.append(errorBox(new Error(error.message)));
      for (const detail of error.details) {
        const where = detail && (detail.path || detail.loc);
        if (!where) continue;
        paths.append(
          h("li", { dataset: { path: where } }, h("button", {
            type: "button",
            class: "link",
            onclick: () => {
              const range = locate(editor.value, pathParts(where));
              editor.focus();
              if (range) editor.setSelectionRange(range[0], range[1]);
            },
          }, where), `: ${detail.message || detail.msg || ""}`),
        );
      }
    }
  }

  async function sendEvent(event) {
    event.preventDefault();
    let parsedKey;
    const keyText = key.value.trim();
    try {
      parsedKey = JSON.parse(keyText);
    } catch {
      parsedKey = keyText.split(",").map((s) => s.trim()).filter(Boolean);
    }
    if (!Array.isArray(parsedKey)) parsedKey = [parsedKey];
    let parsedValue;
    try {
      parsedValue = JSON.parse(value.value);
    } catch {
      parsedValue = value.value;
    }
    try {
      const answer = await post("/v1/events/send", { channel: channel.value.trim(), events: [{ key: parsedKey, value: parsedValue }] });
      const reasons = (answer.rejections || []).map((r) => r.reason).join("; ");
      sendResult.textContent = `accepted ${answer.accepted}, unmatched ${answer.unmatched}, rejected ${answer.rejected}${answer.knownChannel ? "" : " (no document defines this channel)"}${reasons ? `: ${reasons}` : ""}`;
    } catch (error) {
      sendResult.textContent = error.message;
    }
  }

  // The operation a reduction asked for first is the one its sparkline shows.
  function trendOf(channelName, id) {
    for (const d of documents) {
      const reductions = (d && d.event && d.event[channelName] && d.event[channelName].reductions) || [];
      const found = reductions.find((r) => r.id === id);
      if (found && Array.isArray(found.value) && found.value.length) return String(found.value[0]).replace(/^\$/, "");
    }
    return "count";
  }

  const table = new ResultsTable();
  const sections = new Map();
  function draw(reduction) {
    const name = `${reduction.channel}/${reduction.id}`;
    let section = sections.get(name);
    if (!section) {
      section = h("section", { class: "reduction", dataset: { reduction: name } });
      sections.set(name, section);
      results.append(section);
    }
    const trend = trendOf(reduction.channel, reduction.id);
    clear(
      section,
      h("h3", {}, `${reduction.channel} · ${reduction.id}`, h("small", { class: "muted" }, ` ${reduction.periods} period${reduction.periods === 1 ? "" : "s"}`)),
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), OPERATIONS.map((op) => h("th", { scope: "col" }, op)), h("th", { scope: "col" }, `${trend}, recent`))),
        h(
          "tbody",
          {},
          [...reduction.keys.values()].map((row) => {
            const line = h("cv-sparkline");
            line.values = row.history.map((v) => (v ? v[trend] : null));
            return h("tr", { dataset: { key: JSON.stringify(row.key) } }, h("th", { scope: "row" }, row.key.join(" · ") || "(no key)"), OPERATIONS.map((op) => h("td", { class: "num", dataset: { op } }, format(row.latest && row.latest[op]))), h("td", {}, line));
          }),
        ),
      ),
    );
  }

  // The results stream (SSE), reopened when it ends; each open starts a new parse.
  let parser = null;
  const following = stream("/v1/events/stream", {
    onOpen: () => {
      streamStatus.textContent = "live";
      parser = new SseParser((message) => {
        if (message.event === "dropped") {
          streamStatus.textContent = `live (${JSON.parse(message.data).dropped} messages dropped: too slow)`;
          return;
        }
        const wire = JSON.parse(message.data);
        if (wire.error) streamStatus.textContent = `live · ${wire.error}`;
        if (wire.value) draw(table.add(JSON.parse(wire.value)));
      });
    },
    onText: (text) => parser.push(text),
    onStatus: (text) => {
      streamStatus.textContent = text;
    },
  });
  if (can("events.read")) following.start();
  return () => following.stop();
}
