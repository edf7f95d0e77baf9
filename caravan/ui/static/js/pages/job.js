// One job: its task groups and its allocations (pods) with status, node, age and
// restarts; each allocation links to its logs. Follows the jobs long poll, so a scale
// made elsewhere shows here too.

import { enc, get } from "../api.js";
import { can, deniedNote } from "../access.js";
import "../components.js";
import { add, age, clear, errorBox, h } from "../dom.js";
import { JobsFeed } from "../lib/jobsfeed.js";

export async function mount(main, { job }) {
  const errors = h("div", { "aria-live": "polite" });
  const groups = h("div", { class: "groups" });
  const allocations = h("div", {});
  add(main, 
    h("p", { class: "crumbs" }, h("a", { href: "/ui/", "data-nav": true }, "Jobs"), " / ", job),
    h("h1", {}, job, " ", h("span", { class: "badge", id: "job-status" })),
    deniedNote(document, ["allocations.read", "logs.read"]),
    errors,
    h("h2", {}, "Task groups"),
    groups,
    h("h2", {}, "Allocations"),
    allocations,
  );
  let definitions = [];
  if (can("logs.definitions.read")) {
    try {
      definitions = await get("/v1/log/logs");
    } catch (error) {
      errors.append(errorBox(error));
    }
  }
  let lastAllocations = [];

  function renderJob(view) {
    const badge = main.querySelector("#job-status");
    badge.textContent = view.status;
    badge.className = `badge ${view.status}`;
    clear(
      groups,
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ["Task group", "Count", "Init", "Max", "Allocations"].map((t) => h("th", { scope: "col", class: ["Count", "Init", "Max"].includes(t) ? "num" : null }, t)))),
        h(
          "tbody",
          {},
          view.taskGroups.map((g) => {
            const bar = h("cv-buckets");
            bar.value = { summary: g.summary, count: g.count };
            return h("tr", { dataset: { group: g.name } }, h("th", { scope: "row" }, g.name), h("td", { class: "num" }, g.count), h("td", { class: "num" }, g.countInit), h("td", { class: "num" }, g.countMax), h("td", {}, bar));
          }),
        ),
      ),
    );
  }

  function logLinks(alloc) {
    const links = [];
    for (const d of definitions) {
      if (d.job === job && d.group === alloc.taskGroup) {
        links.push(h("a", { href: `/ui/logs/${enc(d.id)}/${enc(alloc.allocID)}`, "data-nav": true }, d.id));
      }
    }
    for (const task of alloc.tasks) {
      if (!definitions.some((d) => d.job === job && d.group === alloc.taskGroup && d.task === task.name)) {
        links.push(h("a", { href: `/ui/allocs/${enc(alloc.allocID)}/${enc(task.name)}`, "data-nav": true }, `${task.name} output`));
      }
    }
    return links.flatMap((l, i) => (i ? [", ", l] : [l]));
  }

  function renderAllocations(list) {
    lastAllocations = list;
    if (!list.length) {
      clear(allocations, h("p", { class: "muted" }, "No allocations."));
      return;
    }
    clear(
      allocations,
      h(
        "table",
        { class: "allocs" },
        h("thead", {}, h("tr", {}, ["Allocation", "Group", "Status", "Node", "Age", "Restarts", "Logs"].map((t) => h("th", { scope: "col", class: t === "Restarts" ? "num" : null }, t)))),
        h(
          "tbody",
          {},
          list.map((a) =>
            h(
              "tr",
              { dataset: { alloc: a.allocID } },
              h("th", { scope: "row" }, h("code", {}, a.allocID)),
              h("td", {}, a.taskGroup),
              h("td", {}, h("span", { class: `badge ${a.status}` }, a.status)),
              h("td", {}, a.node || "–"),
              h("td", { title: a.createTime, class: "age", dataset: { created: a.createTime } }, age(a.createTime)),
              h("td", { class: "num" }, a.restarts),
              h("td", {}, logLinks(a)),
            ),
          ),
        ),
      ),
    );
  }

  let refreshing = null;
  async function refreshAllocations() {
    if (!can("allocations.read")) {
      clear(allocations, h("p", { class: "muted" }, "Hidden: you may not list pods."));
      return;
    }
    if (refreshing) return refreshing;
    refreshing = get(`/v1/jobs/${enc(job)}/allocations`)
      .then(renderAllocations, (error) => {
        if (error.name !== "AbortError") clear(allocations, errorBox(error));
      })
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  }

  const feed = new JobsFeed({
    onJobs: (jobs) => {
      const view = jobs.find((j) => j.name === job);
      if (!view) {
        clear(errors, errorBox(new Error(`no job '${job}'`)));
        clear(groups);
        return;
      }
      clear(errors);
      renderJob(view);
      refreshAllocations();
    },
    onError: (error) => clear(errors, errorBox(error)),
  });
  feed.start();
  // Ages move on, and restarts change without the jobs view changing.
  const timer = setInterval(() => {
    if (!document.hidden) refreshAllocations();
    else renderAllocations(lastAllocations);
  }, 5000);
  return () => {
    feed.stop();
    clearInterval(timer);
  };
}
