// Jobs (home): every job with its status and, per task group, count / countInit /
// countMax and the summary buckets; live through waitIndex long polls. Per group
// -1 / +1 / 0 (clicks debounced into one delta), per job start and stop, Start All and
// Stop All. Rows are keyed and updated in place, so focus survives updates and 200 jobs
// stay cheap.

import { enc, post } from "../api.js";
import { can, deniedNote, guard } from "../access.js";
import { actor } from "../act.js";
import "../components.js";
import { add, clear, errorBox, h, problemBadges } from "../dom.js";
import { DeltaBatcher } from "../lib/batcher.js";
import { longPoll } from "../lib/live.js";

export function mount(main, params, query, { waitFor }) {
  const status = h("span", { class: "live muted", role: "status" }, "connecting…");
  const errors = h("div", { "aria-live": "polite" });
  const filter = h("input", { type: "search", placeholder: "filter by name", autocomplete: "off" });
  const count = h("span", { class: "muted" });
  const table = h(
    "table",
    { class: "jobs" },
    h("caption", { class: "sr-only" }, "Jobs and their task groups"),
    h(
      "thead",
      {},
      h("tr", {}, ["Job / task group", "Status", "Count", "Init", "Max", "Allocations", "Actions"].map((t) => h("th", { scope: "col", class: ["Count", "Init", "Max"].includes(t) ? "num" : null }, t))),
    ),
  );
  const empty = h("p", { class: "muted", hidden: true }, "No jobs yet. Create one with kubectl apply -f examples/web.yaml or POST /v1/jobsdefs.");
  const rows = new Map();

  const act = actor(errors);

  const batcher = new DeltaBatcher((key, delta) => {
    const [job, group] = JSON.parse(key);
    return act(async () => {
      const view = await post("/v1/jobs/updatecounts", { jobID: job, taskGroup: group, count: delta });
      applyJob(view);
      return view;
    }).finally(() => showPending(job, group));
  });

  const startAll = guard(h("button", { type: "button", onclick: () => act(async () => applyAll(await post("/v1/jobs/start"))) }, "Start All"), "jobs.write");
  const stopAll = guard(h("button", { type: "button", onclick: () => act(async () => applyAll(await post("/v1/jobs/stop"))) }, "Stop All"), "jobs.write");

  add(main, 
    h("h1", {}, "Jobs"),
    deniedNote(document, ["jobs.write"]),
    h("div", { class: "toolbar" }, h("label", { class: "inline" }, "Filter ", filter), count, h("span", { class: "spacer" }), startAll, stopAll, status),
    errors,
    empty,
    table,
  );

  function applyAll(views) {
    if (Array.isArray(views)) views.forEach(applyJob);
  }

  function showPending(job, group) {
    const row = rows.get(job);
    const groupRow = row && row.groups.get(group);
    if (!groupRow) return;
    const pending = batcher.pending(JSON.stringify([job, group]));
    groupRow.pending.textContent = pending ? ` (${pending > 0 ? "+" : ""}${pending} pending)` : "";
  }

  function buildJob(job) {
    const body = h("tbody", { dataset: { job: job.name } });
    const statusCell = h("span", { class: "badge" });
    const name = h("a", { href: `/ui/jobs/${enc(job.name)}`, "data-nav": true }, job.name);
    const start = guard(
      h("button", { type: "button", "aria-label": `Start job ${job.name}`, dataset: { action: "start" }, onclick: () => act(async () => applyJob(await post(`/v1/jobs/start/${enc(job.name)}`))) }, "Start"),
      "jobs.write",
    );
    const stop = guard(
      h("button", { type: "button", "aria-label": `Stop job ${job.name}`, dataset: { action: "stop" }, onclick: () => act(async () => applyJob(await post(`/v1/jobs/stop/${enc(job.name)}`))) }, "Stop"),
      "jobs.write",
    );
    const head = h("tr", { class: "job" }, h("th", { scope: "rowgroup", colspan: 1 }, name), h("td", {}, statusCell), h("td", { colspan: 4 }), h("td", { class: "actions" }, start, stop));
    body.append(head);
    const entry = { body, head, statusCell, groups: new Map(), start, stop };
    rows.set(job.name, entry);
    return entry;
  }

  function buildGroup(entry, jobName, group) {
    const key = JSON.stringify([jobName, group.name]);
    const countCell = h("td", { class: "num" });
    const pending = h("span", { class: "pending", "aria-live": "polite" });
    const init = h("td", { class: "num" });
    const max = h("td", { class: "num" });
    const bar = h("cv-buckets", {});
    const legend = h("small", { class: "muted legend" });
    const label = `${jobName}/${group.name}`;
    const minus = guard(h("button", { type: "button", "aria-label": `${label} minus 1`, dataset: { delta: "-1" }, onclick: () => { batcher.add(key, -1); showPending(jobName, group.name); } }, "−1"), "jobs.write");
    const plus = guard(h("button", { type: "button", "aria-label": `${label} plus 1`, dataset: { delta: "1" }, onclick: () => { batcher.add(key, 1); showPending(jobName, group.name); } }, "+1"), "jobs.write");
    const zero = guard(
      h("button", {
        type: "button",
        "aria-label": `${label} to 0`,
        dataset: { delta: "0" },
        onclick: () => {
          batcher.cancel(key);
          showPending(jobName, group.name);
          act(async () => applyJob(await post("/v1/jobs/updatecounts", { jobID: jobName, taskGroup: group.name, count: 0 })));
        },
      }, "0"),
      "jobs.write",
    );
    const problems = h("td", { class: "problems" });
    const row = h("tr", { class: "group", dataset: { group: group.name } }, h("td", { class: "indent" }, group.name), problems, countCell, init, max, h("td", {}, bar, legend), h("td", { class: "actions" }, minus, plus, zero));
    const countText = h("span", { class: "count" });
    countCell.append(countText, pending);
    const groupEntry = { row, countText, pending, init, max, bar, legend, minus, plus, zero, problems, problemsKey: "" };
    entry.groups.set(group.name, groupEntry);
    return groupEntry;
  }

  function applyJob(job) {
    if (!job || !job.name) return;
    let entry = rows.get(job.name);
    if (!entry) {
      entry = buildJob(job);
      insertSorted(entry.body, job.name);
    }
    entry.statusCell.textContent = job.status;
    entry.statusCell.className = `badge ${job.status}`;
    entry.body.dataset.status = job.status;
    const seen = new Set();
    let previous = entry.head;
    for (const group of job.taskGroups) {
      seen.add(group.name);
      const g = entry.groups.get(group.name) || buildGroup(entry, job.name, group);
      if (previous.nextSibling !== g.row) previous.after(g.row);
      previous = g.row;
      g.countText.textContent = String(group.count);
      g.init.textContent = String(group.countInit);
      g.max.textContent = String(group.countMax);
      g.row.dataset.count = String(group.count);
      g.bar.value = { summary: group.summary, count: group.count };
      showProblems(g, group.problems || []);
      g.legend.textContent = ` ${group.summary.running} running` + (group.summary.starting + group.summary.queued ? `, ${group.summary.starting + group.summary.queued} pending` : "") + (group.summary.failed ? `, ${group.summary.failed} failed` : "") + (group.summary.lost ? `, ${group.summary.lost} lost` : "");
      if (can("jobs.write")) {
        // Said before the click, not as a 409 after it.
        const dead = job.status === "dead";
        const stopped = "the job is stopped: start it first";
        g.plus.disabled = dead || group.count >= group.countMax;
        g.plus.title = dead ? stopped : group.count >= group.countMax ? `at countMax (${group.countMax})` : "";
        g.minus.disabled = dead || group.count === 0;
        g.minus.title = dead ? stopped : group.count === 0 ? "already 0" : "";
        g.zero.disabled = dead;
        g.zero.title = dead ? stopped : "";
      }
    }
    for (const [name, g] of entry.groups) {
      if (!seen.has(name)) {
        g.row.remove();
        entry.groups.delete(name);
      }
    }
  }

  // What is wrong with a group, in Kubernetes' words: one badge per reason, its message
  // as the tooltip (and for screen readers).
  function showProblems(g, problems) {
    const key = JSON.stringify(problems);
    if (key === g.problemsKey) return;
    g.problemsKey = key;
    g.row.dataset.problems = problems.map((p) => p.reason).join(" ");
    if (!problems.length) delete g.row.dataset.problems;
    clear(g.problems, problemBadges(problems));
  }

  function insertSorted(body, name) {
    const after = [...table.tBodies].find((b) => b.dataset.job > name);
    table.insertBefore(body, after || null);
  }

  function applyFilter() {
    const text = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const [name, entry] of rows) {
      const visible = !text || name.toLowerCase().includes(text);
      entry.body.hidden = !visible;
      if (visible) shown++;
    }
    count.textContent = text ? `${shown} of ${rows.size} jobs` : `${rows.size} job${rows.size === 1 ? "" : "s"}`;
  }
  filter.addEventListener("input", applyFilter);

  const feed = longPoll("/v1/jobs", {
    onData: (jobs) => {
      clear(errors);
      const names = new Set(jobs.map((j) => j.name));
      for (const [name, entry] of rows) {
        if (!names.has(name)) {
          entry.body.remove();
          rows.delete(name);
        }
      }
      jobs.forEach(applyJob);
      empty.hidden = jobs.length > 0;
      applyFilter();
    },
    onError: (error) => clear(errors, errorBox(error)),
    onStatus: (text) => {
      status.textContent = text;
    },
  });
  feed.start();
  waitFor(feed.first);
  return () => {
    feed.stop();
    batcher.cancelAll();
  };
}
