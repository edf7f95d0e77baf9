"""Access decided precisely, on a real kube-apiserver: the ConfigMap reviews name their
ConfigMap, a secret write tells nothing of the Secret before the caller may write it, and
a job definition's verb (create or update) follows the apiserver, not the cache."""

from __future__ import annotations

from typing import Any

import httpx

from caravan.config import ConfigMapNames
from caravan.kube.client import JOBS, SECRETS, KubeClient
from caravan.secrets import managed_secret
from tests.cluster.kubeutil import eventually, group, service_account_token

NAMES = ConfigMapNames()
Route = tuple[str, str, Any]
DEFINITION = {"template": {"taskGroups": [group("g", count_max=2)]}}


def configmap_rule(name: str) -> dict[str, Any]:
    return {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [name],
        "verbs": ["get", "update"],
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_configmap_route_needs_only_its_own_configmap(
    secured: Any, kube: KubeClient, namespace: str
) -> None:
    game = await service_account_token(kube, namespace, "game", [configmap_rule(NAMES.events)])
    logs = await service_account_token(kube, namespace, "logs", [configmap_rule(NAMES.logs)])
    loggers = await service_account_token(
        kube, namespace, "loggers", [configmap_rule(NAMES.loggers)]
    )
    events_routes: list[Route] = [
        ("GET", "/v1/events", None),
        ("POST", "/v1/events/send", {"channel": "game", "events": []}),
        ("GET", "/v1/events/results/0", None),
    ]
    logs_routes: list[Route] = [("GET", "/v1/log/logs", None), ("POST", "/v1/log/logs", [])]
    loggers_routes: list[Route] = [
        ("GET", "/v1/log/defaults", None),
        ("POST", "/v1/log/defaults/game", {"leaf": "info"}),
    ]
    granted: dict[str, list[Route]] = {
        game: events_routes,
        logs: logs_routes,
        loggers: loggers_routes,
    }
    every = events_routes + logs_routes + loggers_routes
    async with httpx.AsyncClient(base_url=secured.url, timeout=30) as client:
        for token, allowed in granted.items():
            for method, path, body in every:
                answer = await client.request(method, path, json=body, headers=bearer(token))
                if (method, path, body) in allowed:
                    assert answer.status_code == 200, (method, path, answer.text)
                else:
                    assert answer.status_code == 403, (method, path, answer.text)
        # Nor do they reach the settings, which name theirs too.
        answer = await client.get("/v1/settings", headers=bearer(game))
        assert answer.status_code == 403


async def test_a_secret_write_answers_the_same_whether_or_not_the_secret_exists(
    secured: Any, kube: KubeClient, namespace: str
) -> None:
    await kube.create(SECRETS.collection(namespace), managed_secret("present", {"k": "v"}))
    rule = {"apiGroups": [""], "resources": ["secrets"]}
    creator = await service_account_token(
        kube, namespace, "creator", [{**rule, "verbs": ["create"]}]
    )
    updater = await service_account_token(
        kube, namespace, "updater", [{**rule, "verbs": ["get", "update"]}]
    )
    async with httpx.AsyncClient(base_url=secured.url, timeout=30) as client:
        for token in (creator, updater):
            answers = [
                await client.post(
                    f"/v1/secrets/secret/{name}", json={"k": "w"}, headers=bearer(token)
                )
                for name in ("present", "absent")
            ]
            assert [a.status_code for a in answers] == [403, 403], [a.text for a in answers]
            assert answers[0].json() == answers[1].json()
        # Without a token: 401 either way, before anything is read.
        anonymous = [
            await client.post(f"/v1/secrets/secret/{name}", json={"k": "w"})
            for name in ("present", "absent")
        ]
        assert [a.status_code for a in anonymous] == [401, 401]
        assert anonymous[0].json() == anonymous[1].json()
    stored = await kube.get(SECRETS.item(namespace, "present"))
    assert stored["data"] == managed_secret("present", {"k": "v"})["data"]


async def test_a_job_definition_asks_the_verb_the_apiserver_calls_for(
    secured: Any, kube: KubeClient, namespace: str
) -> None:
    rule = {"apiGroups": ["caravan.dev"], "resources": ["jobs"]}
    updater = await service_account_token(
        kube, namespace, "updater", [{**rule, "verbs": ["get", "list", "update"]}]
    )
    creator = await service_account_token(
        kube, namespace, "creator", [{**rule, "verbs": ["get", "list", "create"]}]
    )
    store = secured.state.store
    async with httpx.AsyncClient(base_url=secured.url, timeout=30) as client:
        await eventually(
            lambda: client.get("/v1/jobsdef/web", headers=bearer(updater)),
            lambda r: r.status_code == 200,
            what="job visible to the updater",
        )
        # This replica's copy lags behind: it has not seen "web" yet, and still holds a
        # "ghost" that the apiserver no longer has.
        web = store.job_bodies.pop("web")
        store.job_bodies["ghost"] = {**web, "metadata": {**web["metadata"], "name": "ghost"}}
        replaced = await client.post(
            "/v1/jobsdef/web?force=true", json=DEFINITION, headers=bearer(updater)
        )
        assert replaced.status_code == 200, replaced.text
        refused = await client.post(
            "/v1/jobsdef/web?force=true", json=DEFINITION, headers=bearer(creator)
        )
        assert refused.status_code == 403, refused.text
        created = await client.post("/v1/jobsdef/ghost", json=DEFINITION, headers=bearer(creator))
        assert created.status_code == 200, created.text
    assert (await kube.get(JOBS.item(namespace, "ghost")))["metadata"]["name"] == "ghost"
