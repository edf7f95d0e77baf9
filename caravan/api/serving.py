"""The HTTP server's own bounds, below the app: request heads and idle connections.

uvicorn's httptools protocol puts no bound on a request's head: an 8 MiB header or
100,000 headers are parsed and kept, and a client trickling its head holds the connection
for as long as it likes. `GuardedHttpTools` counts the head as it is parsed (431 past the
limits, before the rest is read) and gives each request head a deadline (408, then the
connection is closed). Keep-alive idleness and concurrency are uvicorn's own settings.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from caravan.config import ServerLimits


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing at once."""


class GuardedHttpTools(HttpToolsProtocol):
    limits = ServerLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_count = 0
        self._head_too_large = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # the first request's head is due from the connection on

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_seconds, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(408, "Request Timeout", "the request head came too slowly")

    def _refuse(self, status: int, phrase: str, message: str) -> None:
        body = ('{"error": "' + message + '", "details": []}').encode()
        self.transport.write(
            f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if (
            self._head_bytes > self.limits.max_header_bytes
            or self._head_count > self.limits.max_header_count
        ):
            self._head_too_large = True
            raise _HeadTooLarge

    # Parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._head_count = 0
        self._arm_head_timer()  # a keep-alive connection's next request

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, but a head refused by the callbacks above gets 431, not 400.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._head_too_large:
                self._refuse(
                    431,
                    "Request Header Fields Too Large",
                    f"request headers too large: at most {self.limits.max_header_count}"
                    f" headers and {self.limits.max_header_bytes} bytes",
                )
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)


def uvicorn_limits(limits: ServerLimits) -> dict[str, Any]:
    """The keyword arguments of uvicorn.Config that bound connections."""
    protocol = type("GuardedHttpTools", (GuardedHttpTools,), {"limits": limits})
    return {
        "http": protocol,
        "limit_concurrency": limits.max_concurrency,
        "timeout_keep_alive": max(1, round(limits.keep_alive_seconds)),
        # Used only if the server runs uvicorn's h11 protocol instead.
        "h11_max_incomplete_event_size": limits.max_header_bytes,
    }
