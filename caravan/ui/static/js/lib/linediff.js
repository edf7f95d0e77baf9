// A line diff, small and pure: what changed between two texts, as `diff -u` shows it.
// Used by the job page to compare two versions of a definition (a few hundred lines at
// most): the common head and tail are set aside, and the rest is aligned on a longest
// common subsequence of lines.

const MAX_CELLS = 4_000_000; // beyond this the middle is shown as removed then added

// diffLines(a, b): one entry per line, in order, {op, text, a, b}: op " " (in both), "-"
// (only in a) or "+" (only in b); a and b are 1-based line numbers (null where absent).
export function diffLines(aText, bText) {
  const a = splitLines(aText);
  const b = splitLines(bText);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const out = [];
  for (let i = 0; i < head; i++) out.push({ op: " ", text: a[i], a: i + 1, b: i + 1 });
  middle(a, b, head, a.length - tail, head, b.length - tail, out);
  for (let k = tail; k > 0; k--) {
    const i = a.length - k;
    const j = b.length - k;
    out.push({ op: " ", text: a[i], a: i + 1, b: j + 1 });
  }
  return out;
}

function splitLines(text) {
  if (text === "" || text === null || text === undefined) return [];
  const lines = String(text).split("\n");
  if (lines[lines.length - 1] === "") lines.pop(); // a final newline ends the last line
  return lines;
}

// a[a0:a1] against b[b0:b1], by the classic LCS table (lengths of the common subsequence
// of the suffixes), then one walk from the top-left that prefers removals before
// additions, as diff does.
function middle(a, b, a0, a1, b0, b1, out) {
  const n = a1 - a0;
  const m = b1 - b0;
  if (n * m > MAX_CELLS || n === 0 || m === 0) {
    for (let i = a0; i < a1; i++) out.push({ op: "-", text: a[i], a: i + 1, b: null });
    for (let j = b0; j < b1; j++) out.push({ op: "+", text: b[j], a: null, b: j + 1 });
    return;
  }
  const width = m + 1;
  const table = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * width + j] =
        a[a0 + i] === b[b0 + j] ? table[(i + 1) * width + j + 1] + 1 : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[a0 + i] === b[b0 + j]) {
      out.push({ op: " ", text: a[a0 + i], a: a0 + i + 1, b: b0 + j + 1 });
      i++;
      j++;
    } else if (i < n && (j === m || table[(i + 1) * width + j] >= table[i * width + j + 1])) {
      out.push({ op: "-", text: a[a0 + i], a: a0 + i + 1, b: null });
      i++;
    } else {
      out.push({ op: "+", text: b[b0 + j], a: null, b: b0 + j + 1 });
      j++;
    }
  }
}

// hunks(lines, context): the changed lines with `context` unchanged lines around them,
// as diff -u groups them: [{aStart, aCount, bStart, bCount, lines}].
export function hunks(lines, context = 3) {
  const changed = [];
  lines.forEach((line, k) => {
    if (line.op !== " ") changed.push(k);
  });
  const result = [];
  let k = 0;
  while (k < changed.length) {
    const from = Math.max(0, changed[k] - context);
    let to = Math.min(lines.length, changed[k] + context + 1);
    k++;
    while (k < changed.length && changed[k] - context <= to) {
      to = Math.min(lines.length, changed[k] + context + 1);
      k++;
    }
    const part = lines.slice(from, to);
    const a = startOf(lines, from, part, "a");
    const b = startOf(lines, from, part, "b");
    result.push({ aStart: a.start, aCount: a.count, bStart: b.start, bCount: b.count, lines: part });
  }
  return result;
}

// Where a hunk starts on one side, and how many of its lines that side has. A side with
// no line in the hunk starts, as in diff, at the line before it (0 at the top).
function startOf(lines, from, part, side) {
  const own = part.filter((l) => l[side] !== null);
  if (own.length) return { start: own[0][side], count: own.length };
  for (let i = from - 1; i >= 0; i--) if (lines[i][side] !== null) return { start: lines[i][side], count: 0 };
  return { start: 0, count: 0 };
}

// unified(a, b, {from, to, context}): the text of `diff -u`, "" when a and b are equal.
export function unified(aText, bText, { from = "a", to = "b", context = 3 } = {}) {
  const parts = hunks(diffLines(aText, bText), context);
  if (!parts.length) return "";
  const out = [`--- ${from}`, `+++ ${to}`];
  for (const hunk of parts) {
    out.push(hunkHeader(hunk));
    for (const line of hunk.lines) out.push(`${line.op}${line.text}`);
  }
  return `${out.join("\n")}\n`;
}

// A hunk's first line, as diff -u writes it: "@@ -3,4 +3,5 @@" (",1" left out).
export function hunkHeader(hunk) {
  return `@@ -${range(hunk.aStart, hunk.aCount)} +${range(hunk.bStart, hunk.bCount)} @@`;
}

function range(start, count) {
  return count === 1 ? String(start) : `${start},${count}`;
}

// A stable text of a JSON value for diffing: keys sorted at every level, two-space
// indent, so two versions differ only where their content does.
export function canonicalJson(value) {
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const sorted = {};
    for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key]);
    return sorted;
  }
  return value;
}
