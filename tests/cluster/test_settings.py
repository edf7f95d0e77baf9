"""Settings end to end: the ConfigMap, kubectl edits, the running process, task pods."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from caravan.kube.client import CONFIGMAPS, DEPLOYMENTS, JOBS, KubeClient, KubeError
from caravan.runner import Caravan
from caravan.settings import defaults_from_schema, load_builtin_schema
from tests.cluster.conftest import JSON_TYPE, running_caravan
from tests.cluster.kubeutil import eventually, group, job_body, service_account_token

DEFAULTS = defaults_from_schema(load_builtin_schema())
SETTINGS = "caravan-settings"
SCHEMA = "caravan-settings-schema"


async def stored_text(kube: KubeClient, namespace: str) -> str | None:
    try:
        configmap = await kube.get(CONFIGMAPS.item(namespace, SETTINGS))
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    text: str | None = (configmap.get("data") or {}).get("settings.json")
    return text


async def edit(kube: KubeClient, namespace: str, name: str, key: str, text: str) -> None:
    """What `kubectl edit` does: change the ConfigMap behind Caravan's back."""
    await kube.merge_patch(CONFIGMAPS.item(namespace, name), {"data": {key: text}})


async def settings_of(api: httpx.AsyncClient) -> httpx.Response:
    response = await api.get("/v1/settings")
    assert response.status_code == 200, response.text
    return response


