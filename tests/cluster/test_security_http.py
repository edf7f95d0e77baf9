"""Around the routes: browsers cannot drive a loopback Caravan, /metrics is behind RBAC,
and a stream ends when its caller's access is withdrawn. Real Caravan, real apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from caravan.kube.client import CONFIGMAPS, JOBS, SECRETS, KubeClient
from caravan.runner import Caravan
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import eventually, group, job_body, service_account_token

CLUSTER_RBAC = "/apis/rbac.authorization.k8s.io/v1"


async def _state(kube: KubeClient, namespace: str) -> Any:
    """What a refused request must not have changed: secrets, settings, the job."""
    secrets = await kube.list_items(SECRETS.collection(namespace))
    settings = await kube.list_items(CONFIGMAPS.collection(namespace))
    job = await kube.get(JOBS.item(namespace, "web"))
    return (
        sorted(s["metadata"]["name"] for s in secrets["items"]),
        {c["metadata"]["name"]: c.get("data") for c in settings["items"]},
        job["spec"],
    )


async def test_cross_site_and_rebinding_requests_are_refused_and_change_nothing(
    kube: KubeClient, namespace: str, caravan: Caravan
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("web", [group("g", count=0)]))
    own = caravan.url
    port = caravan.port
    async with httpx.AsyncClient(base_url=own, timeout=30) as api:
        await eventually(lambda: api.get("/v1/jobs/web"), lambda r: r.status_code == 200)
        before = await _state(kube, namespace)
        evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        attempts: list[tuple[str, str, dict[str, str], bytes | None, int]] = [
            # "Simple" requests a page on another site can send without a preflight.
            (
                "POST",
                "/v1/secrets/secret/api-key",
                {"Content-Type": "text/plain"},
                b'{"a": "b"}',
                415,
            ),
            ("POST", "/v1/settings", {"Content-Type": "text/plain"}, b'{"app": {}}', 415),
            ("POST", "/v1/jobs/stop/web", {**evil}, None, 403),
            (
                "POST",
                "/v1/jobsdef/evil",
                {"Content-Type": "application/x-www-form-urlencoded"},
                b"template=x",
                415,
            ),
            (
                "POST",
                "/v1/secrets/secret/api-key",
                {**evil, "Content-Type": "application/json"},
                b'{"a": "b"}',
                403,
            ),
            ("POST", "/v1/jobs/stop/web", {"Origin": "null"}, None, 403),
            ("POST", "/v1/jobs/stop/web", {"Sec-Fetch-Site": "cross-site"}, None, 403),
            # DNS rebinding: the attacker's name, resolving to 127.0.0.1.
            ("GET", "/v1/secrets/list", {"Host": f"rebind.attacker.example:{port}"}, None, 403),
            ("GET", "/v1/settings", {"Host": "rebind.attacker.example"}, None, 403),
            ("POST", "/v1/jobs/stop/web", {"Host": f"rebind.attacker.example:{port}"}, None, 403),
        ]
        for method, path, headers, body, status in attempts:
            answer = await api.request(method, path, content=body, headers=headers)
            assert answer.status_code == status, (method, path, headers, answer.text)
            assert answer.json()["error"]
        assert await _state(kube, namespace) == before
        # The same calls as this server's own page makes them are served.
        page = {"Origin": own, "Sec-Fetch-Site": "same-origin"}
        assert (await api.post("/v1/jobs/stop/web", headers=page)).status_code == 200
        job = await kube.get(JOBS.item(namespace, "web"))
        assert job["spec"]["suspend"] is True


async def _handshake(port: int, origin: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"GET /v1/events/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n" % (port, origin.encode())
        )
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def test_a_websocket_from_another_origin_is_refused(caravan: Caravan) -> None:
    assert b" 403 " in await _handshake(caravan.port, "https://evil.example")
    assert b" 403 " in await _handshake(caravan.port, f"http://localhost:{caravan.port + 1}")
    assert b" 101 " in await _handshake(caravan.port, caravan.url)


@contextlib.asynccontextmanager
async def metrics_reader(kube: KubeClient, namespace: str, account: str) -> AsyncIterator[None]:
    """A ClusterRole allowing `get` on /metrics, bound to `account` (cluster-scoped: named
    after the test's namespace, and removed afterwards)."""
    name = f"{namespace}-metrics"[:60] + uuid.uuid4().hex[:3]
    await kube.create(
        f"{CLUSTER_RBAC}/clusterroles",
        {
            "metadata": {"name": name},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        },
    )
    await kube.create(
        f"{CLUSTER_RBAC}/clusterrolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )
    try:
        yield
    finally:
        await kube.delete(f"{CLUSTER_RBAC}/clusterrolebindings/{name}")
        await kube.delete(f"{CLUSTER_RBAC}/clusterroles/{name}")


async def test_metrics_need_get_on_the_metrics_url(
    kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    # A namespace-wide admin may still not read /metrics: only the URL's own rule does.
    admin = await service_account_token(
        kube, namespace, "admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    )
    scraper = await service_account_token(kube, namespace, "scraper")
    async with (
        metrics_reader(kube, namespace, "scraper"),
        running_caravan(namespace=namespace, kubeconfig=kubeconfig, auth_mode="kubernetes") as c,
        httpx.AsyncClient(base_url=c.url, timeout=30) as api,
    ):
        assert (await api.get("/metrics")).status_code == 401
        denied = await api.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert denied.status_code == 403, denied.text
        assert "/metrics" in denied.json()["error"]
        allowed = await api.get("/metrics", headers={"Authorization": f"Bearer {scraper}"})
        assert allowed.status_code == 200, allowed.text
        assert "caravan_" in allowed.text
