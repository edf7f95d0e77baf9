"""Job definitions (Genvid `jobsdefs`): a Job resource seen through the Genvid shape.

A definition is `{"autostart", "byCluster", "clusterCategories", "dependencies",
"template": {"taskGroups": [{"name", "countInit", "countMax", "template"}]}}`. These
functions convert between it and Job bodies, on plain data. The routes have already
checked the shape (types, patterns, ranges) with their models; `problems` adds the rules
a schema cannot say.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from caravan import labels
from caravan.jobs.counts import clamp
from caravan.jobs.order import find_cycle
from caravan.jobs.spec import read_job

JSON = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def definition_of(body: Mapping[str, Any]) -> JSON:
    """The Genvid definition of a Job body (a kubectl-made one too)."""
    spec = read_job(dict(body))
    rollouts = _rollouts(body)
    groups = []
    for g in spec.task_groups:
        group: JSON = {
            "name": g.name,
            "countInit": g.count_init,
            "countMax": g.count_max,
            "template": copy.deepcopy(g.template),
        }
        # An extension of the Genvid shape, there only when the group sets one.
        if g.name in rollouts:
            group["rollout"] = copy.deepcopy(rollouts[g.name])
        groups.append(group)
    return {
        "autostart": spec.autostart,
        "byCluster": False,
        "clusterCategories": [],
        "dependencies": list(spec.dependencies),
        "template": {"taskGroups": groups},
    }


def _rollouts(body: Mapping[str, Any]) -> dict[str, JSON]:
    """Each group's rollout policy as written in the Job (caravan.jobs.rollout)."""
    found: dict[str, JSON] = {}
    for raw in (body.get("spec") or {}).get("taskGroups") or []:
        if isinstance(raw, Mapping) and isinstance(raw.get("rollout"), Mapping):
            found[str(raw.get("name", ""))] = dict(raw["rollout"])
    return found


def defined(body: Mapping[str, Any]) -> bool:
    """False for a Job being deleted: it is no longer a definition."""
    return not (body.get("metadata") or {}).get("deletionTimestamp")


def problems(name: str, definition: Mapping[str, Any], where: str = "") -> list[Problem]:
    """What the Job resource cannot say about a shape-valid definition. Everything the
    Job alone gets wrong (countInit above countMax, a self-dependency, two groups of one
    name...) is refused by the CRD's own rules: the API sends the Job as a dry run and
    answers the apiserver's message, so that kubectl and the API say the same."""
    prefix = f"{where}." if where else ""
    found: list[Problem] = []
    if definition.get("byCluster"):
        found.append(
            Problem(f"{prefix}byCluster", "must be false: one installation serves one cluster")
        )
    if definition.get("clusterCategories"):
        found.append(
            Problem(
                f"{prefix}clusterCategories",
                "must be empty: one installation serves one cluster",
            )
        )
    return found


def missing_dependency_message(job: str) -> str:
    return f"spec.dependencies names job {job!r}, which does not exist"


def cycle_message(cycle: Sequence[str]) -> str:
    return "spec.dependencies make a dependency cycle: " + " -> ".join(cycle)


def dependency_problems(
    dependencies: Mapping[str, Sequence[str]], names: Iterable[str]
) -> list[Problem]:
    """The rules across jobs, which the CRD cannot check: each of `names` depends only on
    jobs of `dependencies` (every job, as it would be after the write), and no cycle."""
    found = [
        Problem(f"{name}.dependencies", missing_dependency_message(d))
        for name in sorted(names)
        for d in dependencies.get(name) or []
        if d not in dependencies
    ]
    cycle = find_cycle(dependencies)
    if cycle is not None:
        found.append(Problem(f"{cycle[0]}.dependencies", cycle_message(cycle)))
    return found


