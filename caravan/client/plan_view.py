"""How the client shows a change before making it: a one-line summary of what changed,
and a unified diff a person reads at a glance, coloured as `diff` users expect (removals
red, additions green, hunks cyan) when the output is a terminal.

Plain data in, text lines out; only `print_diff` and `print_changes` touch the console.
Values are shown as JSON (`true`, `["services"]`), never as Python reprs, and documents
as sorted block YAML, the most readable text to diff line by line (the diff itself is
caravan.jobs.versions', the one the API's dry runs and version diffs answer).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from caravan.jobs.versions import unified_diff

SYMBOLS = {"create": "+", "replace": "~", "delete": "-", "unchanged": "="}
_STYLES = {"+": "green", "-": "red", "~": "yellow", "=": "dim"}
MAX_PATHS = 6  # paths named in a summary line before "and N more"


def short(value: Any) -> str:
    """A value as a person reads it: strings bare, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=True)


def unified(before: Any, after: Any, name: str) -> list[str]:
    """The unified diff of two documents (None: absent), headed by `name`: the one diff
    of job definitions (caravan.jobs.versions), so a load plan, a dry run and a version
    diff read alike."""
    text = unified_diff(
        before,
        after,
        f"{name} (now)" if before is not None else "/dev/null",
        f"{name} (after)" if after is not None else "/dev/null",
    )
    return text.splitlines()


@dataclass
class PathChanges:
    """Dotted paths that differ between two documents; a whole new (or gone) object is
    named once, by its own path."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        for verb, found in (
            ("changed", self.changed),
            ("added", self.added),
            ("removed", self.removed),
        ):
            if found:
                shown = ", ".join(found[:MAX_PATHS])
                more = len(found) - MAX_PATHS
                parts.append(f"{verb} {shown}" + (f" and {more} more" if more > 0 else ""))
        return "; ".join(parts)


def path_changes(before: Any, after: Any) -> PathChanges:
    found = PathChanges()
    _walk(before, after, "", found)
    return found


def _walk(before: Any, after: Any, prefix: str, found: PathChanges) -> None:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in before:
                found.added.append(path)
            elif key not in after:
                found.removed.append(path)
            else:
                _walk(before[key], after[key], path, found)
    elif before != after:
        found.changed.append(prefix or "the whole document")


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any], keys: Iterable[str]) -> str:
    """`autostart: false → true, dependencies: [] → ["services"]` for the keys that differ."""
    return ", ".join(
        f"{k}: {short(before.get(k))} → {short(after.get(k))}"
        for k in keys
        if before.get(k) != after.get(k)
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def diff_style(line: str) -> str:
    if line.startswith(("---", "+++")):
        return "bold"
    if line.startswith("@@"):
        return "cyan"
    return {"+": "green", "-": "red"}.get(line[:1], "")


def print_diff(console: Console, lines: Sequence[str], indent: str = "    ") -> None:
    """The diff's lines, coloured when the console is a terminal (rich decides: never
    in a pipe, and NO_COLOR is honoured)."""
    for line in lines:
        console.print(Text(indent + line, style=diff_style(line)), soft_wrap=True)


@dataclass(frozen=True)
class Row:
    """One planned change as shown: `~ job  web  dependencies: [] → ["services"]`."""

    action: str  # create, replace, delete, unchanged
    kind: str
    name: str
    summary: str = ""
    diff: tuple[str, ...] = ()


def print_changes(console: Console, rows: Sequence[Row]) -> None:
    """One aligned line per change, its diff (if any) right under it."""
    kind_width = max((len(r.kind) for r in rows), default=0)
    name_width = max((len(r.name) for r in rows), default=0)
    action_width = max((len(r.action) for r in rows if r.summary), default=0)
    for row in rows:
        symbol = SYMBOLS.get(row.action, "?")
        line = Text()
        line.append(f"{symbol} ", style=_STYLES.get(symbol, ""))
        line.append(f"{row.kind:<{kind_width}}  {row.name:<{name_width}}  ")
        line.append(row.action, style=_STYLES.get(symbol, ""))
        if row.summary:
            line.append(" " * (action_width - len(row.action)) + f"  {row.summary}")
        console.print(line, soft_wrap=True)
        print_diff(console, row.diff)
