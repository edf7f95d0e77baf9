"""Open streams (SSE, WebSocket, log follow) held to the same access as a single call.

A stream outlives the moment its caller was authorized: a token that expires, a
RoleBinding deleted. Each stream therefore re-checks its caller's access every
`stream_recheck_seconds` (30 s by default) and ends when it is withdrawn. And one caller
holds at most `max_streams_per_caller` streams at once (429 beyond): streams are the one
thing a caller can keep open without limit otherwise.

Routes use `stream(request, source, verb, resource, ...)` for SSE and log follow (the
iterator a StreamingResponse sends), and `websocket_access(...)` for WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar, cast

from fastapi import FastAPI, Request, WebSocket

from caravan.api.auth import check_access
from caravan.api.errors import ApiError
from caravan.config import ServerLimits

T = TypeVar("T")
StillAllowed = Callable[[], Awaitable[bool]]


class Streams:
    """Streams open per caller, on this replica."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.open: dict[str, int] = {}

    def check(self, key: str) -> None:
        """429 when `key` holds its maximum of streams already."""
        if self.open.get(key, 0) >= self.limits.max_streams_per_caller:
            raise ApiError(
                429,
                f"too many open streams: at most {self.limits.max_streams_per_caller}"
                " per caller; close one first",
            )

    @contextlib.contextmanager
    def held(self, key: str) -> Iterator[None]:
        self.open[key] = self.open.get(key, 0) + 1
        try:
            yield
        finally:
            self.open[key] -= 1
            if not self.open[key]:
                del self.open[key]

    async def follow(
        self, key: str, source: AsyncIterator[T], still_allowed: StillAllowed
    ) -> AsyncGenerator[T, None]:
        """`source`'s items while its caller keeps access; counted while it runs (so a
        stream whose response never started holds no slot)."""
        with self.held(key):
            async for item in until_denied(
                source, still_allowed, self.limits.stream_recheck_seconds
            ):
                yield item


def install(app: FastAPI, limits: ServerLimits) -> None:
    app.state.streams = Streams(limits)


def streams_of(app: object) -> Streams:
    return cast(Streams, app.state.streams)  # type: ignore[attr-defined]


def caller_key(request: Request | WebSocket) -> str:
    """Who holds the stream: the authenticated user, else the client's address."""
    who = getattr(request.state, "caller", None)
    if who is not None and getattr(who, "username", "") not in ("", "caravan:local"):
        return f"user:{who.username}"
    return f"addr:{request.client.host if request.client else ''}"


def access_check(
    request: Request | WebSocket,
    verb: str,
    resource: str,
    *,
    group: str = "",
    subresource: str = "",
    name: str = "",
) -> StillAllowed:
    """Whether the caller may still do what opened the stream. Only a refusal (401, 403)
    ends it: a cluster briefly away (503) does not."""

    async def still_allowed() -> bool:
        try:
            await check_access(
                cast(Request, request),
                verb,
                resource,
                group=group,
                subresource=subresource,
                name=name,
            )
        except ApiError as exc:
            return exc.status not in (401, 403)
        return True

    return still_allowed


def stream(
    request: Request,
    source: AsyncIterator[T],
    verb: str,
    resource: str,
    *,
    group: str = "",
    subresource: str = "",
    name: str = "",
) -> AsyncIterator[T]:
    """The body iterator of a streamed answer: 429 now when the caller holds too many,
    then `source` until the caller's access to (`verb`, `resource`) is withdrawn."""
    streams = streams_of(request.app)
    key = caller_key(request)
    streams.check(key)
    check = access_check(request, verb, resource, group=group, subresource=subresource, name=name)
    return streams.follow(key, source, check)


async def until_denied(
    source: AsyncIterator[T], still_allowed: StillAllowed, every: float
) -> AsyncGenerator[T, None]:
    """`source`'s items; every `every` seconds (also while it is silent) `still_allowed`
    is asked, and a False ends the iteration (and closes `source`)."""
    loop = asyncio.get_running_loop()
    iterator = aiter(source)
    deadline = loop.time() + every
    pending: asyncio.Task[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=max(0.0, deadline - loop.time()))
            if done:
                task, pending = pending, None
                try:
                    item = task.result()
                except StopAsyncIteration:
                    return
                yield item
            if loop.time() >= deadline:
                if not await still_allowed():
                    return
                deadline = loop.time() + every
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        closer = getattr(source, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


@contextlib.asynccontextmanager
async def websocket_access(
    websocket: WebSocket,
    verb: str,
    resource: str,
    *,
    group: str = "",
    subresource: str = "",
    name: str = "",
) -> AsyncIterator[None]:
    """Around a WebSocket's life once accepted: counted against its caller, and closed
    (code 1008, policy violation) when the caller's access is withdrawn."""
    streams = streams_of(websocket.app)
    key = caller_key(websocket)
    streams.check(key)
    check = access_check(websocket, verb, resource, group=group, subresource=subresource, name=name)

    async def watch() -> None:
        while True:
            await asyncio.sleep(streams.limits.stream_recheck_seconds)
            if not await check():
                with contextlib.suppress(Exception):
                    await websocket.close(code=1008, reason="access withdrawn")
                return

    with streams.held(key):
        watcher = asyncio.create_task(watch())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