def dependency_problem_of(job: str, dependencies: Mapping[str, Sequence[str]]) -> str | None:
    """What is wrong with `job`'s dependencies among every job's (the operator's view):
    a job it names is missing, or it is on a cycle. None when nothing is."""
    for d in dependencies.get(job) or []:
        if d not in dependencies:
            return missing_dependency_message(d)
    # A path from the job back to itself, depth first in name order.
    seen: set[str] = set()

    def back(name: str, path: list[str]) -> list[str] | None:
        for d in sorted(dependencies.get(name) or []):
            if d == job:
                return [*path, d]
            if d not in seen:
                seen.add(d)
                found = back(d, [*path, d])
                if found:
                    return found
        return None

    cycle = back(job, [job])
    return cycle_message(cycle) if cycle else None


def new_job(name: str) -> JSON:
    """The skeleton a new definition is written into: a job created by definition is
    stopped ("dead") until started, as a loaded Genvid definition is."""
    return {
        "apiVersion": f"{labels.GROUP}/{labels.VERSION}",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"suspend": True, "taskGroups": []},
    }


def is_running(body: Mapping[str, Any]) -> bool:
    """Started (pending or running): what the "service running check" protects."""
    return not (body.get("spec") or {}).get("suspend", False)


def with_definition(body: Mapping[str, Any], definition: Mapping[str, Any]) -> JSON:
    """The Job body after replacing its definition.

    `suspend` and the rest of the object are kept. A running group keeps its current
    count (Nomad's PreserveCounts), clamped to a lower new countMax; a stopped job keeps
    no counts, since starting it sets every group to countInit.
    """
    updated = copy.deepcopy(dict(body))
    spec = updated.setdefault("spec", {})
    running = is_running(updated)
    current = {g.name: g for g in read_job(updated).task_groups}
    groups = []
    for raw in (definition.get("template") or {}).get("taskGroups") or []:
        count_init = raw.get("countInit", 1)
        count_max = raw["countMax"]
        group: JSON = {
            "name": raw["name"],
            "countInit": count_init,
            "countMax": count_max,
            "template": copy.deepcopy(raw.get("template") or {}),
        }
        if raw.get("rollout") is not None:
            group["rollout"] = copy.deepcopy(raw["rollout"])
        old = current.get(raw["name"])
        if running and old is not None:
            group["count"] = clamp(old.count, 0, count_max)
        groups.append(group)
    spec["taskGroups"] = groups
    spec["autostart"] = bool(definition.get("autostart", True))
    spec["dependencies"] = list(definition.get("dependencies") or [])
    return updated


def changes_definition(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether writing `after` over `before` changes anything (defaults compare equal)."""
    return definition_of(before) != definition_of(after) or changes_what_runs(before, after)


def changes_what_runs(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether it changes what the job runs: its groups, counts, templates, or suspend.

    Only such a change of a started job needs `force`; autostart and dependencies only
    matter to the next "start all".
    """
    return bool(_running_part(before) != _running_part(after))


def _running_part(body: Mapping[str, Any]) -> Any:
    spec = read_job(dict(body))
    return (
        spec.suspend,
        [
            (g.name, g.count if not spec.suspend else None, g.count_init, g.count_max, g.template)
            for g in spec.task_groups
        ],
    )


def trial_deployment(job: str, group: Mapping[str, Any]) -> JSON:
    """A Deployment of `group`'s pod template for a server-side dry run: Kubernetes says
    whether the template is valid before the Job is written. Nothing is created: a
    generated name (so no clash with the real one), no owner, no replicas."""
    own = {labels.JOB_LABEL: job, labels.TASK_GROUP_LABEL: str(group.get("name", ""))}
    template = copy.deepcopy(dict(group.get("template") or {}))
    if template.get("metadata") is None:
        template["metadata"] = {}
    meta = template["metadata"]
    if isinstance(meta, dict):  # anything else: Kubernetes says what is wrong with it
        found = meta.get("labels")
        meta["labels"] = {**(found if isinstance(found, dict) else {}), **own}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"generateName": f"{job}-{group.get('name', '')}-", "labels": own},
        "spec": {"replicas": 0, "selector": {"matchLabels": own}, "template": template},
    }
