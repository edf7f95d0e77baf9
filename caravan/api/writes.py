"""The write path of every route: conflict retry (caravan.kube.rmw), then read your writes.

A write answers only once this replica's store has seen what it wrote (API.md), so a
GET, a long poll or a stream that follows reflects it. The wait is bounded by
`Config.read_your_writes_seconds`; past it the write still answers 2xx, with header
`X-Caravan-Read-Your-Writes: timeout`, and `caravan_write_visible_timeouts_total` counts it.

Routes get a `Writes` through the `WritesDep` dependency (caravan.api.deps).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caravan import metrics
from caravan.api.state import AppState
from caravan.kube.client import CONFIGMAPS, JSON
from caravan.kube.configmaps import write_configmap_key
from caravan.kube.rmw import (
    Mutation,
    delete_with_precondition,
    patch_with_precondition,
    read_modify_write,
    retry_on_conflict,
    swap_spec,
)
from caravan.store.store import KIND_CONFIGMAP

VISIBILITY_HEADER = "X-Caravan-Read-Your-Writes"
_NOT_VISIBLE = "caravan_write_not_visible"  # request.state flag, read by the middleware


class Writes:
    """One request's writes: each strategy of caravan.kube.rmw, followed by the wait."""

    def __init__(self, state: AppState, request: Request) -> None:
        self.state = state
        self.kube = state.kube
        self.namespace = state.config.namespace
        self.request = request

    # Strategies ----------------------------------------------------------------------

    async def put(
        self,
        kind: str,
        path: str,
        mutate: Mutation,
        *,
        create: Callable[[], JSON] | None = None,
        collection_path: str | None = None,
        cached: JSON | None = None,
    ) -> JSON:
        """GET, mutate, PUT (an object that is ours to send back whole)."""
        stored = await read_modify_write(
            self.kube, path, mutate, create=create, collection_path=collection_path, cached=cached
        )
        await self.visible(kind, stored)
        return stored

    async def spec(
        self,
        kind: str,
        path: str,
        mutate: Mutation,
        *,
        cached: JSON | None = None,
        alongside: Callable[[JSON], Awaitable[None]] | None = None,
    ) -> JSON:
        """GET, mutate the spec, compare-and-swap it (others keep writing the status).
        ``alongside``, given what was stored, runs while the store catches up; it must
        not raise."""
        stored = await swap_spec(self.kube, path, mutate, cached=cached)
        extra = [] if alongside is None else [alongside(stored)]
        await asyncio.gather(self.visible(kind, stored), *extra)
        return stored

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
            setattr(self.request.state, _NOT_VISIBLE, True)


class ReadYourWritesHeader:
    """Adds `X-Caravan-Read-Your-Writes: timeout` to answers whose write the store had not
    shown yet when the wait ended, whatever response class the route returned."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return

        # Shared with whatever copies of the scope inner layers make: request.state is it.
        state = scope.setdefault("state", {})

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start" and state.get(_NOT_VISIBLE):
                headers = list(message.get("headers", []))
                headers.append((VISIBILITY_HEADER.lower().encode(), b"timeout"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_marked)
