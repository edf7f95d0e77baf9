"""Prometheus metrics of both halves: request latency, waiters, reconciles, watches, writes.

Defined here, outside `caravan.api`, so the operator counts its reconciles without
importing the API half; `caravan.api.metrics` serves them on /metrics.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

REQUEST_SECONDS = Histogram(
    "caravan_http_request_seconds", "HTTP request latency", ["method", "route", "status"]
)
LONG_POLL_WAITERS = Gauge("caravan_long_poll_waiters", "Requests blocked on a waitIndex")
RECONCILES = Counter("caravan_reconciles_total", "Job reconciliations", ["result"])
WATCH_EVENTS = Gauge("caravan_watch_events", "Watch events received since start", ["kind"])
WATCH_SILENCE = Gauge(
    "caravan_watch_seconds_since_event",
    "Seconds since a watch last delivered an event or bookmark (a stalled watch grows)",
    ["kind"],
)
WATCH_SYNCED = Gauge("caravan_watch_synced", "1 once the watch listed its objects", ["kind"])
EVENTS = Gauge("caravan_events", "Events engine totals since start", ["what"])
WRITE_VISIBLE_SECONDS = Histogram(
    "caravan_write_visible_seconds",
    "How long a write waited for this replica's store to show it (read your writes)",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WRITE_VISIBLE_TIMEOUTS = Counter(
    "caravan_write_visible_timeouts_total",
    "Writes answered before this replica's store showed them (the wait timed out)",
    ["kind"],
)
WRITE_WAITERS = Gauge("caravan_write_waiters", "Writes waiting for the store to show them")
# With NATS configured (several replicas): this replica's side of the events cluster.
EVENTS_CLUSTER = Gauge(
    "caravan_events_cluster",
    "Events cluster totals of this replica (partials published, finals, late partials...)",
    ["what"],
)
EVENTS_PARTIALS_MERGED = Gauge(
    "caravan_events_partials_merged",
    "Partials merged per replica, counted by the merger (only the merger reports)",
    ["replica"],
)
EVENTS_MERGE_LAG = Gauge(
    "caravan_events_merge_lag_ms",
    "From a period's end to its final message on the results stream, over recent periods",
    ["quantile"],
)


class GarbageCollections:
    """How long the garbage collector held the process, per generation: a full collection
    scans every tracked object with the GIL held, so its pauses are every request's and
    every watch's. The callback only adds numbers (no lock: it runs wherever a collection
    starts, possibly inside a metric's own lock); a scrape reads them."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation, took = info["generation"], time.perf_counter() - self._started
        self.count[generation] += 1
        self.seconds[generation] += took
        self.longest[generation] = max(self.longest[generation], took)

    def collect(self) -> Iterator[Metric]:
        count = CounterMetricFamily(
            "caravan_gc_pauses", "Garbage collections, by generation", labels=["generation"]
        )
        seconds = CounterMetricFamily(
            "caravan_gc_pause_seconds",
            "Time the garbage collector held the process, by generation",
            labels=["generation"],
        )
        longest = GaugeMetricFamily(
            "caravan_gc_pause_max_seconds",
            "The longest garbage collection since start, by generation",
            labels=["generation"],
        )
        for generation in range(3):
            label = [str(generation)]
            count.add_metric(label, self.count[generation])
            seconds.add_metric(label, self.seconds[generation])
            longest.add_metric(label, self.longest[generation])
        yield from (count, seconds, longest)


def time_garbage_collections() -> None:
    """Times the process's garbage collections into /metrics (once, at the process entry)."""
    collections = GarbageCollections()
    gc.callbacks.append(collections)
    REGISTRY.register(collections)
