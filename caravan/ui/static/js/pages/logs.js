// Logs: the log definitions (/v1/log/logs); pick one to see its allocations
// (/v1/log/meta/{id}), each linking to its log view.

import { enc, get } from "../api.js";
import { can, deniedNote } from "../access.js";
import { add, age, clear, errorBox, h } from "../dom.js";
import { poll } from "../lib/live.js";

export async function mount(main, { log }, query, { waitFor }) {
  const errors = h("div", { "aria-live": "polite" });
  const list = h("div");
  const metas = h("div");
  add(main, 
    log ? h("p", { class: "crumbs" }, h("a", { href: "/ui/logs", "data-nav": true }, "Logs"), " / ", log) : null,
    h("h1", {}, log ? `Log ${log}` : "Logs"),
    deniedNote(document, ["logs.definitions.read", "allocations.read", "logs.read"]),
    errors,
    list,
    metas,
  );
  let definitions = [];
  try {
    definitions = await get("/v1/log/logs");
  } catch (error) {
    errors.append(errorBox(error));
    return undefined;
  }
  if (!log) {
    if (!definitions.length) {
      list.append(h("p", { class: "muted" }, "No log definitions. POST /v1/log/logs stores them (see docs/loggers.md)."));
      return undefined;
    }
    list.append(
      h(
        "table",
        { class: "defs" },
        h("thead", {}, h("tr", {}, ["Log", "Job", "Task group", "Task", "File", "Log levels"].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          definitions.map((d) =>
            h(
              "tr",
              { dataset: { log: d.id } },
              h("th", { scope: "row" }, h("a", { href: `/ui/logs/${enc(d.id)}`, "data-nav": true }, d.id)),
              h("td", {}, h("a", { href: `/ui/jobs/${enc(d.job)}`, "data-nav": true }, d.job)),
              h("td", {}, d.group),
              h("td", {}, d.task),
              h("td", {}, h("code", {}, d.fileName)),
              h("td", {}, d.logLevel ? "yes" : "no"),
            ),
          ),
        ),
      ),
    );
    return undefined;
  }
  const definition = definitions.find((d) => d.id === log);
  if (!definition) {
    errors.append(errorBox(new Error(`no log '${log}'`)));
    return undefined;
  }
  list.append(
    h("p", {}, `Task ${definition.task} of `, h("a", { href: `/ui/jobs/${enc(definition.job)}`, "data-nav": true }, definition.job), ` / ${definition.group}, file `, h("code", {}, definition.fileName), "."),
  );
  if (!can("allocations.read")) return undefined;
  const draw = (allocs) =>
    clear(
      metas,
      h("h2", {}, "Allocations"),
      allocs.length
        ? h(
            "table",
            { class: "allocs" },
            h("thead", {}, h("tr", {}, ["Allocation", "Status", "Age"].map((t) => h("th", { scope: "col" }, t)))),
            h(
              "tbody",
              {},
              allocs.map((a) =>
                h(
                  "tr",
                  { dataset: { alloc: a.allocID } },
                  h("th", { scope: "row" }, h("a", { href: `/ui/logs/${enc(log)}/${enc(a.allocID)}`, "data-nav": true }, a.allocID)),
                  h("td", {}, h("span", { class: `badge ${a.status}` }, a.status)),
                  h("td", { title: a.createTime }, age(a.createTime)),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No allocations: the job's group is not running."),
    );
  // Allocations come and go: read again every 5 s while the tab is shown.
  const live = poll(`/v1/log/meta/${enc(log)}`, { onData: draw, onError: (error) => clear(metas, errorBox(error)) });
  live.start();
  waitFor(live.first);
  return () => live.stop();
}
