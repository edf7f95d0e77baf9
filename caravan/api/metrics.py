"""Prometheus metrics: request latency by route, waiters, reconciles, watch lag."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class RequestTiming:
    """Latency per route and status, as plain ASGI: Starlette's `@app.middleware("http")`
    wraps every request in extra tasks and streams, which 1,000 woken long polls feel."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")  # set by the router
            REQUEST_SECONDS.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - started
            )


def vars_of(stats: object) -> dict[str, float]:
    """The numeric fields of a stats dataclass (booleans as 0/1)."""
    out: dict[str, float] = {}
    for name in getattr(stats, "__slots__", ()):
        value = getattr(stats, name)
        if isinstance(value, bool | int | float):
            out[name] = float(value)
    return out


def install(app: FastAPI) -> None:
    app.add_middleware(RequestTiming)

    @app.get("/metrics", include_in_schema=False)
    async def _metrics(request: Request) -> Response:
        state = request.app.state.caravan
        LONG_POLL_WAITERS.set(state.store.jobs_waiters.waiting)
        now = time.monotonic()
        for informer in state.informers:
            WATCH_EVENTS.labels(informer.kind).set(informer.events_seen)
            WATCH_SILENCE.labels(informer.kind).set(now - informer.last_seen)
            WATCH_SYNCED.labels(informer.kind).set(1 if informer.synced.is_set() else 0)
        events = state.services.get("events")
        if events is not None:
            for what, value in events.stats().to_dict().items():
                EVENTS.labels(what).set(float(value))
        cluster = state.services.get("events-cluster")
        if cluster is not None:
            stats = cluster.stats
            for what, value in vars_of(stats).items():
                EVENTS_CLUSTER.labels(what).set(float(value))
            for replica, count in stats.merged_by_replica.items():
                EVENTS_PARTIALS_MERGED.labels(replica).set(count)
            for quantile, lag in cluster.merge_lag_percentiles().items():
                EVENTS_MERGE_LAG.labels(quantile).set(lag)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
