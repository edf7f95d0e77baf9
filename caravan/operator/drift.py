"""Who changed a Deployment's spec, when it was not Caravan (drift).

Pure: reads the managedFields of a Deployment as the API server returns it. Caravan's own
writers are the operator's apply and the API's write-through of replicas; the controllers
of Kubernetes only write the status and metadata. Anyone else owning a field of the spec
(kubectl scale, kubectl edit, kubectl rollout restart, ...) changed what the Job decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from caravan import labels
from caravan.kube.scaler import FIELD_MANAGER as WRITE_THROUGH_MANAGER

OURS = frozenset({labels.FIELD_MANAGER, WRITE_THROUGH_MANAGER})


def foreign_spec_manager(body: Mapping[str, Any]) -> str | None:
    """The first field manager other than Caravan that owns part of the spec, or None."""
    for entry in (body.get("metadata") or {}).get("managedFields") or []:
        manager = str(entry.get("manager") or "")
        if manager in OURS or entry.get("subresource") == "status":
            continue
        if "f:spec" in (entry.get("fieldsV1") or {}):
            return manager or "someone"
    return None
