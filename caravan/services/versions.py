"""The versions service: a job's versions (ControllerRevisions the operator keeps) and
revert.

Versions are read from the apiserver, not the store (which does not watch them): they
change only when a definition does. A revert writes the chosen version's definition as
the job's definition, as a definition write does (caravan.services.jobsdefs): a running
job's counts are kept, clamped to its countMax; the operator then records it as a new
version, and the revert answers once it has (bounded by `RECORD_TIMEOUT`), so the next
read of the versions shows it.
"""

from __future__ import annotations

import logging

from caravan import labels
from caravan.errors import NotFoundError, no_such, quote
from caravan.jobs.versions import Version, history
from caravan.kube.client import CONTROLLER_REVISIONS, JOBS, JSON
from caravan.kube.errors import NotFound
from caravan.retry import Backoff, retrying
from caravan.services.jobsdefs import JobDefinitions
from caravan.services.state import ServerState
from caravan.services.writes import Writes

log = logging.getLogger(__name__)

# How long a revert waits for the operator to record its version. Without an operator
# (an API-only replica whose operator is down) the revert still answers, after this.
RECORD_TIMEOUT = 10.0


class _NotRecordedYet(Exception):
    pass


class JobVersions:
    def __init__(self, state: ServerState, definitions: JobDefinitions) -> None:
        self.state = state
        self.definitions = definitions

    async def _versions(self, job: str) -> list[Version]:
        """The versions of the Job named `job` now (of its uid: not a predecessor's)."""
        kube, namespace = self.state.kube, self.state.namespace
        try:
            body = await kube.get(JOBS.item(namespace, job))
        except NotFound:
            raise no_such("job", job) from None
        listed = await kube.list_items(
            CONTROLLER_REVISIONS.collection(namespace),
            labelSelector=f"{labels.JOB_LABEL}={job}",
        )
        uid = str((body.get("metadata") or {}).get("uid") or "")
        return history(listed.get("items") or [], uid)

    async def listing(self, job: str) -> list[JSON]:
        """The job's versions, newest first: `{"version", "time", "change"}`."""
        return [v.summary() for v in await self._versions(job)]

    async def one(self, job: str, number: int) -> JSON:
        """`{"version", "time", "definition"}`."""
        return _numbered(await self._versions(job), job, number).detail()

    async def revert(self, writes: Writes, job: str, number: int) -> None:
        """Version `number`'s definition becomes current (a new version)."""
        versions = await self._versions(job)
        version = _numbered(versions, job, number)
        await self.definitions.replace(writes, job, version.definition)
        await self._recorded(job, version, newest=max(v.number for v in versions))

    async def _recorded(self, job: str, target: Version, newest: int) -> None:
        """Waits until the operator recorded the revert: a version newer than `newest`,
        or none needed (the current version already had `target`'s definition)."""

        async def check() -> None:
            now = await self._versions(job)
            if now and (now[0].number > newest or now[0].definition == target.definition):
                return
            raise _NotRecordedYet(f"job {quote(job)}: the reverted version is not recorded")

        attempts = 1 + int(RECORD_TIMEOUT / 0.5)  # backoff 0.05 s doubling to 0.5 s
        try:
            await retrying(
                check,
                (_NotRecordedYet,),
                Backoff(0.05, 0.5),
                what="waiting for the revert's version",
                log=log,
                level=logging.DEBUG,
                attempts=attempts,
            )
        except _NotRecordedYet:
            log.warning("job %s: the operator did not record the revert in time", job)


def _numbered(versions: list[Version], job: str, number: int) -> Version:
    found = next((v for v in versions if v.number == number), None)
    if found is None:
        raise NotFoundError(f"job {quote(job)} has no version {number}")
    return found
