"""A job's activity (`GET /v1/jobs/{id}/activity`), followed with `waitIndex`.

Served from the store's bounded log of the namespace's Events (caravan.store.activity):
no request reaches the apiserver.
"""

from __future__ import annotations

import random

from caravan.errors import no_such
from caravan.jobs.shapes import Activity
from caravan.services.state import ServerState


class JobActivity:
    def __init__(self, state: ServerState) -> None:
        self.store = state.store

    async def read(self, job: str, index: int | None, timeout: float) -> tuple[Activity, int]:
        """The job's activity and its index; with `index` current, waits (at most
        `timeout` seconds) for the activity to change first."""
        if job not in self.store.jobs:
            raise no_such("job", job)
        waiters = self.store.activity_waiters(job)
        if index is not None and index == waiters.index:
            # Jitter (wait/16) spreads the wake-ups of many clients that timed out together.
            await waiters.wait_beyond(index, timeout + random.uniform(0, timeout / 16))
        activity = self.store.activity(job)
        if activity is None:
            raise no_such("job", job)  # deleted while waiting
        return activity, self.store.activity_waiters(job).index
