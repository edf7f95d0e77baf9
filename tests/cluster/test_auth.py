"""API access control in `kubernetes` mode: each call is allowed exactly as the caller's RBAC.

Two ServiceAccounts: one may only read jobs, one may do everything the API offers.
Routes of every area are probed; the permission each needs is the table of
docs/install.md, kept here as ROUTES.
"""

from __future__ import annotations

from typing import Any

import httpx

from caravan.kube.client import KubeClient
from tests.cluster.kubeutil import eventually, group, service_account_token

READ_JOBS = [{"apiGroups": ["caravan.dev"], "resources": ["jobs"], "verbs": ["get", "list"]}]
EVERYTHING = [
    {
        "apiGroups": ["caravan.dev"],
        "resources": ["jobs"],
        "verbs": ["get", "list", "patch", "create", "update", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["pods", "pods/log", "configmaps", "secrets"],
        "verbs": ["get", "list", "create", "update", "patch", "delete"],
    },
]

DEFINITION = {"template": {"taskGroups": [group("g", count_max=2)]}}

# Every area's routes: (method, path, body, allowed for the jobs reader). The permission
# each needs is the table of docs/install.md; the admin account holds them all.
ROUTES: list[tuple[str, str, Any, bool]] = [
    ("GET", "/v1/jobs", None, True),
    ("GET", "/v1/jobs/web", None, True),
    ("GET", "/v1/jobs/web/allocations", None, False),
    ("POST", "/v1/jobs/updatecounts", {"jobID": "web", "taskGroup": "g", "count": 1}, False),
    ("POST", "/v1/jobs/stop/web", None, False),
    ("POST", "/v1/jobs/start/web", None, False),
    ("POST", "/v1/jobs/restart/web", None, False),
    ("GET", "/v1/jobs/web/activity", None, True),
    ("POST", "/v1/allocations/no-pod/restart", None, False),
    ("GET", "/v1/job/web/summary", None, True),
    ("POST", "/v1/jobs/stop", None, False),
    ("POST", "/v1/jobs/start", None, False),
    ("GET", "/v1/jobsdefs", None, True),
    ("GET", "/v1/jobsdef/web", None, True),
    ("POST", "/v1/jobsdef/extra", DEFINITION, False),
    ("POST", "/v1/jobsdefs", {"web": DEFINITION, "other": DEFINITION}, False),
    ("DELETE", "/v1/jobsdef/extra", None, False),
    ("DELETE", "/v1/jobsdefs", None, False),
    ("GET", "/v1/log/logs", None, False),
    ("POST", "/v1/log/logs", [], False),
    ("GET", "/v1/log/meta/none", None, False),
    ("GET", "/v1/log/fs/no-pod/main/stdout", None, False),
    ("GET", "/v1/log/defaults", None, False),
    ("POST", "/v1/log/defaults/game", {"leaf": "info"}, False),
    ("GET", "/v1/log/allocs/no-pod", None, False),
    ("POST", "/v1/log/allocs/no-pod/game", {"leaf": "debug"}, False),
    ("DELETE", "/v1/log/allocs/no-pod/game", None, False),
    ("GET", "/v1/events", None, False),
    ("POST", "/v1/events", {"mapreduce": []}, False),
    ("GET", "/v1/events/results/0", None, False),
    ("GET", "/v1/settings", None, False),
    ("GET", "/v1/settings/default", None, False),
    ("GET", "/v1/schemas/settings.json", None, False),
    ("POST", "/v1/settings", {}, False),
    ("GET", "/v1/secrets/list", None, False),
    ("POST", "/secrets/secret/api-key", {"token": "s3cr3t"}, False),
    ("GET", "/secrets/secret/api-key", None, False),
    ("GET", "/v1/secrets/secret/api-key", None, False),
    ("DELETE", "/secrets/secret/api-key", None, False),
]
DENIED = {401, 403}


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
            # Allowed means past access control: 404 for an unknown pod is fine here.
            assert as_admin.status_code not in DENIED, (method, path, as_admin.text)
            assert as_admin.status_code < 500, (method, path, as_admin.text)
            assert as_nobody.status_code == 403, (method, path, as_nobody.text)
            reader_passed = as_reader.status_code not in DENIED
            assert reader_passed == reader_allowed, (method, path, as_reader.status_code)
            if not reader_allowed:
                assert as_reader.status_code == 403
                assert f"system:serviceaccount:{namespace}:reader" in as_reader.json()["error"]
