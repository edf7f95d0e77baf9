"""What a request meets before any route, on a real socket: uvicorn on 127.0.0.1 serving
the app as `caravan run` does (its bounds from caravan/api/serving.py), over a fake
TokenReview. Raw sockets where it matters what was read: a refusal that arrives while the
body is still unsent proves the body was not waited for."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest
import uvicorn

from caravan.api.app import create_app
from caravan.api.auth import AccessReviewer
from caravan.api.guard import LoopbackGuard, is_loopback_host
from caravan.api.serving import uvicorn_limits
from caravan.api.state import AppState
from caravan.config import Config, ServerLimits
from caravan.kube.client import JSON, KubeClient, KubeError
from caravan.store import Store

LIMITS = ServerLimits(max_body_bytes=1024 * 1024, header_seconds=1.0, body_seconds=2.0)


class Reviews:
    """TokenReview: only "good" is a token; every SubjectAccessReview allowed."""

    def __init__(self) -> None:
        self.token_reviews = 0

    async def create(self, path: str, body: JSON) -> JSON:
        if body["kind"] == "TokenReview":
            self.token_reviews += 1
            ok = body["spec"]["token"] == "good"
            return {"status": {"authenticated": ok, "user": {"username": "u"} if ok else {}}}
        return {"status": {"allowed": True}}

    async def get(self, path: str) -> JSON:
        raise KubeError(404, "NotFound")  # no job exists here


@dataclasses.dataclass
class Served:
    url: str
    port: int
    reviews: Reviews


@contextlib.asynccontextmanager
async def serve(mode: str) -> AsyncIterator[Served]:
    reviews = Reviews()
    config = Config(namespace="unit", auth_mode=mode, port=0, limits=LIMITS)  # type: ignore[arg-type]
    state = AppState(config=config, kube=cast(KubeClient, reviews), store=Store())
    if mode == "kubernetes":
        state.auth = AccessReviewer(cast(KubeClient, reviews), "unit")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(state),
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_config=None,
            access_log=False,
            **uvicorn_limits(LIMITS),
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", port, reviews)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def secured() -> AsyncIterator[Served]:
    async with serve("kubernetes") as served:
        yield served


@pytest.fixture
async def local() -> AsyncIterator[Served]:
    async with serve("none") as served:
        yield served


async def exchange(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Sends `head` (and `body`), then reads the whole answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_a_huge_declared_body_is_refused_unread_without_a_token(secured: Served) -> None:
    # 20 MiB declared, not one byte sent: the answer comes anyway, and no review was asked.
    head = (
        b"POST /v1/events/send HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 20971520\r\n\r\n"
    )
    answer = await exchange(secured.port, head)
    assert status_of(answer) == 413, answer
    assert b"connection: close" in answer.lower()
    assert secured.reviews.token_reviews == 0


async def test_no_token_is_401_before_the_body_is_read(secured: Served) -> None:
    # A small malformed body, declared but never sent: 401 (not 400 "invalid JSON").
    head = (
        b"POST /v1/events/send HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 10\r\n\r\n"
    )
    assert status_of(await exchange(secured.port, head)) == 401
    bad = head.replace(b"\r\n\r\n", b"\r\nAuthorization: Bearer forged\r\n\r\n")
    assert status_of(await exchange(secured.port, bad)) == 401


async def test_a_streamed_body_is_cut_at_the_limit(secured: Served) -> None:
    # Chunked, so no length is declared: the limit holds while the body streams in.
    head = (
        b"POST /v1/events/send HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
    answer = await exchange(secured.port, head, chunk * 17 + b"0\r\n\r\n")  # 1 MiB + 64 KiB
    assert status_of(answer) == 413, answer
    assert b"at most 1048576 bytes" in answer
    # Under the limit, the same body goes through to the route (503: no events service).
    answer = await exchange(secured.port, head, chunk * 2 + b"0\r\n\r\n")
    assert status_of(answer) not in (401, 413, 415), answer


async def test_a_body_slower_than_its_deadline_is_408(secured: Served) -> None:
    # 10 bytes of a declared 100, then nothing: cut after body_seconds, not held open.
    head = (
        b"POST /v1/events/send HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    answer = await exchange(secured.port, head, b'{"channel"')
    assert status_of(answer) == 408, answer


async def test_too_many_or_too_large_headers_are_431(secured: Served) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    answer = await exchange(secured.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")
    assert status_of(answer) == 431, answer
    big = b"X-Big: " + b"a" * (200 * 1024) + b"\r\n"
    answer = await exchange(secured.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + big + b"\r\n")
    assert status_of(answer) == 431, answer
    # Within the limits, the same server answers.
    async with httpx.AsyncClient(base_url=secured.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_a_client_trickling_its_headers_is_cut(secured: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", secured.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    cut = False
    try:
        for i in range(100):  # 20 s of trickle at most; the head is due within 1 s
            try:
                writer.write(b"X-Slow-%d: v\r\n" % i)
                await writer.drain()
                data = await asyncio.wait_for(reader.read(), 0.2)
            except TimeoutError:
                continue
            except ConnectionError:
                cut = True
                break
            cut = True
            assert data == b"" or status_of(data) == 408, data
            break
    finally:
        writer.close()
    assert cut, "the server kept a trickling client"


async def test_nosniff_everywhere_and_the_api_pages_cannot_be_framed(local: Served) -> None:
    async with httpx.AsyncClient(base_url=local.url) as client:
        for path in ("/healthz", "/v1/nothing", "/docs", "/redoc", "/ui/"):
            answer = await client.get(path)
            assert answer.headers["x-content-type-options"] == "nosniff", path
        for path in ("/docs", "/redoc", "/ui/"):
            csp = (await client.get(path)).headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp, path
        for path in ("/v1/secrets/secret/api-key", "/secrets/secret/api-key"):
            answer = await client.get(path)
            assert answer.headers["cache-control"] == "no-store", path


async def test_without_authentication_only_local_programs_get_in(local: Served) -> None:
    own = f"http://127.0.0.1:{local.port}"
    body = {"jobID": "nope", "taskGroup": "g", "count": 1}
    refused: list[tuple[dict[str, str], bytes | None, int]] = [
        ({"Host": "rebind.attacker.example"}, None, 403),
        ({"Host": f"rebind.attacker.example:{local.port}"}, None, 403),
        ({"Origin": "https://evil.example"}, b'{"jobID": "x"}', 403),
        ({"Origin": "null"}, b'{"jobID": "x"}', 403),
        ({"Origin": f"http://localhost:{local.port + 1}"}, b'{"jobID": "x"}', 403),
        ({"Sec-Fetch-Site": "cross-site"}, b'{"jobID": "x"}', 403),
        ({"Content-Type": "text/plain"}, b'{"jobID": "x"}', 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"jobID=x", 415),
        ({}, b'{"jobID": "x"}', 415),  # no type at all (a Blob body, curl -d without -H)
    ]
    async with httpx.AsyncClient(base_url=local.url) as client:
        for headers, content, status in refused:
            answer = await client.post("/v1/jobs/updatecounts", content=content, headers=headers)
            assert answer.status_code == status, (headers, answer.text)
            assert answer.json()["error"], headers
        # This server's own page, and local programs: through to the route (an unknown job).
        for headers in (
            {"Origin": own, "Sec-Fetch-Site": "same-origin"},
            {"Host": f"localhost:{local.port}"},
            {"Host": f"[::1]:{local.port}"},
            {},
        ):
            answer = await client.post("/v1/jobs/updatecounts", json=body, headers=headers)
            assert answer.status_code == 404, (headers, answer.text)


def test_a_websocket_from_another_origin_is_refused() -> None:
    # (On a socket, with a running events service: tests/cluster/test_security_http.py.)
    def scope(origin: str) -> dict[str, object]:
        headers = [(b"host", b"127.0.0.1:8080"), (b"origin", origin.encode())]
        return {"type": "websocket", "path": "/v1/events/ws", "headers": headers}

    assert LoopbackGuard.refusal(scope("https://evil.example"))
    assert LoopbackGuard.refusal(scope("http://127.0.0.1:8081"))
    assert LoopbackGuard.refusal(scope("http://127.0.0.1:8080")) is None


def test_loopback_names() -> None:
    for host in ("localhost", "localhost:8080", "127.0.0.1", "127.1.2.3:1", "[::1]", "[::1]:80"):
        assert is_loopback_host(host), host
    for host in (
        "",
        "evil.example",
        "127.0.0.1.evil.example",
        "localhost.evil",
        "[::2]:80",
        "127.0.0.1:80x",
        "10.0.0.1",
        "0.0.0.0",
    ):
        assert not is_loopback_host(host), host
