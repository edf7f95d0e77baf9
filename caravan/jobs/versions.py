"""Versions of a job's definition, on plain data.

A version is the job's definition (the `jobsdefs` shape of caravan.jobs.definitions) at
one point of its history, kept by the operator as a ControllerRevision owned by the Job,
as StatefulSets keep theirs. Only the definition counts: a change of the counts or of
`suspend` (start, stop, updatecounts) is not a new version. These functions build and
read those objects, say what changed between two versions in one line, and diff them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from caravan import labels
from caravan.jobs.definitions import definition_of

JSON = dict[str, Any]

# The one-line summary of what a version changed, kept on its ControllerRevision.
CHANGE_ANNOTATION = "caravan.dev/change"
DEFAULT_HISTORY_LIMIT = 10


@dataclass(frozen=True)
class Version:
    number: int
    time: str
    change: str
    definition: JSON
    name: str = ""  # the ControllerRevision's name
    owner_uid: str = ""

    def summary(self) -> JSON:
        return {"version": self.number, "time": self.time, "change": self.change}

    def detail(self) -> JSON:
        return {"version": self.number, "time": self.time, "definition": self.definition}


def history_limit(body: Mapping[str, Any]) -> int:
    """How many versions the job keeps (`spec.revisionHistoryLimit`, at least one)."""
    value = (body.get("spec") or {}).get("revisionHistoryLimit")
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 1)
    return DEFAULT_HISTORY_LIMIT


def revision_name(job: str, uid: str, number: int) -> str:
    """Deterministic, so that recording one version twice is harmless (AlreadyExists);
    the uid's start keeps a recreated job's history apart from the old one's, which the
    garbage collector may not have removed yet."""
    return f"{job}-{uid[:8]}-{number}"


def controller_revision(job_body: Mapping[str, Any], number: int, change: str) -> JSON:
    """The ControllerRevision of `job_body`'s definition as version `number`."""
    meta = job_body["metadata"]
    job, uid = str(meta["name"]), str(meta["uid"])
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(job, uid, number),
            "labels": {
                labels.JOB_LABEL: job,
                labels.MANAGED_BY_LABEL: labels.MANAGED_BY_VALUE,
            },
            "annotations": {CHANGE_ANNOTATION: change},
            "ownerReferences": [
                {
                    "apiVersion": f"{labels.GROUP}/{labels.VERSION}",
                    "kind": "Job",
                    "name": job,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": definition_of(job_body),
        "revision": number,
    }


def read_revision(obj: Mapping[str, Any]) -> Version:
    meta = obj.get("metadata") or {}
    owner: Mapping[str, Any] = next(
        (o for o in meta.get("ownerReferences") or [] if o.get("controller")), {}
    )
    data = obj.get("data")
    return Version(
        number=int(obj.get("revision") or 0),
        time=str(meta.get("creationTimestamp") or ""),
        change=str((meta.get("annotations") or {}).get(CHANGE_ANNOTATION) or ""),
        definition=dict(data) if isinstance(data, Mapping) else {},
        name=str(meta.get("name") or ""),
        owner_uid=str(owner.get("uid") or ""),
    )


def history(objects: Iterable[Mapping[str, Any]], uid: str) -> list[Version]:
    """The versions of the job whose uid is `uid`, newest first (a recreated job's
    predecessor may still own some that the garbage collector has not removed)."""
    found = [read_revision(o) for o in objects]
    return sorted((v for v in found if v.owner_uid == uid), key=lambda v: -v.number)


@dataclass(frozen=True)
class Record:
    """What the operator does for a job whose definition may have changed."""

    create: JSON | None  # the ControllerRevision to create, or None
    delete: tuple[str, ...]  # ControllerRevisions beyond the history limit
    current: int  # the job's version once this is done


def plan_record(job_body: Mapping[str, Any], versions: Sequence[Version]) -> Record:
    """A new version when the definition differs from the newest one; then the history
    trimmed to the job's limit (the current version always stays)."""
    definition = definition_of(job_body)
    newest = versions[0] if versions else None
    kept = list(versions)
    create: JSON | None = None
    current = newest.number if newest else 0
    if newest is None or newest.definition != definition:
        current = (newest.number if newest else 0) + 1
        change = describe_change(newest.definition if newest else None, definition)
        same = next((v for v in versions if v.definition == definition), None)
        if same is not None:
            change = f"back to version {same.number}: {change}"
        create = controller_revision(job_body, current, change)
        kept.insert(0, read_revision(create))
    limit = history_limit(job_body)
    return Record(create, tuple(v.name for v in kept[limit:]), current)


def describe_change(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """One line: what `after` changes in `before` (field by field, group by group)."""
    if before is None:
        return "created"
    parts: list[str] = []
    if before.get("autostart", True) != after.get("autostart", True):
        parts.append(
            f"autostart {_short(before.get('autostart'))} -> {_short(after.get('autostart'))}"
        )
    if list(before.get("dependencies") or []) != list(after.get("dependencies") or []):
        parts.append(
            f"dependencies {_short(before.get('dependencies') or [])} -> "
            f"{_short(after.get('dependencies') or [])}"
        )
    old = _groups(before)
    new = _groups(after)
    for name in [n for n in new if n not in old]:
        parts.append(f"group {name} added")
    for name in [n for n in old if n not in new]:
        parts.append(f"group {name} removed")
    for name in [n for n in new if n in old]:
        a, b = old[name], new[name]
        for key in ("countInit", "countMax"):
            if a.get(key) != b.get(key):
                parts.append(f"{name}.{key} {a.get(key)} -> {b.get(key)}")
        if a.get("template") != b.get("template"):
            changed = _changed_paths(a.get("template"), b.get("template"))
            parts.append(
                f"{name}.template ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''})"
            )
        for key in sorted(set(a) | set(b)):
            if key not in ("name", "countInit", "countMax", "template") and a.get(key) != b.get(
                key
            ):
                parts.append(f"{name}.{key}")
    if list(old) != list(new) and set(old) == set(new):
        parts.append("groups reordered")
    return "; ".join(parts) or "no change"


def _groups(definition: Mapping[str, Any]) -> dict[str, JSON]:
    groups = (definition.get("template") or {}).get("taskGroups") or []
    return {str(g.get("name")): dict(g) for g in groups}


def _short(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000)
        .strip()
        .removesuffix("...")
        .strip()
    )


def _changed_paths(a: Any, b: Any, at: str = "") -> list[str]:
    """The paths (`spec.containers[0].image`) where two JSON values differ."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        found: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            found += _changed_paths(a.get(key), b.get(key), f"{at}.{key}" if at else str(key))
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        found = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found += _changed_paths(x, y, f"{at}[{i}]")
        return found
    return [] if a == b else [at or "."]


def render(definition: Mapping[str, Any] | None) -> list[str]:
    """A definition as YAML lines (sorted keys: two versions line up field by field)."""
    if definition is None:
        return []
    text = yaml.safe_dump(dict(definition), sort_keys=True, default_flow_style=False, width=100)
    return text.splitlines(keepends=True)


def unified_diff(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    before_label: str,
    after_label: str,
) -> str:
    """`diff -u` of two definitions ('' when they are equal)."""
    lines = difflib.unified_diff(render(before), render(after), before_label, after_label)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
