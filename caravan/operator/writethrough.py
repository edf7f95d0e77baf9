"""The API's write-through of a count change, as the operator sees it.

Caravan's API writes a count change to the Job, then the new replicas to the group's
Deployment itself (caravan.kube.scaler), both under one field manager. The operator's own
apply of the same replicas at that moment only races that write for the same object (and
the apiserver's two cores), so a pass whose only work is replicas the API is writing
through waits for that write's echo, for at most a grace; the echo then counts as applied.

Pure: reads managedFields as the apiserver returns them (fieldsV1, taskGroups a list map
keyed by name, the scale subresource's write recorded as owning `spec.replicas`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from caravan.kube.scaler import FIELD_MANAGER as WRITE_THROUGH_MANAGER

# How long a pass leaves replicas to the API's write-through before applying them itself
# (the write-through failed, or its replica died): it usually lands in tens of ms.
GRACE_SECONDS = 1.0


def _owned_by_write_through(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = (body.get("metadata") or {}).get("managedFields") or []
    return [
        (entry.get("fieldsV1") or {}).get("f:spec") or {}
        for entry in entries
        if entry.get("manager") == WRITE_THROUGH_MANAGER
    ]


def counts_written_through(job: Mapping[str, Any]) -> frozenset[str]:
    """The task groups whose `count` the API set last (so it writes their replicas)."""
    groups: set[str] = set()
    for spec in _owned_by_write_through(job):
        for key, fields in (spec.get("f:taskGroups") or {}).items():
            if key.startswith("k:") and "f:count" in (fields or {}):
                name = json.loads(key[2:]).get("name")
                if isinstance(name, str):
                    groups.add(name)
    return frozenset(groups)


def replicas_written_through(deployment: Mapping[str, Any]) -> int | None:
    """The Deployment's replicas when the API's write-through owns them, else None."""
    if not any("f:replicas" in spec for spec in _owned_by_write_through(deployment)):
        return None
    replicas = (deployment.get("spec") or {}).get("replicas")
    return replicas if isinstance(replicas, int) else None


def with_replicas(manifest: Mapping[str, Any], replicas: int) -> dict[str, Any]:
    changed = copy.deepcopy(dict(manifest))
    changed.setdefault("spec", {})["replicas"] = replicas
    return changed


def only_replicas_differ(applied: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether two Deployment manifests differ, and in `spec.replicas` alone."""
    if applied == desired:
        return False
    replicas = (desired.get("spec") or {}).get("replicas")
    return isinstance(replicas, int) and with_replicas(applied, replicas) == desired
