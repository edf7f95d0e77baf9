"""The versions service: a job's versions (ControllerRevisions the operator keeps) and
revert.

Versions are read from the apiserver, not the store (which does not watch them): they
change only when a definition does. A revert writes the chosen version's definition as
the job's definition, as a definition write does (caravan.services.jobsdefs): a running
job's counts are kept, clamped to its countMax; the operator then records it as a new
version.
"""

from __future__ import annotations

from caravan import labels
from caravan.errors import NotFoundError, no_such, quote
from caravan.jobs.versions import Version, history
from caravan.kube.client import CONTROLLER_REVISIONS, JOBS, JSON
from caravan.kube.errors import NotFound
from caravan.services.jobsdefs import JobDefinitions
from caravan.services.state import ServerState
from caravan.services.writes import Writes


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

    async def _version(self, job: str, number: int) -> Version:
        found = next((v for v in await self._versions(job) if v.number == number), None)
        if found is None:
            raise NotFoundError(f"job {quote(job)} has no version {number}")
        return found

    async def one(self, job: str, number: int) -> JSON:
        """`{"version", "time", "definition"}`."""
        return (await self._version(job, number)).detail()

    async def revert(self, writes: Writes, job: str, number: int) -> None:
        """Version `number`'s definition becomes current (a new version)."""
        version = await self._version(job, number)
        await self.definitions.replace(writes, job, version.definition)
