"""The write path of every service: conflict retry (caravan.kube.rmw), then read your writes.

A write answers only once this replica's store has seen what it wrote, so a GET, a long
poll or a stream that follows reflects it. The wait is bounded by
`Config.read_your_writes_seconds`; past it the write still succeeds and `on_not_visible`
is called (the HTTP layer then marks its answer, see caravan.api.writes), and
`caravan_write_visible_timeouts_total` counts it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from caravan import metrics
from caravan.kube.client import CONFIGMAPS, JSON
from caravan.kube.configmaps import write_configmap_key
from caravan.kube.rmw import (
    Decide,
    Outcome,
    delete_with_precondition,
    patch_with_precondition,
    read_modify_write,
    retry_on_conflict,
    swap_spec,
)
from caravan.services.state import ServerState
from caravan.store.store import KIND_CONFIGMAP

T = TypeVar("T")


class Writes:
    """One request's writes: each strategy of caravan.kube.rmw, followed by the wait."""

    def __init__(self, state: ServerState, on_not_visible: Callable[[], None]) -> None:
        self.state = state
        self.kube = state.kube
        self.namespace = state.config.namespace
        self.on_not_visible = on_not_visible

    # Strategies ----------------------------------------------------------------------

    async def put(
        self,
        kind: str,
        path: str,
        decide: Decide[T],
        *,
        create: Callable[[], JSON] | None = None,
        collection_path: str | None = None,
        cached: JSON | None = None,
    ) -> Outcome[T]:
        """GET, decide, PUT (an object that is ours to send back whole)."""
        outcome = await read_modify_write(
            self.kube, path, decide, create=create, collection_path=collection_path, cached=cached
        )
        await self.visible(kind, outcome.stored)
        return outcome

    async def spec(
        self,
        kind: str,
        path: str,
        decide: Decide[T],
        *,
        cached: JSON | None = None,
        alongside: Callable[[Outcome[T]], Awaitable[None]] | None = None,
        field_manager: str | None = None,
    ) -> Outcome[T]:
        """GET, decide the spec, compare-and-swap it (others keep writing the status).
        ``alongside``, given the outcome, runs first, at once, while the store catches up
        (the wait after it is then mostly over); it must not raise. ``field_manager``
        names the writer in the object's managedFields."""
        outcome = await swap_spec(
            self.kube, path, decide, cached=cached, field_manager=field_manager
        )
        if alongside is not None:
            await alongside(outcome)
        await self.visible(kind, outcome.stored)
        return outcome

    async def patch(self, kind: str, path: str, patch_for: Callable[[JSON], JSON | None]) -> JSON:
        """A merge patch with the resourceVersion read as precondition."""
        stored = await patch_with_precondition(self.kube, path, patch_for)
        await self.visible(kind, stored)
        return stored

    async def delete(
        self, kind: str, path: str, check: Callable[[JSON], None] = lambda current: None
    ) -> JSON:
        """DELETE of exactly the object read and checked."""
        answer = await delete_with_precondition(self.kube, path, check)
        await self.deleted(kind, path.rsplit("/", 1)[-1], answer)
        return answer

    async def attempt(self, kind: str, path: str, attempt: Callable[[], Awaitable[JSON]]) -> JSON:
        """A route's own attempt (read, decide, write; a Conflict means: again)."""
        stored = await retry_on_conflict(path, attempt)
        await self.visible(kind, stored)
        return stored

    async def configmap_key(
        self, name: str, key: str, text: str | Callable[[str | None], str]
    ) -> JSON:
        """One data key of a ConfigMap (created when missing); other keys are kept."""
        stored = await write_configmap_key(self.kube, self.namespace, name, key, text)
        await self.visible(KIND_CONFIGMAP, stored)
        return stored

    def configmap_path(self, name: str) -> str:
        return CONFIGMAPS.item(self.namespace, name)

    # Read your writes ------------------------------------------------------------------

    async def visible(self, kind: str, stored: JSON) -> None:
        """Waits until the store holds `stored`'s resourceVersion (or a later one)."""
        metadata = stored.get("metadata") or {}
        version = metadata.get("resourceVersion")
        if not version:
            return
        name = str(metadata.get("name", ""))
        store = self.state.store
        await self._wait(kind, lambda t: store.wait_version(kind, name, str(version), t))

    async def deleted(self, kind: str, name: str, answer: JSON) -> None:
        """After a DELETE: the object gone from the store, or, while finalizers hold it,
        its deletion (the version DELETE answered) seen there."""
        metadata = answer.get("metadata") or {}
        if answer.get("kind") != "Status" and metadata.get("finalizers"):
            await self.visible(kind, answer)
            return
        store = self.state.store
        await self._wait(kind, lambda t: store.wait_gone(kind, name, t))

    async def _wait(self, kind: str, wait: Callable[[float], Awaitable[bool]]) -> None:
        timeout = self.state.config.read_your_writes_seconds
        started = time.perf_counter()
        seen = await wait(timeout)
        metrics.WRITE_VISIBLE_SECONDS.labels(kind).observe(time.perf_counter() - started)
        if not seen:
            metrics.WRITE_VISIBLE_TIMEOUTS.labels(kind).inc()
            self.on_not_visible()
