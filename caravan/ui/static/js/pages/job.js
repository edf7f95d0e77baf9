// One job. Overview: its task groups with their problems, its allocations (pods) with
// state, reason, message, exit code, restarts and last termination, each linking to its
// logs; restart for the job, a group or one allocation (after a confirmation); and the
// job's activity (Kubernetes Events), followed live. Versions: in versions.js.
// Everything follows the server through the live helper, so a change made elsewhere
// shows here too.

import { enc, get, post } from "../api.js";
import { can, deniedNote, guard } from "../access.js";
import { actor } from "../act.js";
import "../components.js";
import { add, age, clear, errorBox, h, problemBadges } from "../dom.js";
import { longPoll, poll } from "../lib/live.js";
import { mountVersions } from "./versions.js";

const STOPPED = "the job is stopped: start it first";

export async function mount(main, { job, tab = "overview" }, query, { waitFor }) {
  const errors = h("div", { "aria-live": "polite" });
  const badge = h("span", { class: "badge", id: "job-status" });
  const act = actor(errors);
  let view = null;

  const restartJob = guard(
    h("button", {
      type: "button",
      class: "danger",
      "aria-label": `Restart job ${job}`,
      onclick: () =>
        act(async () => showJob(await post(`/v1/jobs/restart/${enc(job)}`)), {
          busy: restartJob,
          confirm: [`Restart job ${job}?`, `Every allocation of ${job} is replaced by a new one, a few at a time, as kubectl rollout restart does. Its processes stop and start again.`, "Restart"],
        }),
    }, "Restart job…"),
    "jobs.write",
  );
  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": "Job views" },
    h("a", { href: `/ui/jobs/${enc(job)}`, "data-nav": true, "aria-current": tab === "overview" ? "page" : false }, "Overview"),
    h("a", { href: `/ui/jobs/${enc(job)}/versions`, "data-nav": true, "aria-current": tab === "versions" ? "page" : false }, "Versions"),
  );
  add(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "/ui/", "data-nav": true }, "Jobs"), " / ", job),
    h("div", { class: "title" }, h("h1", {}, job, " ", badge), h("span", { class: "spacer" }), restartJob),
    tabs,
    errors,
  );

  // The job's view (status, groups, problems) from the jobs long poll, on every tab.
  const listeners = [];
  function showJob(next) {
    if (!next || !next.name) return;
    view = next;
    badge.textContent = view.status;
    badge.className = `badge ${view.status}`;
    if (can("jobs.write")) {
      restartJob.disabled = view.status === "dead";
      restartJob.title = view.status === "dead" ? STOPPED : "";
    }
    listeners.forEach((l) => l(view));
  }
  const feed = longPoll("/v1/jobs", {
    onData: (jobs) => {
      const found = jobs.find((j) => j.name === job);
      if (!found) {
        clear(errors, errorBox(new Error(`no job '${job}'`)));
        return;
      }
      if (errors.textContent.startsWith("no job")) clear(errors);
      showJob(found);
    },
    onError: (error) => clear(errors, errorBox(error)),
  });
  feed.start();
  waitFor(feed.first);

  // A tab's part follows the job's view from now on, starting with the one already shown.
  const onView = (listener) => {
    listeners.push(listener);
    if (view) listener(view);
  };
  const stops = [() => feed.stop()];
  const parts = { waitFor, act, onJob: showJob, onView, view: () => view };
  if (tab === "versions") stops.push(mountVersions(main, job, parts));
  else stops.push(await overview(main, job, parts));
  return () => stops.forEach((stop) => stop());
}

