// Settings: a form generated from /v1/schemas/settings.json (types, enums, defaults,
// descriptions; nested objects as sections) and an "Advanced" JSON editor over the same
// draft. Edits survive switching between the two; Save posts once. A 422 shows each
// error at its field, and by its JSON path in the editor. Errors of the stored text
// (a kubectl edit) come from /v1/settings/errors.

import { get, post } from "../api.js";
import { can, deniedNote, guard } from "../access.js";
import { add, clear, errorBox, h, uid } from "../dom.js";
import { fieldFor, fieldsOf, getAt, locate, parsePath, setAt } from "../lib/schemaform.js";

export async function mount(main) {
  const status = h("p", { role: "status", class: "muted" });
  const errors = h("div", { "aria-live": "polite" });
  const stored = h("div");
  add(main, h("h1", {}, "Settings"), deniedNote(document, ["settings.write"]), stored, errors);
  let schema;
  let draft;
  try {
    [schema, draft] = await Promise.all([get("/v1/schemas/settings.json"), get("/v1/settings")]);
  } catch (error) {
    errors.append(errorBox(error));
    return undefined;
  }
  get("/v1/settings/errors").then(
    (found) => {
      const lines = [...(found.settings || []).map((e) => `${e.path}: ${e.message}`), ...(found.schema || []).map((e) => `schema: ${e}`)];
      if (lines.length) {
        stored.append(
          h("div", { class: "error", role: "alert", id: "stored-errors" }, h("strong", {}, "The stored settings are not in force (edited outside the API?):"), h("ul", {}, lines.map((l) => h("li", {}, l)))),
        );
      }
    },
    (error) => stored.append(errorBox(error)),
  );

  const tree = fieldsOf(schema);
  const controls = new Map(); // path → {control, message}
  const jsonLeafErrors = new Map();
  const formPanel = h("div", { role: "tabpanel", id: uid("panel") });
  const editor = h("textarea", { class: "json", spellcheck: "false", rows: 28, "aria-label": "Settings document (JSON)" });
  const editorErrors = h("ul", { class: "paths" });
  const jsonPanel = h("div", { role: "tabpanel", id: uid("panel"), hidden: true }, editor, editorErrors);
  const formTab = h("button", { type: "button", role: "tab", "aria-selected": "true", "aria-controls": formPanel.id }, "Form");
  const jsonTab = h("button", { type: "button", role: "tab", "aria-selected": "false", "aria-controls": jsonPanel.id }, "Advanced (JSON)");
  const save = guard(h("button", { type: "submit", class: "primary" }, "Save"), "settings.write");
  const reset = h("button", { type: "button" }, "Discard changes");
  const form = h(
    "form",
    { novalidate: true, class: "settings" },
    h("div", { role: "tablist", class: "tabs", "aria-label": "Editor" }, formTab, jsonTab),
    formPanel,
    jsonPanel,
    h("div", { class: "toolbar" }, save, reset, status),
  );
  add(main, form);

  const inJson = () => !jsonPanel.hidden;

  function leaf(node) {
    const value = getAt(draft, node.parts);
    let control;
    if (node.kind === "boolean") {
      control = h("input", { type: "checkbox", checked: value === undefined ? Boolean(node.default) : Boolean(value) });
    } else if (node.kind === "enum") {
      control = h("select", {}, node.enum.map((v) => h("option", { value: JSON.stringify(v), selected: JSON.stringify(v) === JSON.stringify(value) }, String(v))));
    } else if (node.kind === "integer" || node.kind === "number") {
      // No min/max attributes: the server's 422 says what is wrong, at the field.
      control = h("input", { type: "number", step: node.kind === "integer" ? "1" : "any", value: value === undefined ? "" : String(value), placeholder: node.default === undefined ? "" : String(node.default) });
    } else if (node.kind === "string") {
      control = h("input", { type: "text", value: value === undefined ? "" : value, placeholder: node.default === undefined ? "" : String(node.default) });
    } else {
      control = h("textarea", { class: "json small", rows: 4, spellcheck: "false", value: value === undefined ? "" : JSON.stringify(value, null, 2) });
    }
    control.id = uid("s");
    control.dataset.path = node.path;
    control.name = node.path;
    const bounds = node.bounds;
    const help = [node.description, node.default !== undefined ? `Default: ${JSON.stringify(node.default)}.` : "", bounds ? `(${bounds})` : ""].filter(Boolean).join(" ");
    const helpEl = h("small", { class: "help", id: uid("help") }, help);
    const message = h("small", { class: "field-error", id: uid("err"), hidden: true });
    control.setAttribute("aria-describedby", `${helpEl.id} ${message.id}`);
    control.addEventListener("input", () => update(node, control));
    control.addEventListener("change", () => update(node, control));
    controls.set(node.path, { control, message });
    const label = h("label", { for: control.id }, node.title);
    return h("div", { class: `field ${node.kind}`, dataset: { path: node.path } }, label, control, helpEl, message);
  }

  function update(node, control) {
    let value;
    if (node.kind === "boolean") value = control.checked;
    else if (node.kind === "enum") value = JSON.parse(control.value);
    else if (node.kind === "integer" || node.kind === "number") {
      const text = control.value.trim();
      value = text === "" ? undefined : Number(text);
    } else if (node.kind === "string") value = control.value;
    else {
      const text = control.value.trim();
      if (text === "") value = undefined;
      else {
        try {
          value = JSON.parse(text);
          jsonLeafErrors.delete(node.path);
        } catch (error) {
          jsonLeafErrors.set(node.path, `not JSON: ${error.message}`);
          showFieldError(node.path, `not JSON: ${error.message}`);
          return;
        }
      }
    }
    showFieldError(node.path, "");
    draft = setAt(draft, node.parts, value);
  }

  function section(node, depth) {
    const children = node.children.map((child) => (child.kind === "object" ? section(child, depth + 1) : leaf(child)));
    if (!node.parts.length) return h("div", {}, node.description ? h("p", { class: "muted" }, node.description) : null, children);
    const message = h("small", { class: "field-error", hidden: true });
    controls.set(node.path, { control: null, message });
    return h("fieldset", { dataset: { path: node.path } }, h("legend", {}, node.title), node.description ? h("p", { class: "help" }, node.description) : null, message, children);
  }

  function drawForm() {
    controls.clear();
    clear(formPanel, tree.kind === "object" ? section(tree, 0) : leaf(tree));
  }

  function showFieldError(path, text) {
    const entry = controls.get(path);
    if (!entry) return;
    entry.message.textContent = text;
    entry.message.hidden = !text;
    if (entry.control) {
      if (text) entry.control.setAttribute("aria-invalid", "true");
      else entry.control.removeAttribute("aria-invalid");
    }
  }

  function clearErrors() {
    for (const path of controls.keys()) showFieldError(path, "");
    clear(editorErrors);
    clear(errors);
  }

  function select(tab) {
    if (tab === "json" && !inJson()) {
      editor.value = JSON.stringify(draft, null, 2);
    } else if (tab === "form" && inJson()) {
      try {
        draft = JSON.parse(editor.value);
      } catch (error) {
        clear(errors, errorBox(new Error(`The JSON is not valid (${error.message}); fix it before switching to the form.`)));
        return;
      }
      drawForm();
    }
    formPanel.hidden = tab !== "form";
    jsonPanel.hidden = tab !== "json";
    formTab.setAttribute("aria-selected", String(tab === "form"));
    jsonTab.setAttribute("aria-selected", String(tab === "json"));
  }
  formTab.addEventListener("click", () => select("form"));
  jsonTab.addEventListener("click", () => select("json"));

  function showErrors(error) {
    clear(errors, errorBox(error));
    const paths = [...controls.keys()];
    for (const detail of error.details || []) {
      if (!detail || typeof detail.path !== "string") continue;
      const at = fieldFor(paths, detail.path);
      const entry = controls.get(at);
      if (entry) {
        const previous = entry.message.hidden ? "" : `${entry.message.textContent}; `;
        const where = at === detail.path ? "" : `${detail.path}: `;
        showFieldError(at, `${previous}${where}${detail.message}`);
      }
      const parts = parsePath(detail.path);
      editorErrors.append(
        h("li", {}, h("button", {
          type: "button",
          class: "link",
          onclick: () => {
            const range = locate(editor.value, parts);
            editor.focus();
            if (range) editor.setSelectionRange(range[0], range[1]);
          },
        }, detail.path), `: ${detail.message}`),
      );
    }
    const first = [...controls.values()].find((e) => e.control && e.control.getAttribute("aria-invalid") === "true");
    if (first && !inJson()) first.control.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (inJson()) {
      try {
        draft = JSON.parse(editor.value);
      } catch (error) {
        clear(errors, errorBox(new Error(`The JSON is not valid: ${error.message}`)));
        return;
      }
    } else if (jsonLeafErrors.size) {
      for (const [path, text] of jsonLeafErrors) showFieldError(path, text);
      clear(errors, errorBox(new Error("Some fields are not valid JSON.")));
      return;
    }
    save.disabled = true;
    status.textContent = "Saving…";
    try {
      draft = await post("/v1/settings", draft);
      status.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
      drawForm();
      if (inJson()) editor.value = JSON.stringify(draft, null, 2);
      clear(stored);
    } catch (error) {
      status.textContent = "Not saved.";
      showErrors(error);
    } finally {
      save.disabled = !can("settings.write");
    }
  });

  reset.addEventListener("click", async () => {
    clearErrors();
    try {
      draft = await get("/v1/settings");
      drawForm();
      editor.value = JSON.stringify(draft, null, 2);
      status.textContent = "Showing the stored settings.";
    } catch (error) {
      clear(errors, errorBox(error));
    }
  });

  drawForm();
  return undefined;
}
