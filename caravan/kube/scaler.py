"""Deployment replicas written beside a Job's count change (the jobs routes' write-through).

The operator makes every Deployment follow its Job; this only saves the wait for its
watch and pass. Patches of one Deployment go one at a time, in the order of the Jobs'
generations, so concurrent count changes on this replica never leave an older count
after a newer one. What fails here is left to the operator, which converges anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from caravan.kube.client import DEPLOYMENTS, KubeClient
from caravan.kube.errors import KubeError, NotFound

log = logging.getLogger(__name__)

# Who set a Deployment's replicas from a count change (its managedFields say so); the
# operator's next apply, with force, owns the field again.
FIELD_MANAGER = "caravan-api"


class DeploymentScaler:
    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self._locks: dict[str, asyncio.Lock] = {}
        # The newest generation written, per Deployment and Job uid (a Job made again
        # under the same name counts its generations from 1 again).
        self._generations: dict[tuple[str, str], int] = {}

    async def scale(self, replicas: Mapping[str, int], job_uid: str, generation: int) -> None:
        """Sets each Deployment's replicas, as of the Job's ``generation``; never raises."""
        writes = [
            self._one(name, count, (name, job_uid), generation) for name, count in replicas.items()
        ]
        if len(writes) == 1:
            # One group (a count change): sent from this very task, not from a new one that
            # would start only after whatever else the loop has ready (the watch event of
            # the Job just written, in the store and in the operator).
            await writes[0]
        else:
            await asyncio.gather(*writes)

    async def _one(self, name: str, replicas: int, key: tuple[str, str], generation: int) -> None:
        async with self._locks.setdefault(name, asyncio.Lock()):
            if self._generations.get(key, -1) >= generation:
                return  # a newer count change was already written
            self._generations[key] = generation
            try:
                # The scale subresource: the apiserver validates a Scale, not the whole
                # Deployment (what `kubectl scale` does, a few ms less than a patch).
                await self.kube.merge_patch(
                    DEPLOYMENTS.item(self.namespace, name, "scale"),
                    {"spec": {"replicas": replicas}},
                    field_manager=FIELD_MANAGER,
                )
            except NotFound:
                pass  # not made yet: the operator creates it with the count
            except KubeError as exc:
                log.info("write-through of %s replicas=%d: %s", name, replicas, exc.message)
