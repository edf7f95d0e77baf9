"""A stopping replica: long polls answer, streams end cleanly, clients are sent elsewhere;
and the ready file an exec probe reads.

The ASGI messages are driven by hand: the app is the real Starlette machinery (a
StreamingResponse, a WebSocket route), the server side is a pair of queues.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from caravan.api.draining import Draining
from caravan.api.readiness import keep_ready_file
from caravan.api.state import AppState
from caravan.store.waiters import VersionWaiters

ended: list[str] = []


async def stream(_: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first\n"
            await asyncio.Event().wait()  # nothing more, ever
            yield b"never\n"
        finally:
            ended.append("stream")

    return StreamingResponse(chunks(), media_type="text/event-stream")


async def plain(_: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
    ended.append("websocket")
    await websocket.close(code=1001)


APP = Starlette(
    routes=[Route("/stream", stream), Route("/plain", plain), WebSocketRoute("/ws", socket)]
)


class Peer:
    """The server's end of one connection: what the client sent, what the app sent."""

    def __init__(self, first: dict[str, Any]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.incoming.put_nowait(first)
        self.sent: list[dict[str, Any]] = []
        self.got = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))
        self.got.set()

    async def wait_for(self, kind: str) -> dict[str, Any]:
        while not any(m["type"] == kind for m in self.sent):
            self.got.clear()
            await self.got.wait()
        return next(m for m in self.sent if m["type"] == kind)


def http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
    }


async def test_a_stream_ends_with_its_last_chunk_when_the_replica_stops() -> None:
    ended.clear()
    stopping = asyncio.Event()
    peer = Peer({"type": "http.request", "body": b"", "more_body": False})
    call = asyncio.create_task(
        Draining(APP, stopping)(http_scope("/stream"), peer.receive, peer.send)
    )
    await peer.wait_for("http.response.body")
    assert peer.sent[1] == {"type": "http.response.body", "body": b"first\n", "more_body": True}

    stopping.set()
    await call  # the route returned: it was told its client left
    assert ended == ["stream"]
    assert peer.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert [m for m in peer.sent if m.get("body") == b"never\n"] == []


async def test_a_client_that_leaves_still_ends_the_stream_as_before() -> None:
    ended.clear()
    peer = Peer({"type": "http.request", "body": b"", "more_body": False})
    call = asyncio.create_task(
        Draining(APP, asyncio.Event())(http_scope("/stream"), peer.receive, peer.send)
    )
    await peer.wait_for("http.response.body")
    peer.incoming.put_nowait({"type": "http.disconnect"})
    await call
    assert ended == ["stream"]
    # The client is gone: nothing more is written to it.
    assert peer.sent[-1]["more_body"] is True


async def test_answers_ask_clients_to_reconnect_once_stopping() -> None:
    stopping = asyncio.Event()
    for expected in (False, True):
        peer = Peer({"type": "http.request", "body": b"", "more_body": False})
        await Draining(APP, stopping)(http_scope("/plain"), peer.receive, peer.send)
        start = peer.sent[0]
        assert start["status"] == 200
        assert ((b"connection", b"close") in start["headers"]) is expected
        stopping.set()


async def test_a_websocket_is_closed_going_away_when_the_replica_stops() -> None:
    ended.clear()
    stopping = asyncio.Event()
    peer = Peer({"type": "websocket.connect"})
    scope = {**http_scope("/ws"), "type": "websocket", "scheme": "ws", "subprotocols": []}
    call = asyncio.create_task(Draining(APP, stopping)(scope, peer.receive, peer.send))
    await peer.wait_for("websocket.send")
    stopping.set()
    await call
    assert ended == ["websocket"]
    assert peer.sent[-1] == {"type": "websocket.close", "code": 1001, "reason": ""}


async def test_closed_waiters_answer_every_long_poll_at_once_with_the_current_index() -> None:
    waiters = VersionWaiters()
    waiters.bump()
    waiting = asyncio.create_task(waiters.wait_beyond(waiters.index, timeout=600))
    await asyncio.sleep(0)
    assert waiters.waiting == 1
    waiters.close()
    assert await waiting == 2
    # A poll that comes later is not held either.
    assert await waiters.wait_beyond(2, timeout=600) == 2
    assert waiters.waiting == 0


async def until(condition: Callable[[], bool]) -> None:
    """Polls a file the keeper writes on its own clock (no event to wait on)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_the_ready_file_follows_readiness_and_goes_first_thing_at_stop(
    tmp_path: pathlib.Path,
) -> None:
    informer = SimpleNamespace(kind="job", synced=asyncio.Event(), last_error=None)
    state = SimpleNamespace(stopping=asyncio.Event(), informers=[informer])
    path = tmp_path / "ready"
    keeper = asyncio.create_task(keep_ready_file(cast(AppState, state), path, every=0.005))
    await asyncio.sleep(0.05)
    assert not path.exists()  # not synced yet
    informer.synced.set()
    await until(path.exists)
    informer.last_error = "watch failed"
    await until(lambda: not path.exists())
    informer.last_error = None
    await until(path.exists)
    state.stopping.set()
    await keeper  # ends with the stop, the file gone
    assert not path.exists()
