// Pure helpers of the settings form: JSON paths as the API writes them ($.a.b, $.a[0],
// $['odd key']), reading and writing a document at a path, and the fields a JSON Schema
// describes. No DOM here.

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function jsonPath(parts) {
  let out = "$";
  for (const part of parts) {
    if (typeof part === "number") out += `[${part}]`;
    else if (IDENTIFIER.test(part)) out += `.${part}`;
    else out += `['${part.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}']`;
  }
  return out;
}

export function getAt(document, parts) {
  let value = document;
  for (const part of parts) {
    if (value === null || typeof value !== "object") return undefined;
    value = value[part];
  }
  return value;
}

// A copy of `document` with `value` at `parts` (objects created on the way); `undefined`
// removes the key, so the server fills it from the defaults.
export function setAt(document, parts, value) {
  if (!parts.length) return value;
  const [head, ...rest] = parts;
  const base = document !== null && typeof document === "object" ? document : {};
  const copy = Array.isArray(base) ? [...base] : { ...base };
  const next = setAt(base[head], rest, value);
  if (next === undefined) delete copy[head];
  else copy[head] = next;
  return copy;
}

function typeOf(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  const type = Array.isArray(schema.type) ? schema.type.filter((t) => t !== "null") : [schema.type];
  if (type.length !== 1) return "json";
  if (type[0] === "object") return schema.properties ? "object" : "json";
  if (["string", "integer", "number", "boolean"].includes(type[0])) return type[0];
  return "json"; // arrays and anything the form does not draw: edited as JSON text
}

// The fields of `schema`: objects with properties become sections; the rest are leaves.
// Schemas the form cannot draw ($ref, oneOf, arrays) are edited as JSON text.
export function fieldsOf(schema, parts = []) {
  const kind = schema && typeof schema === "object" ? typeOf(schema) : "json";
  const node = {
    kind,
    parts,
    path: jsonPath(parts),
    key: parts.length ? String(parts[parts.length - 1]) : "",
    title: (schema && schema.title) || (parts.length ? String(parts[parts.length - 1]) : ""),
    description: (schema && schema.description) || "",
    default: schema ? schema.default : undefined,
    enum: kind === "enum" ? schema.enum : undefined,
    // "min 1", "> 0", "max 3600", "< 1" as the help text says them.
    bounds: schema
      ? [
          schema.minimum !== undefined ? `min ${schema.minimum}` : "",
          schema.exclusiveMinimum !== undefined ? `> ${schema.exclusiveMinimum}` : "",
          schema.maximum !== undefined ? `max ${schema.maximum}` : "",
          schema.exclusiveMaximum !== undefined ? `< ${schema.exclusiveMaximum}` : "",
        ].filter(Boolean).join(", ")
      : "",
    required: new Set((schema && schema.required) || []),
    children: [],
  };
  if (kind === "object") {
    for (const [name, child] of Object.entries(schema.properties)) {
      node.children.push(fieldsOf(child, [...parts, name]));
    }
  }
  return node;
}

// The field an error path belongs to: itself, or its nearest drawn ancestor.
export function fieldFor(paths, errorPath) {
  let best = "$";
  for (const path of paths) {
    if (errorPath === path) return path;
    if ((errorPath.startsWith(`${path}.`) || errorPath.startsWith(`${path}[`)) && path.length > best.length) best = path;
  }
  return best;
}

// Where `path` sits in JSON text formatted by JSON.stringify(doc, null, 2): the
// [start, end) of its key, to select it in the editor. null when not found.
export function locate(text, parts) {
  let from = 0;
  for (const part of parts) {
    if (typeof part === "number") continue; // arrays: the enclosing key is close enough
    const needle = `${JSON.stringify(part)}:`;
    const at = text.indexOf(needle, from);
    if (at < 0) return null;
    from = at;
  }
  if (!parts.length) return null;
  const last = parts.filter((p) => typeof p !== "number").pop();
  return last === undefined ? null : [from, from + JSON.stringify(last).length];
}

// "$.a.b['c d'][0]" → ["a", "b", "c d", 0].
export function parsePath(path) {
  const parts = [];
  const re = /\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]/g;
  let m;
  while ((m = re.exec(path))) {
    if (m[1] !== undefined) parts.push(m[1]);
    else if (m[2] !== undefined) parts.push(Number(m[2]));
    else parts.push(m[3].replace(/\\(.)/g, "$1"));
  }
  return parts;
}
