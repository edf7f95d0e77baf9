"""Open streams end when their caller's access is withdrawn: a RoleBinding deleted ends
that caller's SSE stream, WebSocket and followed log, while another caller's stay open. Caravan runs
with a 1 s re-check here (30 s by default); decisions are cached 10 s at most."""

from __future__ import annotations

import asyncio
import pathlib
from contextlib import AbstractAsyncContextManager

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from caravan.config import ServerLimits
from caravan.kube.client import KubeClient
from caravan.runner import Caravan
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import served_allocation, service_account_token
from tests.samples import votes_only

READ_EVENTS = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
READ_LOGS = [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
RBAC = "/apis/rbac.authorization.k8s.io/v1/namespaces"
# Long enough for a 10 s cached decision and a 1 s re-check; a bound, not a measure.
ENDS_WITHIN = 60


def rechecking_caravan(namespace: str, kubeconfig: str) -> AbstractAsyncContextManager[Caravan]:
    """Caravan with authentication on, re-checking open streams every second."""
    return running_caravan(
        namespace=namespace,
        kubeconfig=kubeconfig,
        auth_mode="kubernetes",
        limits=ServerLimits(stream_recheck_seconds=1.0),
    )


async def test_streams_end_when_the_rolebinding_is_deleted(
    kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    leaving = await service_account_token(kube, namespace, "leaving", READ_EVENTS)
    staying = await service_account_token(kube, namespace, "staying", READ_EVENTS)
    async with rechecking_caravan(namespace, kubeconfig) as caravan:
        ws_url = caravan.url.replace("http://", "ws://") + "/v1/events/ws"
        async with (
            httpx.AsyncClient(base_url=caravan.url, timeout=None) as api,
            api.stream(
                "GET", "/v1/events/stream", headers={"Authorization": f"Bearer {leaving}"}
            ) as gone,
            api.stream(
                "GET", "/v1/events/stream", headers={"Authorization": f"Bearer {staying}"}
            ) as kept,
            connect(ws_url, additional_headers={"Authorization": f"Bearer {leaving}"}) as ws,
        ):
            assert gone.status_code == kept.status_code == 200
            gone_lines, kept_lines = gone.aiter_lines(), kept.aiter_lines()
            assert await anext(gone_lines) == ": subscribed"
            assert await anext(kept_lines) == ": subscribed"
            await kube.delete(f"{RBAC}/{namespace}/rolebindings/leaving")

            async def drained() -> None:
                async for _ in gone_lines:
                    pass

            await asyncio.wait_for(drained(), ENDS_WITHIN)  # the SSE stream ended
            try:
                await asyncio.wait_for(ws.recv(), ENDS_WITHIN)
                raise AssertionError("the WebSocket got a frame instead of closing")
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1008
            # The other caller's stream goes on: it still receives what is sent.
            sender = await service_account_token(
                kube,
                namespace,
                "sender",
                [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update"]}],
            )
            documents = {"mapreduce": [votes_only()]}
            auth = {"Authorization": f"Bearer {sender}"}
            stored = await api.post("/v1/events", json=documents, headers=auth)
            assert stored.status_code == 200, stored.text

            async def data() -> str:
                while True:
                    await api.post(
                        "/v1/events/send",
                        json={"channel": "game", "events": [{"key": ["vote"], "value": "a"}]},
                        headers=auth,
                    )
                    line = await asyncio.wait_for(anext(kept_lines), 5)
                    if line.startswith("data: "):
                        return line

            assert (await asyncio.wait_for(data(), ENDS_WITHIN)).startswith("data: ")


async def test_one_caller_holds_a_bounded_number_of_streams(
    kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    token = await service_account_token(kube, namespace, "greedy", READ_EVENTS)
    other = await service_account_token(kube, namespace, "other", READ_EVENTS)
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        running_caravan(
            namespace=namespace,
            kubeconfig=kubeconfig,
            auth_mode="kubernetes",
            limits=ServerLimits(max_streams_per_caller=2),
        ) as caravan,
        httpx.AsyncClient(base_url=caravan.url, timeout=30) as api,
        api.stream("GET", "/v1/events/stream", headers=auth) as first,
        api.stream("GET", "/v1/events/stream", headers=auth) as second,
    ):
        # The line iterators stay referenced: one collected would close its stream (httpx
        # closes a response whose body iterator is finalized), which frees its slot.
        lines = [held.aiter_lines() for held in (first, second)]
        for line in lines:
            assert await anext(line) == ": subscribed"
        # Bounded: a third stream that was let through would never end.
        third = await api.get("/v1/events/stream", headers=auth, timeout=10)
        assert third.status_code == 429, third.text
        assert "at most 2" in third.json()["error"]
        # Another caller is not held back by this one's streams.
        async with api.stream(
            "GET", "/v1/events/stream", headers={"Authorization": f"Bearer {other}"}
        ) as theirs:
            assert theirs.status_code == 200


async def test_a_followed_log_ends_when_the_rolebinding_is_deleted(
    kube: KubeClient, namespace: str, kubeconfig: str, tmp_path: pathlib.Path
) -> None:
    reader = await service_account_token(kube, namespace, "reader", READ_LOGS)
    async with rechecking_caravan(namespace, kubeconfig) as caravan:
        pod, _, truth = await served_allocation(
            kube, namespace, caravan, tmp_path, [("stdout", "before the revocation")]
        )
        async with (
            httpx.AsyncClient(base_url=caravan.url, timeout=None) as api,
            api.stream(
                "GET",
                f"/v1/log/fs/{pod}/main/stdout",
                params={"follow": "true"},
                headers={"Authorization": f"Bearer {reader}"},
            ) as followed,
        ):
            assert followed.status_code == 200
            received = bytearray()
            caught_up = asyncio.Event()

            async def read_all() -> None:
                async for chunk in followed.aiter_bytes():
                    received.extend(chunk)
                    if bytes(received) == truth:
                        caught_up.set()

            reading = asyncio.create_task(read_all())
            try:
                # The log so far arrives and the stream stays open (following)...
                await asyncio.wait_for(caught_up.wait(), 20)
                assert not reading.done()
                await kube.delete(f"{RBAC}/{namespace}/rolebindings/reader")
                # ...until the caller may no longer read it: then the stream ends.
                await asyncio.wait_for(reading, ENDS_WITHIN)
            finally:
                reading.cancel()
            assert bytes(received) == truth
