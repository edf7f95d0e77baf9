"""Level-based reconciliation of one Job: desired Deployments applied, orphans removed,
status written. Requests for the same job are coalesced and run one at a time."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from caravan import labels
from caravan.jobs.definitions import dependency_problem_of
from caravan.jobs.failures import DeploymentFacts
from caravan.jobs.podpolicy import PodPolicy, violations
from caravan.jobs.spec import read_job
from caravan.jobs.summary import PodFacts
from caravan.kube.client import DEPLOYMENTS, JOBS, JSON, KubeClient
from caravan.kube.errors import Conflict, Invalid, KubeError, NotFound
from caravan.kube.recorder import EventRecorder
from caravan.operator.deployments import TemplateDecorator, deployment_name, desired_deployment
from caravan.operator.revisions import RevisionKeeper
from caravan.operator.rollouts import PROGRESSING, Rollout, RolloutKeeper
from caravan.operator.status import (
    DEPENDENCIES_CONDITION,
    dependency_reason,
    job_status_body,
    status_changed,
)
from caravan.operator.writethrough import (
    GRACE_SECONDS,
    counts_written_through,
    only_replicas_differ,
    with_replicas,
)
from caravan.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# (job name) -> pods of that job / (deployment name, group) pairs owned by that job
PodsLookup = Callable[[str], Iterable[PodFacts]]
DeploymentsLookup = Callable[[str], Iterable[tuple[str, str]]]
# (job name) -> what each group's Deployment says of allocations it could not make
FailuresLookup = Callable[[str], Mapping[str, DeploymentFacts]]


async def reconcile_job(
    kube: KubeClient,
    namespace: str,
    body: JSON,
    pods: Iterable[PodFacts],
    deployments: Iterable[tuple[str, str]],
    decorators: Sequence[TemplateDecorator] = (),
    applied: dict[str, Applied] | None = None,
    policy: PodPolicy | None = None,
    dependencies: Mapping[str, Sequence[str]] | None = None,
    recorder: EventRecorder | None = None,
    failures: Mapping[str, DeploymentFacts] | None = None,
) -> str | None:
    """One pass. `applied` remembers each Deployment's last applied manifest and the
    generation the apply gave it: an unchanged manifest is not sent again (a change of
    the Deployment's spec by anyone else drops its entry, see Reconciler). `dependencies`
    maps every job to the jobs it depends on (None: not checked); what is wrong there is
    a condition of the Job and a Warning Event through `recorder`.

    Returns why the Job is refused, when its templates break the pod `policy`: such a
    Job (stored before the admission policy existed) gets no Deployment created or
    changed, only a condition saying why."""
    applied = {} if applied is None else applied
    spec = read_job(body)
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return None  # garbage collection removes the Deployments through owner references
    problems = violations(body, policy) if policy is not None else []
    refusal = "; ".join(str(p) for p in problems) or None
    wanted = {g.name for g in spec.task_groups}
    manifests = (
        []
        if refusal
        else [desired_deployment(body, spec, group, decorators) for group in spec.task_groups]
    )
    # Server-side apply with force: a hand-made change to a field we own (replicas,
    # template) is taken back; fields we never set stay as others left them. The groups
    # are independent objects, so they are applied concurrently.
    changed = [m for m in manifests if _applied_manifest(applied, m) != m]
    results = await asyncio.gather(
        *(
            kube.apply(DEPLOYMENTS.item(namespace, m["metadata"]["name"]), m, labels.FIELD_MANAGER)
            for m in changed
        ),
        return_exceptions=True,
    )
    for manifest, result in zip(changed, results, strict=True):
        name = manifest["metadata"]["name"]
        if isinstance(result, BaseException):
            applied.pop(name, None)
        else:
            applied[name] = Applied(manifest, _generation(result))
    # Invalid: the Job asks for something Kubernetes will not take (e.g. an invalid pod
    # template); reported on the Job's status rather than retried.
    refusals = [r for r in results if isinstance(r, Invalid)]
    for result in results:
        if isinstance(result, BaseException) and result not in refusals:
            raise result  # the cluster or the network: retried with backoff
    for name, group_name in [] if refusal else deployments:
        if group_name not in wanted and name == deployment_name(spec.name, group_name):
            log.info("job %s: deleting Deployment %s of removed group", spec.name, name)
            with contextlib.suppress(NotFound):
                await kube.delete(DEPLOYMENTS.item(namespace, name))
            applied.pop(name, None)
    by_group: dict[str, list[PodFacts]] = {}
    for pod in pods:
        by_group.setdefault(pod.group, []).append(pod)
    apply_error = "; ".join(r.message for r in refusals) or None
    dependency_problem = (
        None if dependencies is None else dependency_problem_of(spec.name, dependencies)
    )
    new_status = job_status_body(
        spec,
        by_group,
        int(meta.get("generation", 0)),
        body.get("status"),
        apply_error=apply_error,
        refusal=refusal,
        dependency_problem=dependency_problem,
        deployments=failures,
    )
    if status_changed(body.get("status"), new_status):
        await kube.merge_patch(JOBS.item(namespace, spec.name, "status"), {"status": new_status})
        told = _newly(body.get("status"), DEPENDENCIES_CONDITION, dependency_problem)
        if dependency_problem and recorder is not None and told:
            await recorder.post(
                _regarding(body),
                "Warning",
                dependency_reason(dependency_problem),
                "Reconcile",
                dependency_problem,
            )
    if apply_error:
        # Written on the Job; retrying cannot help until its spec changes (a new event).
        log.warning("job %s: Kubernetes refused its Deployments: %s", spec.name, apply_error)
    return refusal


def _newly(status: JSON | None, kind: str, message: str | None) -> bool:
    """Whether condition `kind` did not already say `message` (an Event once per change)."""
    for condition in (status or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition.get("message") != message or condition.get("status") != "False"
    return True


def _regarding(body: JSON) -> JSON:
    # (A Job read from a list carries no apiVersion nor kind.)
    return {**body, "apiVersion": f"{labels.GROUP}/{labels.VERSION}", "kind": "Job"}


@dataclass(frozen=True)
class Applied:
    """What was last applied to a Deployment, and the generation that gave it."""

    manifest: JSON
    generation: int


def _applied_manifest(applied: dict[str, Applied], manifest: JSON) -> JSON | None:
    entry = applied.get(manifest["metadata"]["name"])
    return None if entry is None else entry.manifest


@dataclass
class Reconciler:
    """Coalesces reconcile requests per job: a burst of pod events makes one pass."""

    kube: KubeClient
    namespace: str
    pods: PodsLookup
    deployments: DeploymentsLookup
    decorators: Sequence[TemplateDecorator] = ()
    # The installation's pod policy (None: none) and where refusals are told as Events.
    policy: PodPolicy | None = None
    recorder: EventRecorder | None = None
    failures: FailuresLookup = lambda job: {}
    # (Job body, Deployment name, what had happened to it): a drift repaired.
    on_drift: Callable[[JSON, str, str], None] = lambda body, name, how: None
    on_result: Callable[[str], None] = lambda result: None
    # Every job's dependencies (Kopf's index), for the rules across jobs.
    dependencies: Callable[[], Mapping[str, Sequence[str]]] | None = None
    # Keeps each job's versions (ControllerRevisions); None: no history kept.
    revisions: RevisionKeeper | None = None
    # Each job's Deployments' rollouts, and what follows them (healthy version, autoRevert).
    rollouts: Callable[[str], Iterable[Rollout]] = lambda job: ()
    rollout_keeper: RolloutKeeper | None = None
    _rollout_states: dict[str, dict[str, str]] = field(default_factory=dict)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # backoff after failures
    clock: Callable[[], float] = time.monotonic
    _pending: set[str] = field(default_factory=set)
    _running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _bodies: dict[str, JSON] = field(default_factory=dict)
    # What each job's last successful pass applied: its generation and restart times.
    _done: dict[str, tuple[int, str]] = field(default_factory=dict)
    # Per job: each Deployment's last applied manifest and generation.
    _applied: dict[str, dict[str, Applied]] = field(default_factory=dict)
    # Per job: the (uid, generation) whose refusal was told in an Event (once each).
    _told: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Per job: Deployments changed by someone else (what happened, at which generation),
    # until a pass applied the Job's definition to them again.
    _drifted: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    # Per job: until when its replicas are left to the API's write-through, and the pass
    # that comes then unless the write's echo came first (caravan.operator.writethrough).
    _awaiting: dict[str, float] = field(default_factory=dict)
    _wakes: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    # Per job: the Job (uid, generation, restart) whose pass waits for the write-through.
    # Another request with that very Job (the store's and Kopf's watches both tell of
    # it) would find the same nothing to do; the echo or the wake makes the next pass.
    _awaited: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    closed: bool = False

    def request(
        self, job: str, body: Mapping[str, Any] | None = None, *, new_spec_only: bool = False
    ) -> None:
        """Asks for a pass over `job`; with the Job's body from a watch event, no GET. The
        pass works on its own copy of `body` (the caller's may be Kopf's or the store's).

        `new_spec_only`: skip it when `body`'s generation already had a successful pass
        and nothing else is pending (a status or metadata change of the Job).
        """
        if self.closed:
            return  # shutting down: the client is (being) closed
        if body is not None and job not in self._pending:
            if new_spec_only and self._done.get(job) == _applied_key(body):
                return
            if self._awaited.get(job) == _awaited_key(body):
                return
        if body is not None:
            self._bodies[job] = copy.deepcopy(dict(body))
        else:
            self._bodies.pop(job, None)  # something else changed: read the Job afresh
        self._pending.add(job)
        if job not in self._running:
            self._running[job] = asyncio.create_task(self._drain(job), name=f"reconcile-{job}")

    async def _drain(self, job: str) -> None:
        try:
            delay = 0.0
            while job in self._pending:
                self._pending.discard(job)
                try:
                    await self._once(job)
                    self.on_result("ok")
                    delay = 0.0
                except Conflict:
                    self.on_result("error")
                    self._pending.add(job)  # a stale read; just go again
                    continue
                except KubeError as exc:
                    self.on_result("error")
                    log.warning("job %s: reconcile failed: %s", job, exc.message)
                    delay = min(max(delay * 2, 0.5), 30.0)
                    self._pending.add(job)
                    await self.sleep(delay)
        finally:
            self._running.pop(job, None)

    def deployment_changed(
        self,
        job: str,
        name: str,
        generation: int,
        deleted: bool,
        changed_by: str | None = None,
        written_through: int | None = None,
    ) -> None:
        """A Deployment of `job` changed. Its status moving, or the echo of our own apply,
        keeps the generation we applied: nothing to do. The API's write-through of a count
        (`written_through`: the replicas it owns) counts as applied. Anything else (a
        hand-made scale or edit, a deletion) is drift: the next pass applies it again.
        `changed_by`: the field manager other than Caravan that owns part of its spec."""
        entry = self._applied.get(job, {}).get(name)
        if not deleted and entry is not None and entry.generation == generation:
            return
        if (
            not deleted
            and changed_by is None
            and written_through is not None
            and entry is not None
            and generation > entry.generation
        ):
            # As applied but for the replicas: the next pass applies only what still
            # differs from the Job (nothing, unless the count moved again meanwhile).
            manifest = with_replicas(entry.manifest, written_through)
            self._applied[job][name] = Applied(manifest, generation)
            self.request(job)
            return
        if deleted:
            self._drifted.setdefault(job, {})[name] = ("was deleted", generation)
        elif changed_by is not None:
            self._drifted.setdefault(job, {})[name] = (f"was changed by {changed_by}", generation)
        self._applied.get(job, {}).pop(name, None)
        self.request(job)

    def rollout_moved(self, job: str, rollout: Rollout) -> None:
        """A Deployment's rollout reached a new state: a finished or stalled one may make
        a version healthy, or revert the job (caravan.operator.rollouts)."""
        seen = self._rollout_states.setdefault(job, {})
        if seen.get(rollout.deployment) == rollout.state:
            return
        seen[rollout.deployment] = rollout.state
        if rollout.state != PROGRESSING:
            self.request(job)

    async def _once(self, job: str) -> None:
        body = self._bodies.pop(job, None)
        if body is None:
            try:
                body = await self.kube.get(JOBS.item(self.namespace, job))
            except NotFound:
                self._done.pop(job, None)
                self._applied.pop(job, None)
                if self.revisions is not None:
                    self.revisions.forget(job)
                self._drifted.pop(job, None)
                self._stop_awaiting(job)
                return  # deleted meanwhile
        if self.revisions is not None:
            version = await self.revisions.record(body)
            if version is not None:
                body.setdefault("status", {})["version"] = version
        if self._left_to_write_through(job, body):
            return
        refusal = await reconcile_job(
            self.kube,
            self.namespace,
            body,
            self.pods(job),
            self.deployments(job),
            self.decorators,
            applied=self._applied.setdefault(job, {}),
            policy=self.policy,
            dependencies=None if self.dependencies is None else self.dependencies(),
            recorder=self.recorder,
            failures=self.failures(job),
        )
        if self.rollout_keeper is not None and refusal is None:
            applied = {name: a.generation for name, a in self._applied.get(job, {}).items()}
            await self.rollout_keeper.check(body, list(self.rollouts(job)), applied)
        self._done[job] = _applied_key(body)
        self._report_repairs(job, body)
        told = (str(body["metadata"].get("uid", "")), _generation(body))
        if refusal is None:
            self._told.pop(job, None)
        elif self.recorder is not None and self._told.get(job) != told:
            self._told[job] = told
            log.warning("job %s: refused by the pod policy: %s", job, refusal)
            await self.recorder.post(
                _regarding(body),
                "Warning",
                "Refused",
                "Reconcile",
                f"no Deployment is made: {refusal}",
            )

    def _left_to_write_through(self, job: str, body: JSON) -> bool:
        """Whether this pass waits for the API's write-through: its only work would be
        replicas of counts the API set, and the grace since it first waited is not over.
        Then a pass comes at the end of the grace, unless the write's echo came first."""
        wait = self._write_through_wait(job, body)
        if wait is None:
            self._stop_awaiting(job)
            return False
        self._awaited[job] = _awaited_key(body)
        if job not in self._wakes:
            loop = asyncio.get_running_loop()
            self._wakes[job] = loop.call_later(wait, self._wake, job)
        return True

    def _stop_awaiting(self, job: str) -> None:
        self._awaiting.pop(job, None)
        self._awaited.pop(job, None)
        wake = self._wakes.pop(job, None)
        if wake is not None:
            wake.cancel()

    def _wake(self, job: str) -> None:
        self._wakes.pop(job, None)
        self.request(job)

    def _write_through_wait(self, job: str, body: JSON) -> float | None:
        """Seconds left to wait for the write-through, or None: pass now."""
        done = self._done.get(job)
        if done is not None and done[0] == _generation(body):
            return None  # no new spec: a pass for pods or status
        groups = counts_written_through(body)
        if not groups or (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if self.policy is not None and violations(body, self.policy):
            return None
        spec = read_job(body)
        applied = self._applied.get(job, {})
        waiting = False
        for group in spec.task_groups:
            manifest = desired_deployment(body, spec, group, self.decorators)
            entry = applied.get(manifest["metadata"]["name"])
            if entry is None:
                return None  # not applied yet (or drifted): the pass applies it
            if entry.manifest == manifest:
                continue
            if group.name not in groups or not only_replicas_differ(entry.manifest, manifest):
                return None
            waiting = True
        if not waiting:
            return None
        now = self.clock()
        until = self._awaiting.setdefault(job, now + GRACE_SECONDS)
        return until - now if until > now else None

    def _report_repairs(self, job: str, body: JSON) -> None:
        """Drift that this pass repaired: the Deployment applied again after the change
        (a new generation, or made again after a deletion)."""
        drifted = self._drifted.get(job)
        if not drifted:
            return
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            self._drifted.pop(job, None)  # the job is going: its Deployments with it
            return
        spec = read_job(body)
        wanted = {deployment_name(spec.name, g.name) for g in spec.task_groups}
        applied = self._applied.get(job, {})
        for name, (how, generation) in list(drifted.items()):
            entry = applied.get(name)
            if name in wanted and entry is None:
                continue  # its apply failed: the next pass tries again
            if name in wanted and (
                how == "was deleted" or (entry is not None and entry.generation > generation)
            ):
                self.on_drift(body, name, how)
            del drifted[name]
        if not drifted:
            self._drifted.pop(job, None)

    async def close(self) -> None:
        self.closed = True
        for wake in self._wakes.values():
            wake.cancel()
        self._wakes.clear()
        await cancel_and_wait(list(self._running.values()))


def _applied_key(body: Mapping[str, Any]) -> tuple[int, str]:
    """What a pass applies of a Job: its spec (generation) and its restart annotation,
    which changes the pod templates without changing the spec."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return _generation(body), str(annotations.get(labels.RESTARTED_AT_ANNOTATION, ""))


def _awaited_key(body: Mapping[str, Any]) -> tuple[str, int, str]:
    return (str((body.get("metadata") or {}).get("uid") or ""), *_applied_key(body))


def _generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 0)
