"""The API's side of a replica stopping: streams end cleanly, clients move elsewhere.

An ASGI wrapper around the whole app. Once `stopping` is set (at SIGTERM, before the
server stops listening):
- a request that is only waiting for its client to leave (a stream: server-sent events,
  a log follow, a WebSocket reading frames) is told the client left, so the route ends its
  stream the way it does on a real disconnect; an HTTP stream is then finished with its
  last, empty chunk (a clean end for the client, which reconnects), a WebSocket is closed
  by its route (1001, going away);
- every HTTP response carries `Connection: close`, so a client with a kept-alive
  connection opens its next one through the Service, to another replica.

Long polls are woken by the store (VersionWaiters.close), not here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LEFT: dict[str, dict[str, Any]] = {
    "http": {"type": "http.disconnect"},
    "websocket": {"type": "websocket.disconnect", "code": 1001},
}


class Draining:
    def __init__(self, app: ASGIApp, stopping: asyncio.Event) -> None:
        self.app = app
        self.stopping = stopping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in _LEFT:
            await self.app(scope, receive, send)  # lifespan
            return
        request = _Request(kind, self.stopping, receive, send)
        await self.app(scope, request.receive, request.send)
        await request.finish()


class _Request:
    """One request's messages, watched for the point where only a disconnect can come."""

    def __init__(self, kind: str, stopping: asyncio.Event, receive: Receive, send: Send) -> None:
        self.kind = kind
        self.stopping = stopping
        self._receive = receive
        self._send = send
        # HTTP: the whole body was received; WebSocket: the connection was accepted.
        self.only_disconnect_left = False
        self.body_open = False  # an HTTP response started and not finished
        self.told_left = False

    async def receive(self) -> Message:
        if not self.only_disconnect_left:
            message = await self._receive()
            if self.kind == "http":
                self.only_disconnect_left = not message.get("more_body", False)
            return message
        if self.stopping.is_set():
            return self._left()
        # A stream waits here for its client to go: it goes now, or when the replica stops.
        incoming = asyncio.ensure_future(self._receive())
        stopped = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({incoming, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if incoming.done():
            return incoming.result()
        incoming.cancel()
        return self._left()

    def _left(self) -> Message:
        self.told_left = True
        return dict(_LEFT[self.kind])

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.body_open = True
            if self.stopping.is_set():
                headers: list[Any] = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.body_open = False
        elif kind == "websocket.accept":
            self.only_disconnect_left = True
        await self._send(message)

    async def finish(self) -> None:
        """An HTTP stream the route left open because it was told its client left."""
        if self.body_open and self.told_left:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