async def test_defaults_are_stored_at_start_and_served(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    text = await eventually(
        lambda: stored_text(kube, namespace), lambda t: t is not None, what="stored defaults"
    )
    assert text is not None and json.loads(text) == DEFAULTS
    schema = await api.get("/v1/schemas/settings.json")
    assert schema.status_code == 200
    assert schema.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (await api.get("/v1/settings/default")).json() == DEFAULTS
    current = await settings_of(api)
    assert current.json() == DEFAULTS and current.headers["X-Caravan-Settings-Errors"] == "0"
    assert (await api.get("/v1/settings/errors")).json() == {"settings": [], "schema": []}


async def test_post_fills_validates_and_stores(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    posted = {"info": {"name": "arena"}, "app": {"region": "eu", "nested": {"deep": [1, 2]}}}
    response = await api.post("/v1/settings", json=posted)
    assert response.status_code == 200, response.text
    expected = {**DEFAULTS, "info": {"name": "arena", "description": ""}, "app": posted["app"]}
    assert response.json() == expected
    assert (await settings_of(api)).json() == expected
    text = await stored_text(kube, namespace)
    assert text is not None and json.loads(text) == expected


async def test_invalid_documents_are_refused_with_every_error_and_nothing_changes(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/v1/settings", json={"info": {"name": "kept"}})).status_code == 200
    before = await stored_text(kube, namespace)
    bad = {
        "info": {"name": ""},
        "jobs": {"longPoll": {"maxWaitSeconds": "soon"}},
        "events": {"maxResultsMessages": 0},
        "typo": True,
    }
    response = await api.post("/v1/settings", json=bad)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"].startswith("the settings document is invalid")
    paths = {d["path"] for d in body["details"]}
    assert {
        "$",
        "$.info.name",
        "$.jobs.longPoll.maxWaitSeconds",
        "$.events.maxResultsMessages",
    } <= paths
    assert all(d["message"] for d in body["details"])
    for raw, status in ((b"[1, 2]", 422), (b'"text"', 422), (b"{", 400), (b"", 400)):
        answer = await api.post("/v1/settings", content=raw, headers=JSON_TYPE)
        assert answer.status_code == status, (raw, answer.text)
        assert answer.json()["error"]
    duplicate = await api.post("/v1/settings", content=b'{"app": {}, "app": {}}', headers=JSON_TYPE)
    assert duplicate.status_code == 400
    assert await stored_text(kube, namespace) == before
    assert (await settings_of(api)).json()["info"]["name"] == "kept"


async def test_a_broken_kubectl_edit_is_reported_not_applied(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/v1/settings", json={"info": {"name": "good"}})).status_code == 200
    await edit(kube, namespace, SETTINGS, "settings.json", '{"info": {"name": 42}}')
    response = await eventually(
        lambda: api.get("/v1/settings"),
        lambda r: r.headers.get("X-Caravan-Settings-Errors") == "1",
        what="the broken edit reported",
    )
    assert response.json()["info"]["name"] == "good"
    errors = (await api.get("/v1/settings/errors")).json()
    assert [e["path"] for e in errors["settings"]] == ["$.info.name"]
    await edit(kube, namespace, SETTINGS, "settings.json", "{oops")
    await eventually(
        lambda: api.get("/v1/settings/errors"),
        lambda r: r.json()["settings"][0]["message"].startswith("invalid JSON"),
        what="the unparsable edit reported",
    )
    assert (await settings_of(api)).json()["info"]["name"] == "good"
    await edit(kube, namespace, SETTINGS, "settings.json", '{"info": {"name": "fixed"}}')
    fixed = await eventually(
        lambda: api.get("/v1/settings"),
        lambda r: r.json()["info"]["name"] == "fixed",
        what="the repaired edit applied",
    )
    assert fixed.headers["X-Caravan-Settings-Errors"] == "0"
    assert fixed.json()["jobs"] == DEFAULTS["jobs"]  # filled from the defaults
    # The partial edit is replaced by the complete document, the file task pods read.
    await eventually(
        lambda: stored_text(kube, namespace),
        lambda text: text is not None and json.loads(text) == fixed.json(),
        what="the stored text filled",
    )


async def test_a_new_long_poll_bound_takes_effect_at_once(
    api: httpx.AsyncClient, namespace: str
) -> None:
    first = await api.get("/v1/jobs")
    index = first.headers["waitIndex"]
    started = time.monotonic()
    blocked = await api.get("/v1/jobs", params={"wait": "2s"}, headers={"waitIndex": index})
    assert blocked.status_code == 200 and time.monotonic() - started >= 1.9
    bound = {"jobs": {"longPoll": {"defaultWaitSeconds": 1, "maxWaitSeconds": 1}}}
    assert (await api.post("/v1/settings", json=bound)).status_code == 200
    started = time.monotonic()
    capped = await api.get("/v1/jobs", params={"wait": "60s"}, headers={"waitIndex": index})
    elapsed = time.monotonic() - started
    assert capped.status_code == 200
    # Clamped to the new 1 s maximum (plus at most 1/16 jitter), not the 60 s asked for.
    assert 0.9 <= elapsed < 5, elapsed


async def test_new_events_limits_reach_the_running_engine(
    api: httpx.AsyncClient, caravan: Caravan
) -> None:
    events = {"events": {"maxResultsMessages": 7, "maxKeysPerReduction": 11}}
    assert (await api.post("/v1/settings", json=events)).status_code == 200
    assert caravan.state is not None
    service = caravan.state.events
    assert service is not None
    assert service.results_log.max_messages == 7
    assert service.max_keys_per_period == 11


async def test_an_installation_schema_extends_and_a_bad_one_is_reported(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    app_schema = {
        "properties": {
            "app": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"region": {"type": "string", "enum": ["eu", "us"], "default": "eu"}},
            }
        }
    }
    await kube.create(
        CONFIGMAPS.collection(namespace),
        {"metadata": {"name": SCHEMA}, "data": {"schema.json": json.dumps(app_schema)}},
    )
    await eventually(
        lambda: api.get("/v1/settings/default"),
        lambda r: r.json()["app"] == {"region": "eu"},
        what="the installation's defaults",
    )
    schema = (await api.get("/v1/schemas/settings.json")).json()
    assert schema["properties"]["app"]["properties"]["region"]["enum"] == ["eu", "us"]
    refused = await api.post("/v1/settings", json={"app": {"region": "mars"}})
    assert refused.status_code == 422
    assert [d["path"] for d in refused.json()["details"]] == ["$.app.region"]
    accepted = await api.post("/v1/settings", json={"app": {}})
    assert accepted.status_code == 200 and accepted.json()["app"] == {"region": "eu"}

    # An installation schema that drops one of Caravan's knobs is refused: Caravan's own
    # schema stays in force and the problem is reported.
    broken = {"properties": {"jobs": {"type": "object", "default": {}}}}
    await edit(kube, namespace, SCHEMA, "schema.json", json.dumps(broken))
    errors = await eventually(
        lambda: api.get("/v1/settings/errors"),
        lambda r: bool(r.json()["schema"]),
        what="the refused schema reported",
    )
    assert any("longPoll" in problem for problem in errors.json()["schema"])
    assert (await api.get("/v1/schemas/settings.json")).json() == load_builtin_schema()
    current = await settings_of(api)
    assert int(current.headers["X-Caravan-Settings-Errors"]) >= 1


async def test_task_pods_mount_the_settings_file(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("reader", [group("main")]))
    deployment: dict[str, Any] = await eventually(
        lambda: kube.get(DEPLOYMENTS.item(namespace, "reader-main")),
        lambda d: bool(d),
        what="Deployment reader-main",
    )
    pod = deployment["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "caravan-settings")
    assert volume["configMap"]["name"] == SETTINGS and volume["configMap"]["optional"] is True
    for container in pod["containers"]:
        mount = next(m for m in container["volumeMounts"] if m["name"] == "caravan-settings")
        assert mount["mountPath"] == "/etc/caravan/settings" and mount["readOnly"] is True
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        assert env["CARAVAN_SETTINGS_FILE"] == "/etc/caravan/settings/settings.json"
    # What the file holds: the stored, complete document.
    text = await stored_text(kube, namespace)
    assert text is not None and json.loads(text) == (await settings_of(api)).json()


async def test_settings_calls_need_the_callers_rbac_on_the_settings_configmap(
    kubeconfig: str, kube: KubeClient, namespace: str
) -> None:
    on_settings = {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [SETTINGS]}
    reader = await service_account_token(
        kube, namespace, "reader", [{**on_settings, "verbs": ["get"]}]
    )
    writer = await service_account_token(
        kube, namespace, "writer", [{**on_settings, "verbs": ["get", "update"]}]
    )
    async with (
        running_caravan(namespace=namespace, kubeconfig=kubeconfig, auth_mode="kubernetes") as app,
        httpx.AsyncClient(base_url=app.url, timeout=30) as client,
    ):
        reading = {"Authorization": f"Bearer {reader}"}
        writing = {"Authorization": f"Bearer {writer}"}
        for path in ("/v1/settings", "/v1/settings/default", "/v1/schemas/settings.json"):
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, headers=reading)).status_code == 200, path
        body = {"info": {"name": "secured"}}
        denied = await client.post("/v1/settings", json=body, headers=reading)
        assert denied.status_code == 403, denied.text
        assert (await client.get("/v1/settings", headers=reading)).json()["info"][
            "name"
        ] == "caravan"
        allowed = await client.post("/v1/settings", json=body, headers=writing)
        assert allowed.status_code == 200, allowed.text
        assert (await client.get("/v1/settings", headers=reading)).json()["info"][
            "name"
        ] == "secured"
