// A job's versions tab: its definition's versions (newest first), a diff between any
// two of them, and a revert to one (after a confirmation). A revert makes that version's
// definition current as a new version; the running counts stay.

import { enc, get, post } from "../api.js";
import { can, deniedNote, guard } from "../access.js";
import { add, age, clear, errorBox, field, h } from "../dom.js";
import { canonicalJson, diffLines, hunkHeader, hunks } from "../lib/linediff.js";
import { longPoll } from "../lib/live.js";

export function mountVersions(main, job, { waitFor, act, onJob, onView }) {
  const list = h("div");
  const compare = h("section", { "aria-labelledby": "diff-h" });
  const from = h("select", { dataset: { side: "from" } });
  const to = h("select", { dataset: { side: "to" } });
  const diffView = h("div", { class: "diff-view", "aria-live": "polite" });
  add(main, deniedNote(document, ["versions.read", "jobs.revert"]), h("h2", {}, "Versions"), list, compare);
  clear(compare, h("h2", { id: "diff-h" }, "Compare"), h("div", { class: "toolbar" }, field("From version", from), field("To version", to)), diffView);
  compare.hidden = true;

  const definitions = new Map(); // version → its definition's text (versions never change)
  const definitionOf = async (n) => {
    if (!definitions.has(n)) {
      const found = get(`/v1/jobs/${enc(job)}/versions/${n}`).then((v) => canonicalJson(v.definition));
      definitions.set(n, found);
      found.catch(() => definitions.delete(n));
    }
    return definitions.get(n);
  };

  let versions = [];
  let shownList = "";
  function renderList(answer) {
    const next = Array.isArray(answer) ? answer : [];
    const key = JSON.stringify(next);
    if (key === shownList) return;
    shownList = key;
    const grew = next.length && (!versions.length || next[0].version !== versions[0].version);
    versions = next;
    if (!versions.length) {
      clear(list, h("p", { class: "muted" }, "No versions yet."));
      compare.hidden = true;
      return;
    }
    const current = versions[0].version;
    clear(
      list,
      h(
        "table",
        { class: "versions" },
        h("thead", {}, h("tr", {}, ["Version", "Time", "Change", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          versions.map((v) => {
            const revert = guard(
              h("button", {
                type: "button",
                "aria-label": `Revert to version ${v.version}`,
                onclick: () =>
                  act(
                    async () => {
                      const view = await post(`/v1/jobs/${enc(job)}/revert`, { version: v.version });
                      onJob(view);
                      versionsFeed.refresh();
                      return view;
                    },
                    {
                      busy: revert,
                      confirm: [`Revert ${job} to version ${v.version}?`, `Version ${v.version}'s definition becomes the job's current one, as a new version. Running counts are kept (within its countMax); allocations whose template changes are replaced.`, "Revert"],
                    },
                  ),
              }, "Revert…"),
              "jobs.revert",
            );
            if (v.version === current && !revert.classList.contains("denied")) {
              revert.disabled = true;
              revert.title = "the current version";
            }
            return h(
              "tr",
              { dataset: { version: String(v.version) } },
              h("th", { scope: "row" }, `v${v.version}`, v.version === current ? h("span", { class: "badge running" }, "current") : null),
              h("td", { title: v.time }, v.time ? `${age(v.time)} ago` : "–"),
              h("td", {}, v.change || ""),
              h("td", { class: "actions" }, revert),
            );
          }),
        ),
      ),
    );
    // The choices follow the list; a new version moves the comparison to it.
    const keepFrom = grew ? null : Number(from.value);
    const keepTo = grew ? null : Number(to.value);
    const options = (selected) => versions.map((v) => h("option", { value: String(v.version), selected: v.version === selected }, `v${v.version}${v.version === current ? " (current)" : ""}`));
    const known = (n) => versions.some((v) => v.version === n);
    clear(from, options(known(keepFrom) ? keepFrom : (versions[1] || versions[0]).version));
    clear(to, options(known(keepTo) ? keepTo : current));
    compare.hidden = false;
    showDiff();
  }

  let asked = 0;
  async function showDiff() {
    const mine = ++asked;
    const a = Number(from.value);
    const b = Number(to.value);
    let texts;
    try {
      texts = await Promise.all([definitionOf(a), definitionOf(b)]);
    } catch (error) {
      if (mine === asked) clear(diffView, errorBox(error));
      return;
    }
    if (mine !== asked) return;
    const parts = hunks(diffLines(texts[0], texts[1]), 3);
    if (!parts.length) {
      clear(diffView, h("p", { class: "muted", dataset: { same: "true" } }, a === b ? `v${a}: the same version.` : `v${a} and v${b} have the same definition.`));
      return;
    }
    const lines = [h("span", { class: "head" }, `--- v${a}\n`), h("span", { class: "head" }, `+++ v${b}\n`)];
    for (const hunk of parts) {
      lines.push(h("span", { class: "hunk" }, `${hunkHeader(hunk)}\n`));
      for (const line of hunk.lines) {
        const kind = line.op === "+" ? "add" : line.op === "-" ? "del" : "same";
        lines.push(h("span", { class: kind }, `${line.op}${line.text}\n`));
      }
    }
    clear(diffView, h("pre", { class: "diff", tabindex: "0", "aria-label": `Diff of v${a} and v${b}`, dataset: { from: String(a), to: String(b) } }, lines));
  }
  from.addEventListener("change", showDiff);
  to.addEventListener("change", showDiff);

  // The list follows the server (a long poll where the route has one, else every 5 s),
  // and is read again at once when the job's view changes.
  const versionsFeed = longPoll(`/v1/jobs/${enc(job)}/versions`, {
    onData: renderList,
    onError: (error) => clear(list, errorBox(error)),
    fatal: (error) => [401, 403, 404].includes(error.status),
  });
  if (can("versions.read")) {
    versionsFeed.start();
    waitFor(versionsFeed.first);
  } else {
    clear(list, h("p", { class: "muted" }, "Hidden: you may not read versions."));
  }
  let seen = false;
  onView(() => {
    if (seen) versionsFeed.refresh();
    seen = true;
  });
  return () => versionsFeed.stop();
}
