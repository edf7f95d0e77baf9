// Secrets: the ids Caravan manages; a secret's keys with values hidden until revealed;
// create, replace and delete, each after a confirmation.

import { del, enc, get, post } from "../api.js";
import { can, deniedNote, guard } from "../access.js";
import { actor } from "../act.js";
import { add, clear, h, uid } from "../dom.js";

const MASK = "••••••••";

function pairEditor(initial) {
  const rows = h("tbody");
  const addRow = (key = "", value = "") => {
    const k = h("input", { type: "text", value: key, "aria-label": "Key", autocomplete: "off", class: "secret-key" });
    const v = h("input", { type: "password", value, "aria-label": `Value of ${key || "new key"}`, autocomplete: "new-password", class: "secret-value" });
    k.addEventListener("input", () => v.setAttribute("aria-label", `Value of ${k.value || "new key"}`));
    const show = h("button", { type: "button", "aria-pressed": "false", onclick: () => {
      const shown = v.type === "text";
      v.type = shown ? "password" : "text";
      show.setAttribute("aria-pressed", String(!shown));
      show.textContent = shown ? "Show" : "Hide";
    } }, "Show");
    const remove = h("button", { type: "button", "aria-label": `Remove ${key || "this key"}`, onclick: () => row.remove() }, "Remove");
    const row = h("tr", {}, h("td", {}, k), h("td", {}, v), h("td", {}, show, remove));
    rows.append(row);
    return k;
  };
  for (const [key, value] of Object.entries(initial)) addRow(key, value);
  if (!Object.keys(initial).length) addRow();
  const element = h(
    "div",
    { class: "pairs" },
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"), h("th", {}))), rows),
    h("button", { type: "button", onclick: () => addRow().focus() }, "Add key"),
  );
  const read = () => {
    const map = {};
    for (const row of rows.rows) {
      const [k, v] = row.querySelectorAll("input");
      if (k.value.trim()) map[k.value.trim()] = v.value;
    }
    return map;
  };
  return { element, read };
}

export async function mount(main, { secret }, query, { navigate }) {
  const errors = h("div", { "aria-live": "polite" });
  const list = h("nav", { "aria-label": "Secrets", class: "secret-list" });
  const detail = h("section", { class: "secret", "aria-live": "polite" });
  add(main, 
    h("h1", {}, "Secrets"),
    deniedNote(document, ["secrets.list", "secrets.read", "secrets.create", "secrets.update", "secrets.delete"]),
    errors,
    h("div", { class: "split narrow" }, h("div", {}, list), detail),
  );

  const act = actor(errors);

  async function drawList() {
    if (!can("secrets.list")) {
      clear(list, h("p", { class: "muted" }, "You may not list secrets."));
      return;
    }
    const { keys } = await get("/v1/secrets/list");
    clear(
      list,
      h("h2", {}, "Managed secrets"),
      keys.length
        ? h("ul", {}, keys.map((id) => h("li", {}, h("a", { href: `/ui/secrets/${enc(id)}`, "data-nav": true, "aria-current": id === secret ? "page" : false }, id))))
        : h("p", { class: "muted" }, "None yet."),
      h("a", { href: "/ui/secrets", "data-nav": true, class: "button" }, "New secret"),
    );
  }

  function drawCreate() {
    const id = h("input", { type: "text", required: true, pattern: "[a-z0-9]([a-z0-9.\\-]*[a-z0-9])?", autocomplete: "off" });
    id.id = uid("id");
    const pairs = pairEditor({});
    const create = guard(h("button", { type: "submit", class: "primary" }, "Create"), "secrets.create");
    clear(
      detail,
      h("h2", {}, "New secret"),
      h(
        "form",
        {
          onsubmit: async (event) => {
            event.preventDefault();
            const name = id.value.trim();
            if (!name) return;
            const map = pairs.read();
            const existing = await act(() => get("/v1/secrets/list"));
            const replacing = existing && existing.keys.includes(name);
            const confirm = [
              replacing ? `Replace secret ${name}?` : `Create secret ${name}?`,
              replacing ? `Secret ${name} exists: its keys are all replaced by these ${Object.keys(map).length}.` : `Creates Secret ${name} with ${Object.keys(map).length} key(s).`,
              replacing ? "Replace" : "Create",
            ];
            const done = await act(() => post(`/v1/secrets/secret/${enc(name)}`, map), { confirm });
            if (done !== undefined) navigate(`/ui/secrets/${enc(name)}`);
          },
        },
        h("div", { class: "field" }, h("label", { for: id.id }, "Id (a Kubernetes name)"), id),
        pairs.element,
        h("div", { class: "toolbar" }, create),
      ),
    );
    if (!can("secrets.create")) for (const input of detail.querySelectorAll("input, button")) input.disabled = true;
  }

  async function drawSecret() {
    const map = await get(`/v1/secrets/secret/${enc(secret)}`);
    const rows = Object.entries(map).map(([key, value]) => {
      const cell = h("code", { class: "masked" }, MASK);
      const reveal = h("button", {
        type: "button",
        "aria-pressed": "false",
        "aria-label": `Reveal ${key}`,
        onclick: () => {
          const shown = reveal.getAttribute("aria-pressed") === "true";
          cell.textContent = shown ? MASK : value;
          cell.classList.toggle("masked", shown);
          reveal.setAttribute("aria-pressed", String(!shown));
          reveal.textContent = shown ? "Reveal" : "Hide";
        },
      }, "Reveal");
      return h("tr", { dataset: { key } }, h("th", { scope: "row" }, key), h("td", {}, cell), h("td", {}, reveal));
    });
    const edit = guard(h("button", { type: "button", onclick: () => drawEdit(map) }, "Replace…"), "secrets.update");
    const remove = guard(
      h("button", {
        type: "button",
        class: "danger",
        onclick: async () => {
          const confirm = [`Delete secret ${secret}?`, `Deletes Secret ${secret} and its ${Object.keys(map).length} key(s). Pods that use it keep what they read.`, "Delete"];
          const done = await act(() => del(`/v1/secrets/secret/${enc(secret)}`), { confirm });
          if (done !== undefined) navigate("/ui/secrets");
        },
      }, "Delete…"),
      "secrets.delete",
    );
    clear(
      detail,
      h("h2", {}, secret),
      rows.length ? h("table", { class: "secret-keys" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"), h("th", {}))), h("tbody", {}, rows)) : h("p", { class: "muted" }, "No keys."),
      h("div", { class: "toolbar" }, edit, remove),
    );
  }

  function drawEdit(map) {
    const pairs = pairEditor(map);
    clear(
      detail,
      h("h2", {}, `Replace ${secret}`),
      h(
        "form",
        {
          onsubmit: async (event) => {
            event.preventDefault();
            const next = pairs.read();
            const confirm = [`Replace secret ${secret}?`, `Its keys become exactly these ${Object.keys(next).length}.`, "Replace"];
            const done = await act(() => post(`/v1/secrets/secret/${enc(secret)}`, next), { confirm });
            if (done !== undefined) await act(drawSecret);
          },
        },
        pairs.element,
        h("div", { class: "toolbar" }, h("button", { type: "submit", class: "primary" }, "Replace"), h("button", { type: "button", onclick: () => act(drawSecret) }, "Cancel")),
      ),
    );
  }

  await act(drawList);
  if (secret) {
    if (can("secrets.read")) await act(drawSecret);
    else clear(detail, h("p", { class: "muted" }, "You may not read secrets."));
  } else drawCreate();
  return undefined;
}
