"""Rollouts of task groups: which version became healthy, and `autoRevert` when one stalls.

Each group's Deployment says how its rollout goes (its `Progressing` condition). When every
started group has rolled out the job's current version, that version is the job's
`status.healthyVersion`. When a group whose policy says `autoRevert` stalls
(ProgressDeadlineExceeded) on a later version, the job's definition goes back to the
healthy version's, as a revert through the API would: a new version, counts kept. No
Kubernetes controller does this for a plain Deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from caravan.jobs.definitions import with_definition
from caravan.jobs.spec import deployment_name, read_job
from caravan.kube.client import JOBS, JSON, KubeClient
from caravan.kube.recorder import EventRecorder
from caravan.kube.rmw import Decision, swap_spec
from caravan.labels import GROUP, VERSION
from caravan.operator.revisions import list_versions

log = logging.getLogger(__name__)

COMPLETE = "complete"
STALLED = "stalled"
PROGRESSING = "progressing"


@dataclass(frozen=True)
class Rollout:
    """A Deployment's rollout as its status says, for the generation it observed."""

    deployment: str
    generation: int
    state: str


def rollout_of(deployment: Mapping[str, Any]) -> Rollout:
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    generation = int(meta.get("generation") or 0)
    name = str(meta.get("name") or "")
    if int(status.get("observedGeneration") or 0) < generation:
        return Rollout(name, generation, PROGRESSING)  # the controller has not looked yet
    progressing: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Rollout(name, generation, STALLED)
    replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
    done = (
        int(status.get("updatedReplicas") or 0) >= replicas
        and int(status.get("availableReplicas") or 0) >= replicas
        and int(status.get("replicas") or 0) == replicas
    )
    return Rollout(name, generation, COMPLETE if done else PROGRESSING)


@dataclass(frozen=True)
class Verdict:
    healthy: bool  # every started group rolled out the current version
    stalled_auto_revert: tuple[str, ...]  # groups with autoRevert whose rollout stalled


def judge(body: JSON, rollouts: Mapping[str, Rollout], applied: Mapping[str, int]) -> Verdict:
    """`rollouts` by Deployment name; `applied`: the generation our last apply gave each
    Deployment (a rollout older than it says nothing about the current version)."""
    spec = read_job(body)
    started = [g for g in spec.task_groups if spec.desired_count(g) > 0]
    current: dict[str, str] = {}
    for group in spec.task_groups:
        name = deployment_name(spec.name, group.name)
        rollout = rollouts.get(name)
        if rollout is not None and name in applied and rollout.generation >= applied[name]:
            current[group.name] = rollout.state
    healthy = bool(started) and all(current.get(g.name) == COMPLETE for g in started)
    stalled = tuple(
        g.name for g in started if g.rollout.auto_revert and current.get(g.name) == STALLED
    )
    return Verdict(healthy, stalled)


@dataclass
class RolloutKeeper:
    kube: KubeClient
    namespace: str
    recorder: EventRecorder | None = None

    async def check(
        self, body: JSON, rollouts: Sequence[Rollout], applied: Mapping[str, int]
    ) -> None:
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        version = status.get("version")
        if not isinstance(version, int) or meta.get("deletionTimestamp"):
            return  # the version is recorded first (caravan.operator.revisions)
        verdict = judge(body, {r.deployment: r for r in rollouts}, applied)
        job = str(meta.get("name"))
        healthy = status.get("healthyVersion")
        if verdict.healthy and healthy != version:
            await self.kube.merge_patch(
                JOBS.item(self.namespace, job, "status"), {"status": {"healthyVersion": version}}
            )
            return
        if verdict.stalled_auto_revert and isinstance(healthy, int) and healthy != version:
            await self._revert(body, healthy, verdict.stalled_auto_revert)

    async def _revert(self, body: JSON, target: int, groups: Sequence[str]) -> None:
        meta = body["metadata"]
        job = str(meta["name"])
        versions = await list_versions(self.kube, self.namespace, job, str(meta.get("uid")))
        chosen = next((v for v in versions if v.number == target), None)
        if chosen is None:
            return  # trimmed from the history: nothing to go back to
        version = (body.get("status") or {}).get("version")

        def decide(current: JSON) -> Decision[bool]:
            """Reverted, unless it changed meanwhile: a person acted, leave it to them."""
            if (current.get("metadata") or {}).get("generation") != meta.get("generation"):
                return Decision(None, False)
            return Decision(with_definition(current, chosen.definition), True)

        outcome = await swap_spec(self.kube, JOBS.item(self.namespace, job), decide)
        if not outcome.result:
            return
        message = (
            f"the rollout of version {version} stalled (group {', '.join(groups)}): back to "
            f"version {target}, the last one that became healthy"
        )
        log.warning("job %s: %s", job, message)
        if self.recorder is not None:
            regarding = {**body, "apiVersion": f"{GROUP}/{VERSION}", "kind": "Job"}
            await self.recorder.post(regarding, "Warning", "AutoReverted", "Revert", message)
