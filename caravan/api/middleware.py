"""ASGI middleware shared by every route."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_FORM = b"application/x-www-form-urlencoded"


class JsonBodyByDefault:
    """Reads request bodies as JSON when the client did not say, or said form data.

    Every body of the API is JSON, and the tools written for the original Cluster API
    (and `curl -d`) often send no content type or curl's form default.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            declared = dict(scope["headers"]).get(b"content-type", b"")
            if not declared or declared.split(b";")[0].strip() == _FORM:
                scope = dict(scope, headers=[*headers, (b"content-type", b"application/json")])
        await self.app(scope, receive, send)