async function overview(main, job, { waitFor, act, onJob, onView, view }) {
  const groups = h("div", { class: "groups" });
  const allocations = h("div", {});
  const activity = h("div", { class: "activity", tabindex: "0", role: "region", "aria-labelledby": "activity-h" });
  const activityStatus = h("span", { class: "muted", role: "status" });
  add(
    main,
    deniedNote(document, ["allocations.read", "logs.read", "jobs.write", "allocations.restart"]),
    h("h2", {}, "Task groups"),
    groups,
    h("h2", {}, "Allocations"),
    allocations,
    h("h2", { id: "activity-h" }, "Activity ", activityStatus),
    activity,
  );
  let definitions = [];
  if (can("logs.definitions.read")) {
    try {
      definitions = await get("/v1/log/logs");
    } catch (error) {
      allocations.append(errorBox(error));
    }
  }

  let shown = ""; // the allocations drawn, as JSON
  const dead = () => Boolean(view() && view().status === "dead");
  const restartable = (button) => {
    if (button.classList.contains("denied")) return button;
    button.disabled = dead();
    button.title = dead() ? STOPPED : "";
    return button;
  };

  function renderGroups(job_) {
    clear(
      groups,
      h(
        "table",
        { class: "groups" },
        h("thead", {}, h("tr", {}, ["Task group", "Count", "Init", "Max", "Allocations", "Problems", "Actions"].map((t) => h("th", { scope: "col", class: ["Count", "Init", "Max"].includes(t) ? "num" : null }, t)))),
        h(
          "tbody",
          {},
          job_.taskGroups.map((g) => {
            const bar = h("cv-buckets");
            bar.value = { summary: g.summary, count: g.count };
            const problems = g.problems || [];
            const restart = guard(
              h("button", {
                type: "button",
                "aria-label": `Restart task group ${g.name}`,
                onclick: () =>
                  act(async () => onJob(await post(`/v1/jobs/restart/${enc(job)}`, { taskGroup: g.name })), {
                    busy: restart,
                    confirm: [`Restart task group ${g.name}?`, `Every allocation of ${job}/${g.name} is replaced by a new one, a few at a time, as kubectl rollout restart does.`, "Restart"],
                  }),
              }, "Restart…"),
              "jobs.write",
            );
            return h(
              "tr",
              { dataset: { group: g.name, problems: problems.map((p) => p.reason).join(" ") || undefined } },
              h("th", { scope: "row" }, g.name),
              h("td", { class: "num" }, g.count),
              h("td", { class: "num" }, g.countInit),
              h("td", { class: "num" }, g.countMax),
              h("td", {}, bar),
              h("td", { class: "problems" }, problems.length ? [problemBadges(problems), problems.map((p) => h("div", { class: "message" }, p.message))] : h("span", { class: "muted" }, "none")),
              h("td", { class: "actions" }, restartable(restart)),
            );
          }),
        ),
      ),
    );
  }
  onView(renderGroups);

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

  // Why an allocation is as it is: why it is not placed, then per task its state, reason,
  // exit code and message, and how it last ended.
  function why(alloc) {
    const parts = [];
    // The allocation's own reason is its first failing task's, or why it is not placed:
    // said once.
    if (alloc.reason && !alloc.tasks.some((t) => t.reason === alloc.reason)) parts.push(h("div", { class: "reason" }, h("strong", {}, alloc.reason), alloc.message ? ` ${alloc.message}` : ""));
    const many = alloc.tasks.length > 1;
    for (const task of alloc.tasks) {
      const bits = [];
      if (many) bits.push(h("span", { class: "task" }, `${task.name}: `));
      if (task.state && task.state !== "running") bits.push(h("span", { class: `state ${task.state}` }, task.state), " ");
      if (task.reason) bits.push(h("strong", {}, task.reason), " ");
      if (task.exitCode !== undefined && task.exitCode !== null) bits.push(`exit code ${task.exitCode} `);
      if (task.message) bits.push(h("span", { class: "message" }, task.message));
      const last = task.lastTermination;
      if (last) {
        bits.push(
          h("div", { class: "last muted", title: last.finishedAt || "" }, `last ended: ${last.reason || "terminated"}${last.exitCode !== undefined && last.exitCode !== null ? `, exit code ${last.exitCode}` : ""}${last.finishedAt ? `, ${age(last.finishedAt)} ago` : ""}`),
        );
      }
      if (bits.length > (many ? 1 : 0)) parts.push(h("div", { dataset: { task: task.name } }, bits));
    }
    return parts.length ? parts : h("span", { class: "muted" }, "–");
  }

  function reasonOf(alloc) {
    if (alloc.reason) return alloc.reason;
    const task = alloc.tasks.find((t) => t.reason) || null;
    return task ? task.reason : undefined;
  }

  function renderAllocations(list) {
    // Unchanged: only the ages move (redrawing would take the focus off a button).
    const key = JSON.stringify(list);
    if (key === shown) {
      for (const cell of allocations.querySelectorAll("td.age")) cell.textContent = age(cell.dataset.created);
      return;
    }
    shown = key;
    if (!list.length) {
      clear(allocations, h("p", { class: "muted" }, "No allocations."));
      return;
    }
    clear(
      allocations,
      h(
        "table",
        { class: "allocs" },
        h("thead", {}, h("tr", {}, ["Allocation", "Group", "Status", "Node", "Age", "Restarts", "Why", "Logs", "Actions"].map((t) => h("th", { scope: "col", class: t === "Restarts" ? "num" : null }, t)))),
        h(
          "tbody",
          {},
          list.map((a) => {
            const restart = guard(
              h("button", {
                type: "button",
                "aria-label": `Restart allocation ${a.allocID}`,
                onclick: () =>
                  act(
                    async () => {
                      const answer = await post(`/v1/allocations/${enc(a.allocID)}/restart`);
                      onJob(answer); // the job's view, as every job write answers
                      allocs.refresh();
                      return answer ?? true;
                    },
                    {
                      busy: restart,
                      confirm: [`Restart allocation ${a.allocID}?`, `Its pod is deleted and ${job}/${a.taskGroup} gets a new allocation in its place. Its processes stop now.`, "Restart"],
                    },
                  ),
              }, "Restart…"),
              "allocations.restart",
            );
            return h(
              "tr",
              { dataset: { alloc: a.allocID, reason: reasonOf(a) } },
              h("th", { scope: "row" }, h("code", {}, a.allocID)),
              h("td", {}, a.taskGroup),
              h("td", {}, h("span", { class: `badge ${a.status}` }, a.status)),
              h("td", {}, a.node || "–"),
              h("td", { title: a.createTime, class: "age", dataset: { created: a.createTime } }, age(a.createTime)),
              h("td", { class: "num" }, a.restarts),
              h("td", { class: "why" }, why(a)),
              h("td", {}, logLinks(a)),
              h("td", { class: "actions" }, restartable(restart)),
            );
          }),
        ),
      ),
    );
  }

  // Restarts and ages change without the jobs view changing: the allocations are read
  // every 5 s, and at once when the job's view changes.
  const allocs = poll(`/v1/jobs/${enc(job)}/allocations`, {
    onData: renderAllocations,
    onError: (error) => clear(allocations, errorBox(error)),
  });
  let seen = false;
  onView(() => {
    shown = ""; // the restart buttons follow the job's status
    if (seen) allocs.refresh(); // (the first answer and the first read cross)
    seen = true;
  });
  if (can("allocations.read")) {
    allocs.start();
    waitFor(allocs.first);
  } else {
    clear(allocations, h("p", { class: "muted" }, "Hidden: you may not list pods."));
  }

  // Activity, oldest first, followed with waitIndex; the view stays at the newest unless
  // the reader scrolled up.
  let stick = true;
  activity.addEventListener("scroll", () => {
    stick = activity.scrollTop + activity.clientHeight >= activity.scrollHeight - 8;
  });
  function renderActivity(body) {
    const items = (body && body.items) || [];
    if (!items.length) {
      clear(activity, h("p", { class: "muted" }, "Nothing yet."));
      return;
    }
    clear(
      activity,
      h(
        "table",
        { class: "activity" },
        h("thead", {}, h("tr", {}, ["Time", "Type", "Object", "Reason", "Message", "Count"].map((t) => h("th", { scope: "col", class: t === "Count" ? "num" : null }, t)))),
        h(
          "tbody",
          {},
          items.map((item) =>
            h(
              "tr",
              { class: item.type === "Warning" ? "warning" : null, dataset: { reason: item.reason, object: item.object } },
              h("td", { title: item.time, class: "age" }, item.time ? `${age(item.time)} ago` : "–"),
              h("td", {}, item.type),
              h("td", {}, item.object),
              h("td", {}, h("strong", {}, item.reason)),
              h("td", { class: "message" }, item.message),
              h("td", { class: "num" }, item.count > 1 ? `×${item.count}` : ""),
            ),
          ),
        ),
      ),
    );
    if (stick) activity.scrollTop = activity.scrollHeight;
  }
  const events = longPoll(`/v1/jobs/${enc(job)}/activity`, {
    onData: renderActivity,
    onStatus: (s) => {
      activityStatus.textContent = s.startsWith("live") ? "live" : s;
    },
    onError: (error) => clear(activity, errorBox(error)),
    // A server without the route, or a caller who may not read Events: said once.
    fatal: (error) => [401, 403, 404].includes(error.status),
  });
  events.start();
  waitFor(events.first);

  return () => {
    allocs.stop();
    events.stop();
  };
}
