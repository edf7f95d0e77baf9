"""Leader election on a Kubernetes Lease: every replica serves the API, one reconciles.

Kopf's peering is priority-based standby (equal priorities freeze), so Caravan runs the
usual Lease protocol itself: the holder renews the Lease every `renew_seconds`; another
replica takes over once it has seen the Lease unchanged for `lease_seconds` (measured on
its own clock, so clock skew between nodes does not matter).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from caravan.kube.client import JSON, KubeClient, ResourcePath
from caravan.kube.errors import Conflict, KubeError, NotFound

log = logging.getLogger(__name__)

LEASES = ResourcePath("coordination.k8s.io", "v1", "leases")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        identity: str,
        *,
        name: str = "caravan-operator",
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
        on_started_leading: Callable[[], None] = lambda: None,
        on_stopped_leading: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.path = LEASES.item(namespace, name)
        self.collection = LEASES.collection(namespace)
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.clock = clock
        self.leading = False
        self.resigned = False
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    async def run(self) -> None:
        try:
            while not self.resigned:
                try:
                    leading = await self.try_acquire_or_renew()
                except KubeError as exc:
                    log.warning("lease %s: %s", self.name, exc.message)
                    # Unsure whether we still hold it: stop reconciling once it may expire.
                    leading = self.leading and self.clock() - self._observed_at < self.lease_seconds
                self._set_leading(leading)
                await asyncio.sleep(self.renew_seconds if leading else self.renew_seconds / 2)
        finally:
            self._set_leading(False)

    def _set_leading(self, leading: bool) -> None:
        if leading and not self.leading:
            log.info("lease %s: %s is now the leader", self.name, self.identity)
            self.leading = True
            self.on_started_leading()
        elif not leading and self.leading:
            log.info("lease %s: %s is no longer the leader", self.name, self.identity)
            self.leading = False
            self.on_stopped_leading()

    async def try_acquire_or_renew(self) -> bool:
        now = _now()
        try:
            lease = await self.kube.get(self.path)
        except NotFound:
            spec = self._spec(now, now, transitions=0)
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name},
                "spec": spec,
            }
            try:
                await self.kube.create(self.collection, body)
            except Conflict:
                return False  # another replica created it first
            self._observe(spec)
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        expired = self.clock() - self._observed_at >= self.lease_seconds
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        acquired = spec.get("acquireTime") if holder == self.identity else now
        lease["spec"] = self._spec(acquired or now, now, transitions)
        try:
            await self.kube.replace(self.path, lease)  # carries resourceVersion: CAS
        except Conflict:
            return False  # someone else renewed or took it meanwhile
        self._observe(lease["spec"])
        return True

    async def resign(self) -> None:
        """Stops renewing, then gives the Lease up: the first step of a stop, taken while
        this replica's RBAC surely still exists (`helm uninstall` deletes the Role right
        after the Deployment, while the pod is still draining)."""
        self.resigned = True
        await self.release()

    async def release(self) -> None:
        """Gives the Lease up at shutdown so another replica takes over at once.

        Asks the Lease itself whether this replica holds it, rather than `leading`: a
        stop calls it again once run() has ended (and cleared `leading`), in case the
        resigning write lost a race with a renewal in flight."""
        try:
            lease = await self.kube.get(self.path)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["leaseDurationSeconds"] = 1
                await self.kube.replace(self.path, lease)
        except KubeError as exc:
            log.warning("lease %s: could not release: %s", self.name, exc.message)
        self._set_leading(False)

    def _spec(self, acquired: str, renewed: str, transitions: int) -> JSON:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_seconds),
            "acquireTime": acquired,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        }

    def _observe(self, spec: JSON) -> None:
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"))
        if record != self._observed:
            self._observed = record
            self._observed_at = self.clock()
