"""The revisions reconciler: every version of a job's definition kept as a ControllerRevision.

Whatever changed the Job (the API, `load`, kubectl), the operator sees the new spec and
compares its definition with the newest ControllerRevision the Job owns: if they differ,
a new one is created with the next revision number, the history is trimmed to the job's
`revisionHistoryLimit`, and the Job's `status.version` says which version is current.
Counts and `suspend` are not part of a definition, so start, stop and updatecounts make
no version.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from caravan import labels
from caravan.jobs.definitions import definition_of
from caravan.jobs.versions import Version, history, history_limit, plan_record
from caravan.kube.client import CONTROLLER_REVISIONS, JOBS, JSON, KubeClient
from caravan.kube.errors import AlreadyExists, NotFound

log = logging.getLogger(__name__)


async def list_versions(kube: KubeClient, namespace: str, job: str, uid: str) -> list[Version]:
    """The versions of the Job `job` (of that uid), newest first, read from the apiserver."""
    listed = await kube.list_items(
        CONTROLLER_REVISIONS.collection(namespace), labelSelector=f"{labels.JOB_LABEL}={job}"
    )
    return history(listed.get("items") or [], uid)


@dataclass
class RevisionKeeper:
    """Records the versions of jobs; one per operator, called once per reconcile pass."""

    kube: KubeClient
    namespace: str
    # Per job: what is already recorded (uid, definition, history limit), so that a pass
    # caused by pods moving or by a change of counts (updatecounts, start, stop: a new
    # generation, the same definition) reads nothing.
    _recorded: dict[str, tuple[str, JSON, int]] = field(default_factory=dict)

    async def record(self, body: JSON) -> int | None:
        """Makes the Job's current definition a version if it is a new one; returns the
        current version (None when nothing had to be looked at)."""
        meta = body.get("metadata") or {}
        job, uid = str(meta.get("name") or ""), str(meta.get("uid") or "")
        if not uid or meta.get("deletionTimestamp"):
            return None
        key = (uid, definition_of(body), history_limit(body))
        if self._recorded.get(job) == key:
            return None
        versions = await list_versions(self.kube, self.namespace, job, uid)
        plan = plan_record(body, versions)
        if plan.create is not None:
            with contextlib.suppress(AlreadyExists):  # recorded by an earlier attempt
                await self.kube.create(CONTROLLER_REVISIONS.collection(self.namespace), plan.create)
            log.info("job %s: version %d", job, plan.current)
        for name in plan.delete:
            with contextlib.suppress(NotFound):
                await self.kube.delete(CONTROLLER_REVISIONS.item(self.namespace, name))
        if (body.get("status") or {}).get("version") != plan.current:
            await self.kube.merge_patch(
                JOBS.item(self.namespace, job, "status"), {"status": {"version": plan.current}}
            )
        self._recorded[job] = key
        return plan.current

    def forget(self, job: str) -> None:
        self._recorded.pop(job, None)
