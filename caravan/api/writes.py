"""Read your writes over HTTP: a write whose store wait ended first says so in a header.

Services write through caravan.services.writes.Writes; the dependency below gives each
request one whose "not visible in time" marks the request, and the middleware adds
`X-Caravan-Read-Your-Writes: timeout` to its answer.
"""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caravan.services.state import ServerState
from caravan.services.writes import Writes

VISIBILITY_HEADER = "X-Caravan-Read-Your-Writes"
_NOT_VISIBLE = "caravan_write_not_visible"  # request.state flag, read by the middleware


def request_writes(state: ServerState, request: Request) -> Writes:
    """The writes of one request: a wait that ends first marks the request."""
    return Writes(state, lambda: setattr(request.state, _NOT_VISIBLE, True))


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
