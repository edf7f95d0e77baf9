"""Kubernetes Events (events.k8s.io/v1) about the objects Caravan handles, as `kubectl
describe` and `kubectl events` show them."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from caravan.kube.client import JSON, KubeClient, ResourcePath
from caravan.kube.errors import KubeError

log = logging.getLogger(__name__)

EVENTS = ResourcePath("events.k8s.io", "v1", "events")
OPERATOR = "caravan.dev/operator"
NOTE_LIMIT = 1024  # the API refuses a longer note


class EventRecorder:
    """Posts Events on behalf of one controller; a failure to post is logged, never raised
    (an Event is a courtesy, the object's own status carries the truth)."""

    def __init__(
        self, kube: KubeClient, namespace: str, instance: str, controller: str = OPERATOR
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.instance = instance
        self.controller = controller

    async def post(
        self, regarding: JSON, kind: str, reason: str, action: str, note: str
    ) -> JSON | None:
        """`kind` is "Normal" or "Warning"; `regarding` the object's body (or metadata +
        apiVersion + kind)."""
        meta = regarding.get("metadata") or {}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            # Named as Kubernetes' own recorders name theirs: the object's name and the time.
            "metadata": {
                "name": f"{meta.get('name', 'caravan')}.{time.time_ns():x}",
                "namespace": self.namespace,
            },
            "eventTime": now,
            "reportingController": self.controller,
            "reportingInstance": self.instance[:128],
            "action": action,
            "reason": reason,
            "type": kind,
            "note": note[:NOTE_LIMIT],
            "regarding": {
                "apiVersion": regarding.get("apiVersion", ""),
                "kind": regarding.get("kind", ""),
                "name": meta.get("name", ""),
                "namespace": meta.get("namespace", self.namespace),
                "uid": meta.get("uid", ""),
            },
        }
        try:
            return await self.kube.create(EVENTS.collection(self.namespace), body)
        except KubeError as exc:
            log.warning("could not post the %s event %s: %s", kind, reason, exc.message)
            return None
