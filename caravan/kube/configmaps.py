"""Caravan's documents kept in ConfigMaps: one JSON text under one data key each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from caravan import labels
from caravan.kube.client import CONFIGMAPS, JSON, KubeClient
from caravan.kube.rmw import changes, read_modify_write


def new_configmap(name: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {labels.MANAGED_BY_LABEL: labels.MANAGED_BY_VALUE},
        },
        "data": {},
    }


async def write_configmap_key(
    kube: KubeClient,
    namespace: str,
    name: str,
    key: str,
    text: str | Callable[[str | None], str],
) -> JSON:
    """Stores `text` under `key`, creating the ConfigMap if needed; other keys are kept.

    `text` may be a function of the current value (read-modify-write under conflict
    retry), for updates that depend on what is stored.
    """

    def mutate(configmap: JSON) -> JSON:
        updated: dict[str, Any] = dict(configmap)
        data = dict(updated.get("data") or {})
        data[key] = text(data.get(key)) if callable(text) else text
        updated["data"] = data
        return updated

    outcome = await read_modify_write(
        kube,
        CONFIGMAPS.item(namespace, name),
        changes(mutate),
        create=lambda: new_configmap(name),
        collection_path=CONFIGMAPS.collection(namespace),
    )
    return outcome.stored
