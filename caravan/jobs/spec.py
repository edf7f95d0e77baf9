"""Typed reading of a Job custom resource's spec (plain dict in, dataclasses out)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from caravan.jobs.rollout import DEFAULT_ROLLOUT, RolloutPolicy, read_rollout
from caravan.labels import RESTARTED_AT_ANNOTATION


@dataclass(frozen=True)
class TaskGroupSpec:
    name: str
    count: int
    count_init: int
    count_max: int
    template: dict[str, Any]
    rollout: RolloutPolicy = DEFAULT_ROLLOUT


@dataclass(frozen=True)
class JobSpec:
    name: str
    suspend: bool
    task_groups: tuple[TaskGroupSpec, ...]
    # Started by "start all" (Genvid SDK 1.30's `autostart`; the CRD defaults it to true).
    autostart: bool = True
    # Jobs "start all" starts before this one.
    dependencies: tuple[str, ...] = ()
    # (group, time) of each group's last restart (caravan.jobs.restart).
    restarted_at: tuple[tuple[str, str], ...] = ()

    def group(self, name: str) -> TaskGroupSpec | None:
        return next((g for g in self.task_groups if g.name == name), None)

    def desired_count(self, group: TaskGroupSpec) -> int:
        """Replicas the group's Deployment should have now."""
        return 0 if self.suspend else group.count


def deployment_name(job: str, group: str) -> str:
    """The Deployment that runs a task group."""
    return f"{job}-{group}"


def desired_replicas(spec: JobSpec) -> dict[str, int]:
    """Each group's Deployment (by name) and the replicas it should have now."""
    return {deployment_name(spec.name, g.name): spec.desired_count(g) for g in spec.task_groups}


def rescaled(before: JobSpec, after: JobSpec) -> dict[str, int]:
    """The Deployments a change of the Job rescales (groups in both), with their new
    replicas: what a count change can write through without waiting for the operator."""
    old = desired_replicas(before)
    return {name: n for name, n in desired_replicas(after).items() if old.get(name, n) != n}


# Adjusts a group's pod template in place (e.g. mounts the loggers file); pure. The
# operator applies them when it builds a group's Deployment.
TemplateDecorator = Callable[[dict[str, Any], JobSpec, TaskGroupSpec], None]


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def read_job(body: dict[str, Any]) -> JobSpec:
    """Reads a Job body; tolerant of missing fields (the CRD schema is the gatekeeper)."""
    spec = body.get("spec") or {}
    groups = []
    for raw in spec.get("taskGroups") or []:
        count_init = _int(raw.get("countInit"), 1)
        count_max = _int(raw.get("countMax"), count_init)
        groups.append(
            TaskGroupSpec(
                name=str(raw.get("name", "")),
                # An absent count means the group was never scaled: it runs countInit.
                count=_int(raw.get("count"), count_init),
                count_init=count_init,
                count_max=count_max,
                template=raw.get("template") or {},
                rollout=read_rollout(raw.get("rollout")),
            )
        )
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return JobSpec(
        name=str(body.get("metadata", {}).get("name", "")),
        suspend=bool(spec.get("suspend", False)),
        task_groups=tuple(groups),
        autostart=spec.get("autostart") is not False,
        dependencies=read_dependencies(spec),
        restarted_at=read_restarts(annotations.get(RESTARTED_AT_ANNOTATION)),
    )


def read_dependencies(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The jobs a Job's spec depends on (`spec.dependencies`), alone: the operator reads
    them at every Job event, where the rest of the spec is not needed."""
    dependencies = spec.get("dependencies")
    return tuple(str(d) for d in dependencies) if isinstance(dependencies, list) else ()


def read_restarts(text: Any) -> tuple[tuple[str, str], ...]:
    """The restart annotation's {group: time}, sorted; nothing when absent or unreadable."""
    try:
        parsed = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return ()
    if not isinstance(parsed, dict):
        return ()
    return tuple(sorted((str(g), str(t)) for g, t in parsed.items() if isinstance(t, str)))
