"""`caravan run` as users start it: one process, both halves, clean stops."""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from caravan.kube.client import JOBS, KubeClient
from caravan.kube.errors import NotFound
from caravan.operator.leader import LEASES
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import eventually, group, job_body

ROOT = pathlib.Path(__file__).resolve().parents[2]


def start_caravan_run(
    namespace: str,
    kubeconfig: str,
    *flags: str,
    stdout: int = subprocess.PIPE,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """`caravan run` on a free port, as its own process (its log on the stderr pipe)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caravan",
            "run",
            "--port",
            "0",
            "--namespace",
            namespace,
            "--kubeconfig",
            kubeconfig,
            *flags,
        ],
        stderr=subprocess.PIPE,
        stdout=stdout,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def full_collections(metrics: str) -> float:
    match = re.search(r'^caravan_gc_pauses_total\{generation="2"\} (\S+)$', metrics, re.M)
    return float(match.group(1)) if match else 0.0


async def listening_url(process: subprocess.Popen[str]) -> str:
    """The address the process says it serves on, within 60 s."""
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(process.stderr.readline)
        assert line, "caravan run exited before saying where it listens"
        match = re.search(r"serving namespace \S+ on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return match.group(1)
    raise AssertionError("caravan run never said where it listens")


async def test_caravan_run_serves_and_stops_cleanly_on_sigterm(
    kubeconfig: str, namespace: str
) -> None:
    process = start_caravan_run(namespace, kubeconfig)
    try:
        url = await listening_url(process)
        # The UI's address, printed whatever the log level.
        assert process.stdout is not None
        printed = await asyncio.to_thread(process.stdout.readline)
        assert printed == f"caravan UI: {url}/ui/  (API pages: {url}/docs)\n"
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/ui/")).headers["content-type"].startswith("text/html")
            ready = await client.get("/readyz")
            assert ready.status_code in (200, 503)
            # Every collection's pause is counted on /metrics; a full one has run by
            # then (once synced, the process collects, then freezes its heap).
            metrics = await eventually(
                lambda: client.get("/metrics"),
                lambda r: full_collections(r.text) >= 1,
                what="the full collection before the freeze, counted",
            )
            assert 'caravan_gc_pause_max_seconds{generation="2"}' in metrics.text
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 30)
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_at_sigterm_readiness_goes_first_polls_answer_streams_end_lease_released(
    kube: KubeClient, kubeconfig: str, namespace: str
) -> None:
    """The order a rolling update needs (docs/upgrading.md), on a real `caravan run`."""
    process = start_caravan_run(
        namespace,
        kubeconfig,
        "--leader-elect",
        "--shutdown-delay",
        "5",
        stdout=subprocess.DEVNULL,
        env={"POD_NAME": "sigterm"},
    )
    try:
        url = await listening_url(process)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await eventually(lambda: client.get("/readyz"), lambda r: r.status_code == 200)
            await eventually(
                lambda: lease_holder(kube, namespace), lambda h: h == "sigterm", what="the Lease"
            )
            index = (await client.get("/v1/jobs")).headers["waitIndex"]
            long_poll = asyncio.create_task(
                client.get("/v1/jobs", params={"waitIndex": index, "wait": "10m"})
            )
            ws_url = url.replace("http://", "ws://") + "/v1/events/ws"
            async with (
                client.stream("GET", "/v1/events/stream") as sse,
                connect(ws_url) as websocket,
            ):
                process.send_signal(signal.SIGTERM)
                # The long poll answers with the current view, not after ten minutes.
                answer = await long_poll
                assert answer.status_code == 200 and answer.headers["waitIndex"] == index
                assert answer.headers["connection"] == "close"
                # Still answering, but not ready: the endpoints drop the pod meanwhile.
                ready = await client.get("/readyz")
                assert (
                    ready.status_code == 503 and ready.json()["error"] == "this replica is stopping"
                )
                again = await client.get("/v1/jobs", params={"waitIndex": index, "wait": "10m"})
                assert again.status_code == 200
                # The server-sent events end with their last chunk: reading them to the end
                # raises nothing (a cut stream would: RemoteProtocolError).
                text = b"".join([chunk async for chunk in sse.aiter_bytes()]).decode()
                assert text.startswith(": subscribed")
                with pytest.raises(ConnectionClosed) as closed:
                    await websocket.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        code = await asyncio.to_thread(process.wait, 60)
        assert code == 0
        # Released on the way out: another replica takes over without waiting 15 s.
        assert await lease_holder(kube, namespace) == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def lease_holder(kube: KubeClient, namespace: str) -> str:
    try:
        lease = await kube.get(LEASES.item(namespace, "caravan-operator"))
    except NotFound:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


async def test_api_stops_when_the_operator_dies(kubeconfig: str, namespace: str) -> None:
    async with running_caravan(namespace=namespace, kubeconfig=kubeconfig) as caravan:
        assert caravan.operator is not None
        caravan.operator.stop_flag.set()  # Kopf ends by itself, as if it had crashed
        await asyncio.wait_for(caravan.wait_stopped(), timeout=30)
        assert caravan.server is not None and caravan.server.should_exit
        assert not caravan.operator.is_alive()


async def test_metrics_show_requests_watches_reconciles_and_waiters(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("m", [group("g")]))
    await eventually(lambda: api.get("/v1/jobs/m"), lambda r: r.status_code == 200)
    text = await eventually(
        lambda: api.get("/metrics"),
        lambda r: 'caravan_reconciles_total{result="ok"}' in r.text,
        what="a reconcile counted",
    )
    body = text.text
    assert 'caravan_http_request_seconds_count{method="GET",route="/v1/jobs/{job_id}"' in body
    assert 'caravan_watch_synced{kind="job"} 1.0' in body
    assert 'caravan_watch_seconds_since_event{kind="pod"}' in body
    assert "caravan_long_poll_waiters 0.0" in body
    assert 'caravan_events{what="accepted"}' in body
