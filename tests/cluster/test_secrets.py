"""Secrets end to end: Kubernetes Secrets labelled as Caravan's, and nobody else's."""

from __future__ import annotations

import base64
import logging
import pathlib
from typing import Any

import httpx
import pytest
import yaml

from caravan.kube.client import DEPLOYMENTS, JOBS, SECRETS, KubeClient, KubeError
from caravan.runner import Caravan
from tests.cluster.conftest import JSON_TYPE, running_caravan
from tests.cluster.kubeutil import eventually, service_account_token

PREFIXES = ["/v1/secrets", "/secrets"]
MANAGED = {"app.kubernetes.io/managed-by": "caravan"}
EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "job-with-secret.yaml"


async def secret_or_none(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await kube.get(SECRETS.item(namespace, name))
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def listed(api: httpx.AsyncClient, prefix: str = "/v1/secrets") -> list[str]:
    response = await api.get(f"{prefix}/list")
    assert response.status_code == 200, response.text
    keys: list[str] = response.json()["keys"]
    return keys


async def create_foreign(kube: KubeClient, namespace: str, name: str, **extra: Any) -> None:
    """A Secret Caravan does not manage, as kubectl or Helm would create it (no label)."""
    body = {"metadata": {"name": name}, "stringData": {"password": "not-caravans"}, **extra}
    await kube.create(SECRETS.collection(namespace), body)


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_create_read_replace_list_delete(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient, prefix: str
) -> None:
    first = {"GENVID_COMMAND_SECRET": "anothersecret", "akey": "avalue"}
    created = await api.post(f"{prefix}/secret/game", json=first)
    assert created.status_code == 204, created.text
    stored = await secret_or_none(kube, namespace, "game")
    assert stored is not None
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "caravan"
    assert stored["type"] == "Opaque"
    assert decoded(stored) == first
    # A write is listed as soon as it returns (read-your-writes), on both prefixes.
    assert await listed(api, prefix) == ["game"]
    read = await api.get(f"{prefix}/secret/game")
    assert read.status_code == 200 and read.json() == first

    # POST replaces the whole map: keys not posted again are gone.
    second = {"only": "this", "unicode": "é✓"}
    replaced = await api.post(f"{prefix}/secret/game", json=second)
    assert replaced.status_code == 204, replaced.text
    assert (await api.get(f"{prefix}/secret/game")).json() == second
    after = await secret_or_none(kube, namespace, "game")
    assert after is not None and after["metadata"]["uid"] == stored["metadata"]["uid"]

    assert (await api.post(f"{prefix}/secret/another", json={})).status_code == 204
    assert await listed(api, prefix) == ["another", "game"]
    assert (await api.get(f"{prefix}/secret/another")).json() == {}

    deleted = await api.delete(f"{prefix}/secret/game")
    assert deleted.status_code == 204, deleted.text
    assert await secret_or_none(kube, namespace, "game") is None
    assert await listed(api, prefix) == ["another"]
    assert (await api.get(f"{prefix}/secret/game")).status_code == 404
    again = await api.delete(f"{prefix}/secret/game")
    assert again.status_code == 404 and "game" in again.json()["error"]


async def test_unmanaged_secret_is_never_listed_read_overwritten_or_deleted(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await create_foreign(kube, namespace, "helm-release")
    before = await secret_or_none(kube, namespace, "helm-release")
    assert before is not None
    for prefix in PREFIXES:
        assert "helm-release" not in await listed(api, prefix)
        read = await api.get(f"{prefix}/secret/helm-release")
        assert read.status_code == 404, read.text
        assert "not-caravans" not in read.text
        write = await api.post(f"{prefix}/secret/helm-release", json={"password": "mine"})
        assert write.status_code == 409, write.text
        assert "not managed by Caravan" in write.json()["error"]
        delete = await api.delete(f"{prefix}/secret/helm-release")
        assert delete.status_code == 409, delete.text
    after = await secret_or_none(kube, namespace, "helm-release")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert decoded(after) == {"password": "not-caravans"}
    assert "app.kubernetes.io/managed-by" not in (after["metadata"].get("labels") or {})


async def test_service_account_token_secret_is_left_alone(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await create_foreign(
        kube,
        namespace,
        "default-token",
        type="kubernetes.io/service-account-token",
        metadata={
            "name": "default-token",
            "annotations": {"kubernetes.io/service-account.name": "default"},
        },
    )
    before = await secret_or_none(kube, namespace, "default-token")
    assert before is not None and before["type"] == "kubernetes.io/service-account-token"
    assert "default-token" not in await listed(api)
    assert (await api.get("/v1/secrets/secret/default-token")).status_code == 404
    assert (await api.post("/secrets/secret/default-token", json={"a": "b"})).status_code == 409
    assert (await api.delete("/secrets/secret/default-token")).status_code == 409
    after = await secret_or_none(kube, namespace, "default-token")
    assert after is not None
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert "a" not in (after.get("data") or {})


async def test_a_secret_relabelled_away_from_caravan_is_no_longer_caravans(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/v1/secrets/secret/taken", json={"k": "v"})).status_code == 204
    await kube.merge_patch(
        SECRETS.item(namespace, "taken"),
        {"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}},
    )
    await eventually(lambda: listed(api), lambda keys: "taken" not in keys, what="unlisted")
    assert (await api.get("/v1/secrets/secret/taken")).status_code == 404
    assert (await api.delete("/v1/secrets/secret/taken")).status_code == 409
    assert await secret_or_none(kube, namespace, "taken") is not None


BAD_WRITES: list[tuple[str, Any]] = [
    ("/v1/secrets/secret/Upper", {"a": "b"}),
    ("/v1/secrets/secret/under_score", {"a": "b"}),
    ("/v1/secrets/secret/-dash", {"a": "b"}),
    ("/v1/secrets/secret/" + "a" * 254, {"a": "b"}),
    ("/v1/secrets/secret/ok", {"a": 1}),
    ("/v1/secrets/secret/ok", {"a": None}),
    ("/v1/secrets/secret/ok", {"a": {"nested": "x"}}),
    ("/v1/secrets/secret/ok", {"bad key": "x"}),
    ("/v1/secrets/secret/ok", {"..hidden": "x"}),
    ("/v1/secrets/secret/ok", {"": "x"}),
    ("/v1/secrets/secret/ok", ["a", "b"]),
    ("/v1/secrets/secret/ok", "text"),
    ("/secrets/secret/ok", {"a": "x" * (1024 * 1024 + 1)}),
]


async def test_bad_input_is_400_and_changes_nothing(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/v1/secrets/secret/ok", json={"keep": "me"})).status_code == 204
    for path, body in BAD_WRITES:
        response = await api.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"], response.text
    for raw in (b"{", b'{"a": "b", "a": "c"}', b"\xff\xfe", b'{"a": NaN}', b'{"a": "\\ud800"}'):
        response = await api.post("/v1/secrets/secret/ok", content=raw, headers=JSON_TYPE)
        assert response.status_code == 400, (raw, response.text)
    for path in ("/v1/secrets/secret/Upper", "/secrets/secret/a..b"):
        assert (await api.get(path)).status_code == 400
        assert (await api.delete(path)).status_code == 400
    assert await listed(api) == ["ok"]
    stored = await secret_or_none(kube, namespace, "ok")
    assert stored is not None and decoded(stored) == {"keep": "me"}


async def test_values_never_reach_logs_or_errors(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, caravan: Caravan
) -> None:
    value = "s3cr3t-value-that-must-not-leak"
    caplog.set_level(logging.DEBUG)
    answers = [
        await api.post("/v1/secrets/secret/leak", json={"TOKEN": value}),
        await api.get("/v1/secrets/secret/leak"),
        await api.post("/v1/secrets/secret/leak", json={"TOKEN": value, "bad key": value}),
        await api.post("/v1/secrets/secret/leak", json={"TOKEN": [value]}),
        await api.post(
            "/v1/secrets/secret/leak",
            content=b'{"TOKEN": "' + value.encode() + b'"',
            headers=JSON_TYPE,
        ),
        await api.post(
            "/v1/secrets/secret/leak",
            content=f'{{"T": "{value}", "T": "x"}}',
            headers=JSON_TYPE,
        ),
        await api.post("/v1/secrets/secret/BAD", json={"TOKEN": value}),
    ]
    assert [a.status_code for a in answers] == [204, 200, 400, 400, 400, 400, 400]
    for answer in answers[2:]:
        assert value not in answer.text
    assert value not in caplog.text


async def test_binary_keys_of_a_managed_secret_are_left_out_and_named(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await kube.create(
        SECRETS.collection(namespace),
        {
            "metadata": {"name": "mixed", "labels": MANAGED},
            "data": {"text": base64.b64encode(b"hello").decode(), "blob": "/w=="},
        },
    )
    response = await eventually(
        lambda: api.get("/v1/secrets/secret/mixed"), lambda r: r.status_code == 200
    )
    assert response.json() == {"text": "hello"}
    assert response.headers["X-Caravan-Omitted-Keys"] == "blob"


async def test_the_example_job_consumes_a_caravan_secret_the_kubernetes_way(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    job = yaml.safe_load(EXAMPLE.read_text())
    stored = await api.post(
        "/v1/secrets/secret/game-keys",
        json={"GENVID_COMMAND_SECRET": "anothersecret", "API_TOKEN": "t0k3n"},
    )
    assert stored.status_code == 204
    await kube.create(JOBS.collection(namespace), job)
    deployment = await eventually(
        lambda: kube.get(DEPLOYMENTS.item(namespace, "game-server")),
        lambda d: bool(d),
        what="Deployment game-server",
    )
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "game-keys"}}]
    assert {"name": "keys", "secret": {"secretName": "game-keys", "defaultMode": 420}} in pod[
        "volumes"
    ]
    # The Secret the pod refers to is the one the API stored.
    secret = await secret_or_none(kube, namespace, "game-keys")
    assert secret is not None and decoded(secret)["API_TOKEN"] == "t0k3n"


async def test_each_secret_call_needs_the_callers_own_rbac(
    kubeconfig: str, kube: KubeClient, namespace: str
) -> None:
    secrets_rule = {"apiGroups": [""], "resources": ["secrets"]}
    reader = await service_account_token(
        kube, namespace, "reader", [{**secrets_rule, "verbs": ["get", "list"]}]
    )
    creator = await service_account_token(
        kube, namespace, "creator", [{**secrets_rule, "verbs": ["get", "create"]}]
    )
    writer = await service_account_token(
        kube, namespace, "writer", [{**secrets_rule, "verbs": ["get", "create", "update"]}]
    )
    admin = await service_account_token(
        kube,
        namespace,
        "admin",
        [{**secrets_rule, "verbs": ["get", "list", "create", "update", "delete"]}],
    )
    async with (
        running_caravan(namespace=namespace, kubeconfig=kubeconfig, auth_mode="kubernetes") as app,
        httpx.AsyncClient(base_url=app.url, timeout=30) as client,
    ):

        def as_(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        assert (await client.get("/v1/secrets/list")).status_code == 401
        # A write creates or replaces: it needs both `create` and `update` (asked before
        # anything is read), so it tells no one whether the Secret exists.
        denied = await client.post("/secrets/secret/s", json={"k": "v"}, headers=as_(creator))
        assert denied.status_code == 403, denied.text
        made = await client.post("/secrets/secret/s", json={"k": "v"}, headers=as_(writer))
        assert made.status_code == 204, made.text
        again = await client.post("/secrets/secret/s", json={"k": "w"}, headers=as_(creator))
        assert again.status_code == 403, again.text
        assert again.json() == denied.json()
        # Deleting is `delete`, which neither has.
        assert (await client.delete("/secrets/secret/s", headers=as_(writer))).status_code == 403
        assert (await client.get("/v1/secrets/list", headers=as_(creator))).status_code == 403
        listed_by_reader = await client.get("/v1/secrets/list", headers=as_(reader))
        assert listed_by_reader.json() == {"keys": ["s"]}
        assert (await client.get("/v1/secrets/secret/s", headers=as_(reader))).json() == {"k": "v"}
        new = await client.post("/v1/secrets/secret/t", json={"k": "v"}, headers=as_(reader))
        assert new.status_code == 403
        assert (await client.delete("/v1/secrets/secret/s", headers=as_(reader))).status_code == 403
        stored = await secret_or_none(kube, namespace, "s")
        assert stored is not None and decoded(stored) == {"k": "v"}
        assert await secret_or_none(kube, namespace, "t") is None
        replaced = await client.post("/v1/secrets/secret/s", json={"k": "w"}, headers=as_(admin))
        assert replaced.status_code == 204
        assert (await client.delete("/v1/secrets/secret/s", headers=as_(admin))).status_code == 204
