"""A job's activity: the Kubernetes Events about it, its Deployments, their ReplicaSets
and its pods, as small records and as the activity view.

Pure: reads Events (events.k8s.io/v1) as the API server returns them. An Event is tied to
its job by the object it regards: the Job itself, or a Deployment of a task group
(`<job>-<group>`), one of its ReplicaSets (`<deployment>-<hash>`) or one of their pods
(`<replicaset>-<suffix>`), which Kubernetes names after their owner.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from caravan import labels
from caravan.jobs.shapes import ActivityItem
from caravan.jobs.times import rfc3339_utc

# Notes longer than this are cut (Kubernetes allows 1 kB; the store keeps thousands).
MAX_NOTE = 400

Owner = tuple[str, str]  # ("job", job name) or ("deploy", Deployment name)


@dataclass(frozen=True, slots=True)
class EventRecord:
    when: float  # epoch seconds of the last occurrence
    time: str  # the same, RFC 3339 UTC
    type: str
    reason: str
    note: str
    kind: str  # of the regarded object: Job, Deployment, ReplicaSet or Pod
    name: str  # of the regarded object
    count: int
    owner: Owner
    # The Event's resourceVersion as a number (0 when it is not one): within one second,
    # the order the apiserver stored the Events in.
    stored: int = 0


def owner_key(kind: str, api_version: str, name: str) -> Owner | None:
    """Which job-related object an Event regards, or None when none."""
    if kind == "Job" and api_version.startswith(f"{labels.GROUP}/"):
        return ("job", name)
    if kind == "Deployment":
        return ("deploy", name)
    if kind == "ReplicaSet" and "-" in name:
        return ("deploy", name.rsplit("-", 1)[0])
    if kind == "Pod" and name.count("-") >= 2:
        return ("deploy", name.rsplit("-", 2)[0])
    return None


def _epoch(text: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def event_record(event: Mapping[str, Any]) -> EventRecord | None:
    """The record of an events.k8s.io/v1 Event, or None when it concerns no job."""
    regarding = event.get("regarding") or {}
    kind, name = str(regarding.get("kind", "")), str(regarding.get("name", ""))
    owner = owner_key(kind, str(regarding.get("apiVersion", "")), name)
    if owner is None:
        return None
    series = event.get("series") or {}
    # The last occurrence: a series' last observation, else the legacy last timestamp
    # (Events recorded through the core API), else when it was first seen.
    last = str(
        series.get("lastObservedTime")
        or event.get("deprecatedLastTimestamp")
        or event.get("eventTime")
        or event.get("deprecatedFirstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )
    when = _epoch(last)
    if when is None:
        return None
    count = int(series.get("count") or event.get("deprecatedCount") or 1)
    note = " ".join(str(event.get("note") or "").split())
    return EventRecord(
        when=when,
        time=rfc3339_utc(last),
        type=sys.intern(str(event.get("type") or "Normal")),
        reason=sys.intern(str(event.get("reason") or "")),
        note=note if len(note) <= MAX_NOTE else note[: MAX_NOTE - 1] + "…",
        kind=sys.intern(kind),
        name=name,
        count=max(count, 1),
        owner=(owner[0], sys.intern(owner[1])),
        stored=_stored_order(event),
    )


def _stored_order(event: Mapping[str, Any]) -> int:
    version = str((event.get("metadata") or {}).get("resourceVersion") or "")
    return int(version) if version.isdigit() else 0


def _order(record: EventRecord) -> tuple[int, int]:
    """Oldest first. The kubelet's Events carry whole seconds, the scheduler's and ours
    microseconds: within one second the storage order decides, so a pod's Scheduled comes
    before its Started whatever each timestamp's precision."""
    return (int(record.when), record.stored)


def object_label(record: EventRecord, deployments: Mapping[str, str]) -> str:
    """ "job", "group/<group>" or "alloc/<allocID>"."""
    if record.owner[0] == "job":
        return "job"
    if record.kind == "Pod":
        return f"alloc/{record.name}"
    return f"group/{deployments.get(record.owner[1], record.owner[1])}"


def activity_items(
    records: Iterable[EventRecord], deployments: Mapping[str, str]
) -> list[ActivityItem]:
    """Oldest first (by last occurrence); `deployments` maps Deployment names to groups."""
    ordered = sorted(records, key=_order)
    return [
        {
            "time": r.time,
            "type": "Warning" if r.type == "Warning" else "Normal",
            "reason": r.reason,
            "message": r.note,
            "object": object_label(r, deployments),
            "count": r.count,
        }
        for r in ordered
    ]
