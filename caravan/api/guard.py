"""What every request meets before any route: plain ASGI middleware, outermost first.

- `SecurityHeaders`: `X-Content-Type-Options: nosniff` on every answer, and
  `Cache-Control: no-store` on the secrets routes' answers.
- `LoopbackGuard` (`--auth-mode none` only): Caravan then acts with its own credentials
  for anyone who reaches it, so only this machine's own programs may: a Host that is not
  a loopback name (DNS rebinding), a cross-site browser request (`Origin` other than the
  server's own, `Sec-Fetch-Site: cross-site`) and a WebSocket from another origin get 403.
- `BodyGuard`: a request is bounded before anything of it is read. Too many or too large
  headers: 431. A declared body over the limit: 413. Then (kubernetes mode) the caller is
  authenticated, from headers alone: 401 before a byte of the body is read. A body that
  is not JSON: 415 (every body of the API is JSON; requiring its type also makes every
  browser write a non-simple request, which a cross-site page cannot send unasked). The
  body is then read under the limit (413 as soon as it is crossed) and a deadline (408),
  and handed to the route whole.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caravan.api import streams
from caravan.api.auth import authenticate
from caravan.api.errors import ApiError, retry_after
from caravan.config import Config, ServerLimits

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def refuse(
    scope: Scope,
    send: Send,
    status: int,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """The API's error body, or a WebSocket handshake refused (uvicorn answers 403)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = json.dumps({"error": message, "details": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# Refusing a request whose body is left unread: the connection cannot be reused.
_CLOSE = [(b"connection", b"close")]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secrets = "/secrets/" in scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                if not any(k.lower() == b"x-content-type-options" for k, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                if secrets:
                    # Secret values must not stay in any cache, the browser's included.
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def is_loopback_host(host: str) -> bool:
    """`localhost`, `127.x.y.z` or `[::1]`, with or without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return False
    else:
        name, _, port = host.partition(":")
        if port and not port.isdigit():
            return False
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class LoopbackGuard:
    """Only this machine's own programs drive an unauthenticated Caravan (`none` mode)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            why = self.refusal(scope)
            if why is not None:
                await refuse(scope, send, 403, why)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def refusal(scope: Scope) -> str | None:
        host = _header(scope, b"host")
        if host is None or not is_loopback_host(host):
            return (
                f"Host {host!r} is not a loopback name: without authentication Caravan answers"
                " only localhost, 127.0.0.1 or [::1]"
            )
        origin = _header(scope, b"origin")
        if origin is not None and origin.lower().rstrip("/") != f"http://{host.lower()}":
            return (
                f"a request from {origin!r} is cross-origin: without authentication Caravan"
                " answers only its own pages and local programs"
            )
        if (_header(scope, b"sec-fetch-site") or "").lower() == "cross-site":
            return "a cross-site browser request: without authentication Caravan refuses it"
        return None


def _is_json(content_type: str | None) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return _header(scope, b"transfer-encoding") is not None


class BodyGuard:
    """Bounds, authenticates, then reads: see the module's docstring."""

    def __init__(self, app: ASGIApp, limits: ServerLimits, authenticate: bool) -> None:
        self.app = app
        self.limits = limits
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        limits = self.limits
        headers = scope.get("headers") or ()
        size = sum(len(k) + len(v) + 4 for k, v in headers)
        if len(headers) > limits.max_header_count or size > limits.max_header_bytes:
            await refuse(
                scope,
                send,
                431,
                f"request headers too large: at most {limits.max_header_count} headers"
                f" and {limits.max_header_bytes} bytes",
                _CLOSE,
            )
            return
        if scope["type"] == "websocket" or not (
            _has_body(scope) or scope["method"] not in _SAFE_METHODS
        ):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (
            not declared.strip().isdigit() or int(declared) > limits.max_body_bytes
        ):
            await refuse(scope, send, 413, self._too_large(), _CLOSE)
            return
        if self.authenticate:
            # Only headers are read here; the body waits until the caller is known.
            try:
                await authenticate(Request(scope))
            except ApiError as exc:
                extra = list(retry_after().items()) if exc.status == 503 else []
                await refuse(
                    scope,
                    send,
                    exc.status,
                    exc.message,
                    [*_CLOSE, *((k.lower().encode(), v.encode()) for k, v in extra)],
                )
                return
        if not _has_body(scope):
            await self.app(scope, receive, send)
            return
        if not _is_json(_header(scope, b"content-type")):
            await refuse(
                scope,
                send,
                415,
                "the request body must be JSON, sent with Content-Type: application/json",
                _CLOSE,
            )
            return
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(limits.body_seconds):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away
                    chunk = message.get("body", b"")
                    total += len(chunk)
                    if total > limits.max_body_bytes:
                        await refuse(scope, send, 413, self._too_large(), _CLOSE)
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await refuse(scope, send, 408, "the request body came too slowly", _CLOSE)
            return
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _too_large(self) -> str:
        return f"request body too large: at most {self.limits.max_body_bytes} bytes"


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then the connection's own messages (a disconnect)."""
    pending: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


def install(app: FastAPI, config: Config) -> None:
    """The guards, outermost last (Starlette wraps each new middleware around the others)."""
    app.add_middleware(
        BodyGuard, limits=config.limits, authenticate=config.auth_mode == "kubernetes"
    )
    if config.auth_mode == "none":
        app.add_middleware(LoopbackGuard)
    app.add_middleware(SecurityHeaders)
    streams.install(app, config.limits)


def document(schema: dict[str, Any]) -> None:
    """What the guards answer, said in the OpenAPI document: every operation that takes a
    body may get 413 (too large) and 415 (not JSON) before its route runs."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                answers = operation.setdefault("responses", {})
                answers.setdefault("413", {"description": "Body too large", "content": error})
                answers.setdefault("415", {"description": "Body not JSON", "content": error})
