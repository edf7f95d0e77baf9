"""The log definitions list kept in the logs ConfigMap (`GET/POST /v1/log/logs`).

A definition names one task's log: job, task group, task (container) and a file name shown
to users; `logLevel` says whether the process supports dynamic log levels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

FIELDS: tuple[str, ...] = ("id", "group", "job", "task", "fileName", "logLevel")
STRING_FIELDS: tuple[str, ...] = ("id", "group", "job", "task", "fileName")
# Fields that name Kubernetes objects or ids: an empty one can never match anything.
NON_EMPTY_FIELDS: tuple[str, ...] = ("id", "group", "job", "task")


@dataclass(frozen=True, slots=True)
class LogDefinition:
    id: str
    group: str
    job: str
    task: str
    fileName: str
    logLevel: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a log list is refused: where (`[2].job`) and why."""

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def check_entry(index: int, raw: object) -> tuple[LogDefinition | None, list[Problem]]:
    """A definition from one element of the list, or the problems that prevent it."""
    where = f"[{index}]"
    if not isinstance(raw, dict):
        return None, [Problem(where, "must be an object")]
    problems = []
    for name in FIELDS:
        if name not in raw:
            problems.append(Problem(f"{where}.{name}", "is required"))
    for name in STRING_FIELDS:
        value = raw.get(name)
        if name in raw and not isinstance(value, str):
            problems.append(Problem(f"{where}.{name}", "must be a string"))
        elif name in NON_EMPTY_FIELDS and value == "":
            problems.append(Problem(f"{where}.{name}", "must not be empty"))
    if "logLevel" in raw and not isinstance(raw["logLevel"], bool):
        problems.append(Problem(f"{where}.logLevel", "must be a boolean"))
    for name in sorted(set(raw) - set(FIELDS)):
        problems.append(Problem(f"{where}.{name}", "is not a field of a log definition"))
    if problems:
        return None, problems
    return LogDefinition(**{name: raw[name] for name in FIELDS}), []


def check_list(raw: object) -> tuple[list[LogDefinition], list[Problem]]:
    """Validates a whole list (POST): every problem of every entry, and duplicate ids."""
    if not isinstance(raw, list):
        return [], [Problem("body", "must be an array of log definitions")]
    entries: list[LogDefinition] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        entry, entry_problems = check_entry(index, item)
        problems.extend(entry_problems)
        if entry is None:
            continue
        if entry.id in seen:
            problems.append(
                Problem(f"[{index}].id", f"duplicate id {entry.id!r} (also at [{seen[entry.id]}])")
            )
            continue
        seen[entry.id] = index
        entries.append(entry)
    return (entries, []) if not problems else ([], problems)


def parse_stored(text: str | None) -> tuple[list[LogDefinition], list[Problem]]:
    """The list stored in the ConfigMap, read leniently: people edit it with kubectl.

    A missing or empty value is the empty list. Entries that are not valid definitions
    (and repeats of an id already seen) are skipped and reported as problems, so one typo
    does not hide every other log.
    """
    if text is None or not text.strip():
        return [], []
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return [], [Problem("$", f"invalid JSON: {exc}")]
    if not isinstance(raw, list):
        return [], [Problem("$", "must be an array of log definitions")]
    entries: list[LogDefinition] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        entry, entry_problems = check_entry(index, item)
        problems.extend(entry_problems)
        if entry is None:
            continue
        if entry.id in seen:
            problems.append(Problem(f"[{index}].id", f"duplicate id {entry.id!r}: skipped"))
            continue
        seen.add(entry.id)
        entries.append(entry)
    return entries, problems


def dump(entries: Sequence[LogDefinition]) -> str:
    """The ConfigMap text of a list: indented, so `kubectl edit` shows one field a line."""
    return json.dumps([e.to_json() for e in entries], indent=2) + "\n"


def find(entries: Sequence[LogDefinition], log_id: str) -> LogDefinition | None:
    return next((e for e in entries if e.id == log_id), None)
