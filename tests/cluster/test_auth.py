"""API access control in `kubernetes` mode: each call is allowed exactly as the caller's RBAC.

Two ServiceAccounts: one may only read jobs, one may do everything the API offers.
Routes of every area are probed; the permission each needs is the table of
docs/install.md, kept here as ROUTES.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from caravan.kube.client import JOBS, KubeClient
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import eventually, group, job_body, service_account_token

READ_JOBS = [{"apiGroups": ["caravan.dev"], "resources": ["jobs"], "verbs": ["get", "list"]}]
EVERYTHING = [
    {"apiGroups": ["caravan.dev"], "resources": ["jobs"], "verbs": ["get", "list", "patch"]},
    {
        "apiGroups": [""],
        "resources": ["pods", "pods/log", "configmaps", "secrets"],
        "verbs": ["get", "list", "create", "update", "patch", "delete"],
    },
]

# (method, path, body, allowed for the jobs reader)
ROUTES: list[tuple[str, str, Any, bool]] = [
    ("GET", "/v1/jobs", None, True),
    ("GET", "/v1/jobs/web", None, True),
    ("POST", "/v1/jobs/updatecounts", {"jobID": "web", "taskGroup": "g", "count": 1}, False),
    ("POST", "/v1/jobs/stop/web", None, False),
    ("POST", "/v1/jobs/start/web", None, False),
]


@pytest.fixture
async def secured(kubeconfig: str, namespace: str, kube: KubeClient) -> Any:
    await kube.create(JOBS.collection(namespace), job_body("web", [group("g", count_max=5)]))
    async with running_caravan(
        namespace=namespace, kubeconfig=kubeconfig, auth_mode="kubernetes"
    ) as instance:
        yield instance


async def test_no_or_bad_token_is_401(secured: Any) -> None:
    async with httpx.AsyncClient(base_url=secured.url) as client:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
        ):
            r = await client.get("/v1/jobs", headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.json()["error"]
        # Probes stay open: the kubelet sends no token.
        assert (await client.get("/healthz")).status_code == 200


async def test_each_call_follows_the_callers_rbac(
    secured: Any, kube: KubeClient, namespace: str
) -> None:
    reader = await service_account_token(kube, namespace, "reader", READ_JOBS)
    admin = await service_account_token(kube, namespace, "admin", EVERYTHING)
    nobody = await service_account_token(kube, namespace, "nobody")
    async with httpx.AsyncClient(base_url=secured.url, timeout=30) as client:
        # RBAC bindings take effect as soon as they exist, but wait for the job view.
        await eventually(
            lambda: client.get("/v1/jobs/web", headers={"Authorization": f"Bearer {admin}"}),
            lambda r: r.status_code == 200,
            what="job visible to the admin account",
        )
        for method, path, body, reader_allowed in ROUTES:
            as_reader = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {reader}"}
            )
            as_admin = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {admin}"}
            )
            as_nobody = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {nobody}"}
            )
            assert as_admin.status_code == 200, (method, path, as_admin.text)
            assert as_nobody.status_code == 403, (method, path, as_nobody.text)
            assert (as_reader.status_code == 200) == reader_allowed, (
                method,
                path,
                as_reader.status_code,
                as_reader.text,
            )
            if not reader_allowed:
                assert as_reader.status_code == 403
                assert f"system:serviceaccount:{namespace}:reader" in as_reader.json()["error"]
