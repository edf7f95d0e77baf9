"""The UI's server side without a cluster: static files, deep links, the offline API pages,
GET /v1/access (mode none, and mode kubernetes over a fake reviewer), and the allocation
view of a pod."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from caravan.api.app import create_app
from caravan.api.auth import AccessReviewer
from caravan.api.routers import access as access_routes
from caravan.api.routers import ui as ui_routes
from caravan.api.state import AppState
from caravan.config import Config
from caravan.jobs.allocations import allocation_view
from caravan.kube.client import JSON, KubeClient, KubeError
from caravan.store import Store


class FakeReviewKube:
    """Answers TokenReviews and SubjectAccessReviews as a small RBAC would."""

    def __init__(self, allowed: set[tuple[str, str, str]]) -> None:
        self.allowed = allowed  # (verb, resource[/subresource], name)
        self.reviews = 0
        self.fail = False

    async def create(self, path: str, body: JSON) -> JSON:
        if self.fail:
            raise KubeError(0, "cluster unreachable")
        if body["kind"] == "TokenReview":
            ok = body["spec"]["token"] == "good"
            user = {"username": "system:serviceaccount:unit:reader", "groups": ["g"]}
            return {"status": {"authenticated": ok, "user": user if ok else {}}}
        self.reviews += 1
        attrs = body["spec"]["resourceAttributes"]
        resource = attrs["resource"] + (
            f"/{attrs['subresource']}" if "subresource" in attrs else ""
        )
        ok = (attrs["verb"], resource, attrs.get("name", "")) in self.allowed
        return {"status": {"allowed": ok, "reason": "" if ok else "no RBAC rule"}}


def make_state(mode: str, kube: Any = None) -> AppState:
    config = Config(namespace="unit", auth_mode=mode)  # type: ignore[arg-type]
    state = AppState(config=config, kube=cast(KubeClient, kube), store=Store())
    if mode == "kubernetes":
        state.auth = AccessReviewer(cast(KubeClient, kube), "unit")
    return state


@pytest.fixture
async def local() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(make_state("none")))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def test_every_ui_path_is_the_page_and_assets_are_typed(local: httpx.AsyncClient) -> None:
    root = await local.get("/ui")
    assert root.status_code == 308
    assert root.headers["location"] == "/ui/"
    for path in ("/ui/", "/ui/jobs/web", "/ui/logs/web-main/web-abc", "/ui/settings"):
        page = await local.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/ui/assets/js/app.js">' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
    script = await local.get("/ui/assets/js/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    css = await local.get("/ui/assets/style.css")
    assert css.headers["content-type"].startswith("text/css")


async def test_assets_outside_the_folder_or_unknown_are_404(local: httpx.AsyncClient) -> None:
    for path in (
        "/ui/assets/nope.js",
        "/ui/assets/..%2f__init__.py",
        "/ui/assets/%2e%2e/%2e%2e/api/app.py",
        "/ui/assets/js",
    ):
        response = await local.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]


def test_asset_path_stays_inside_its_root(tmp_path: pathlib.Path) -> None:
    (tmp_path / "ok.js").write_text("")
    (tmp_path / "data.bin").write_text("")
    assert ui_routes.asset_path(tmp_path, "ok.js") == (tmp_path / "ok.js").resolve()
    for name in ("", "../x.js", "data.bin", "missing.js", "a\\b.js", "/etc/passwd"):
        assert ui_routes.asset_path(tmp_path, name) is None, name


async def test_api_pages_load_nothing_from_a_cdn(local: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        response = await local.get(page)
        assert response.status_code == 200
        assert "cdn" not in response.text.lower()
        assert "googleapis" not in response.text
        # ReDoc's bundle names one image on its CDN: the browser may load none from there.
        assert response.headers["Content-Security-Policy"] == ui_routes.API_PAGES_CSP
        for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
            if asset in response.text:
                assert (await local.get(asset)).status_code == 200
    assert (await local.get("/docs/assets/redoc.standalone.js")).status_code == 200
    assert (await local.get("/docs/assets/../__init__.py")).status_code == 404
    # The UI's routes are no part of the API contract.
    paths = (await local.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith(("/ui", "/docs", "/redoc"))]
    assert "/v1/access" in paths


async def test_access_in_mode_none_allows_everything(local: httpx.AsyncClient) -> None:
    body = (await local.get("/v1/access")).json()
    assert body["mode"] == "none"
    assert body["user"] == "caravan:local"
    assert body["namespace"] == "unit"
    assert set(body["actions"]) == {a.id for a in access_routes.actions(Config())}
    assert all(a["allowed"] and a["reason"] == "" for a in body["actions"].values())
    assert body["actions"]["jobs.write"]["needs"] == "patch jobs.caravan.dev"
    assert body["actions"]["logs.read"]["needs"] == "get pods/log"
    assert body["actions"]["settings.write"]["needs"] == "update configmaps named caravan-settings"


async def test_access_in_mode_kubernetes_asks_kubernetes_and_caches() -> None:
    kube = FakeReviewKube({("list", "jobs", ""), ("get", "configmaps", "caravan-settings")})
    transport = httpx.ASGITransport(app=create_app(make_state("kubernetes", kube)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        missing = await client.get("/v1/access")
        assert missing.status_code == 401
        assert "bearer" in missing.json()["error"]
        bad = await client.get("/v1/access", headers={"Authorization": "Bearer bad"})
        assert bad.status_code == 401
        good = await client.get("/v1/access", headers={"Authorization": "Bearer good"})
        assert good.status_code == 200
        body = good.json()
        assert body["mode"] == "kubernetes"
        assert body["user"] == "system:serviceaccount:unit:reader"
        allowed = {k for k, v in body["actions"].items() if v["allowed"]}
        assert allowed == {"jobs.read", "settings.read"}
        denied = body["actions"]["jobs.write"]
        assert denied["reason"] == (
            "system:serviceaccount:unit:reader may not patch jobs.caravan.dev in namespace unit"
            ": no RBAC rule"
        )
        reviews = kube.reviews
        again = await client.get("/v1/access", headers={"Authorization": "Bearer good"})
        assert again.json() == body
        assert kube.reviews == reviews  # answered from the reviewer's cache
        # The cluster gone (and the caches empty): 503 with the reason, not a 500.
        state: AppState = transport.app.state.caravan  # type: ignore[attr-defined]
        state.auth = AccessReviewer(cast(KubeClient, kube), "unit")
        kube.fail = True
        gone = await client.get("/v1/access", headers={"Authorization": "Bearer good"})
        assert gone.status_code == 503
        assert "unreachable" in gone.json()["error"]


def test_allocation_view_reads_node_restarts_and_status() -> None:
    pod: JSON = {
        "metadata": {
            "name": "web-front-abc",
            "creationTimestamp": "2026-01-01T10:00:00Z",
            "labels": {"caravan.dev/job": "web", "caravan.dev/task-group": "front"},
        },
        "spec": {"nodeName": "kwok-node-0", "containers": [{"name": "main"}, {"name": "side"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "main", "restartCount": 2},
                {"name": "side", "restartCount": 1},
            ],
        },
    }
    assert allocation_view(pod) == {
        "allocID": "web-front-abc",
        "taskGroup": "front",
        "status": "running",
        "phase": "Running",
        "node": "kwok-node-0",
        "createTime": "2026-01-01T10:00:00Z",
        "restarts": 3,
        "reason": "",
        "message": "",
        "tasks": [
            {
                "name": "main",
                "state": "waiting",
                "reason": "",
                "message": "",
                "exitCode": None,
                "restarts": 2,
                "lastTermination": None,
            },
            {
                "name": "side",
                "state": "waiting",
                "reason": "",
                "message": "",
                "exitCode": None,
                "restarts": 1,
                "lastTermination": None,
            },
        ],
    }
    queued = allocation_view({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "m"}]}})
    assert queued["status"] == "pending"
    assert queued["node"] == ""
    assert queued["restarts"] == 0
