"""Kubernetes Events that Caravan records about what it does (events.k8s.io/v1).

`kubectl describe cjob NAME` and the activity view show them. As Kubernetes' own
recorders do:
- a repeat of the same Event (same object, type, reason, action and note) within
  `series_seconds` is not a new Event: the first one becomes a series and its count and
  last time move (one PATCH);
- a burst of Events about one object is bounded (`burst`, then one more every
  `refill_seconds`); the rest are dropped, so a loop of calls never floods the apiserver.

Recording never fails nor slows its caller: Events are queued and sent one at a time by
a background task, and a failed send is logged and forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from caravan import labels
from caravan.kube.client import EVENTS as EVENTS  # re-exported: where Events live
from caravan.kube.client import JSON, KubeClient
from caravan.kube.errors import KubeError, NotFound
from caravan.tasks import cancel_and_wait

log = logging.getLogger(__name__)

API_CONTROLLER = "caravan.dev/api"
OPERATOR_CONTROLLER = "caravan.dev/operator"
OPERATOR = OPERATOR_CONTROLLER

EventType = Literal["Normal", "Warning"]
MAX_NOTE = NOTE_LIMIT = 1024  # the apiserver refuses longer notes
QUEUE_LIMIT = 1000


def regarding_of(body: Mapping[str, Any]) -> JSON:
    """The object reference of `body` (a Job, a pod, ...) as an Event names it."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion", ""),
        "kind": body.get("kind", ""),
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "uid": meta.get("uid", ""),
    }


def job_regarding(body: Mapping[str, Any]) -> JSON:
    """A Job's reference, whatever copy of it (list items may lack apiVersion and kind)."""
    return regarding_of({**body, "apiVersion": f"{labels.GROUP}/{labels.VERSION}", "kind": "Job"})


def micro_time(epoch: float) -> str:
    """A MicroTime as Kubernetes writes it: RFC 3339 UTC with microseconds."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Series:
    name: str  # the Event's name in the API
    count: int
    first: float
    last: float


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class EventRecorder:
    kube: KubeClient
    namespace: str
    instance: str  # reportingInstance: this replica (its pod name)
    controller: str = OPERATOR_CONTROLLER  # reportingController (or API_CONTROLLER)
    clock: Callable[[], float] = time.time
    series_seconds: float = 360.0  # Kubernetes' own window for a series
    burst: int = 25
    refill_seconds: float = 10.0
    _queue: asyncio.Queue[tuple[JSON, EventType, str, str, str, float]] | None = None
    _worker: asyncio.Task[None] | None = None
    _series: dict[tuple[str, ...], _Series] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    closed: bool = False
    sent: int = 0  # Events created or patched (metrics, tests)
    dropped: int = 0

    def record(
        self,
        regarding: JSON,
        type: EventType,
        reason: str,
        note: str,
        action: str,
    ) -> None:
        """Queues an Event about `regarding` (see regarding_of); returns at once."""
        if self.closed:
            return
        now = self.clock()
        if not self._allowed(str(regarding.get("uid") or regarding.get("name")), now):
            self.dropped += 1
            return
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE_LIMIT)
            self._worker = asyncio.create_task(self._run(), name=f"events-{self.controller}")
        try:
            self._queue.put_nowait((regarding, type, reason, note[:MAX_NOTE], action, now))
        except asyncio.QueueFull:
            self.dropped += 1

    async def post(
        self, regarding: Mapping[str, Any], type: EventType, reason: str, action: str, note: str
    ) -> None:
        """Records an Event about `regarding` (an object's body, or its metadata with its
        apiVersion and kind) and waits until it was sent, or dropped."""
        self.record(regarding_of(regarding), type, reason, note, action)
        await self.flush()

    async def flush(self) -> None:
        """Until every queued Event was sent (or failed)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self, timeout: float = 2.0) -> None:
        """Sends what is queued (bounded by `timeout`), then stops."""
        self.closed = True
        if self._queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
        if self._worker is not None:
            await cancel_and_wait([self._worker])

    # Internals -------------------------------------------------------------------------

    def _allowed(self, key: str, now: float) -> bool:
        if len(self._buckets) > 1000:
            full = self.burst * self.refill_seconds  # a bucket idle this long is full again
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < full}
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(
            float(self.burst), bucket.tokens + (now - bucket.at) / self.refill_seconds
        )
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                await self._send(*item)
            except asyncio.CancelledError:
                raise
            except KubeError as exc:
                log.info("event %s not recorded: %s", item[2], exc.message)
            except Exception as exc:  # an Event must never stop the recorder
                log.warning("event %s not recorded: %r", item[2], exc)
            finally:
                self._queue.task_done()

    async def _send(
        self, regarding: JSON, type: EventType, reason: str, note: str, action: str, at: float
    ) -> None:
        key = (
            str(regarding.get("uid") or ""),
            str(regarding.get("kind")),
            str(regarding.get("name")),
            type,
            reason,
            action,
            note,
        )
        self._forget_old_series(at)
        series = self._series.get(key)
        if series is not None:
            series.count += 1
            series.last = at
            patch = {"series": {"count": series.count, "lastObservedTime": micro_time(at)}}
            try:
                await self.kube.merge_patch(EVENTS.item(self.namespace, series.name), patch)
                self.sent += 1
                return
            except NotFound:
                pass  # deleted meanwhile (its time to live): a new Event then
        name = f"{regarding.get('name')}.{int(at * 1e9):x}"
        body: JSON = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": self.namespace},
            "eventTime": micro_time(at),
            "reportingController": self.controller,
            "reportingInstance": self.instance[:128],
            "action": action,
            "reason": reason,
            "regarding": regarding,
            "note": note,
            "type": type,
        }
        await self.kube.create(EVENTS.collection(self.namespace), body)
        self.sent += 1
        self._series[key] = _Series(name, 1, at, at)

    def _forget_old_series(self, now: float) -> None:
        old = [k for k, s in self._series.items() if now - s.last > self.series_seconds]
        for key in old:
            del self._series[key]
