"""/metrics, and request latency by route (the metrics themselves: `caravan.metrics`)."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caravan.api.auth import check_path
from caravan.api.state import AppState
from caravan.metrics import (
    EVENTS,
    EVENTS_CLUSTER,
    EVENTS_MERGE_LAG,
    EVENTS_PARTIALS_MERGED,
    LONG_POLL_WAITERS,
    REQUEST_SECONDS,
    WATCH_EVENTS,
    WATCH_SILENCE,
    WATCH_SYNCED,
    WRITE_WAITERS,
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
        # Metrics name jobs, replicas and rates: a token allowed `get` on the URL /metrics.
        await check_path(request, "get", "/metrics")
        state: AppState = request.app.state.caravan
        LONG_POLL_WAITERS.set(state.store.jobs_waiters.waiting)
        WRITE_WAITERS.set(state.store.versions.waiting)
        now = time.monotonic()
        for informer in state.informers:
            WATCH_EVENTS.labels(informer.kind).set(informer.events_seen)
            WATCH_SILENCE.labels(informer.kind).set(now - informer.last_seen)
            WATCH_SYNCED.labels(informer.kind).set(1 if informer.synced.is_set() else 0)
        events = state.events
        if events is not None:
            for what, value in events.stats().to_dict().items():
                EVENTS.labels(what).set(float(value))
        cluster = state.events_cluster
        if cluster is not None:
            stats = cluster.stats
            for what, value in vars_of(stats).items():
                EVENTS_CLUSTER.labels(what).set(float(value))
            for replica, count in stats.merged_by_replica.items():
                EVENTS_PARTIALS_MERGED.labels(replica).set(count)
            for quantile, lag in cluster.merge_lag_percentiles().items():
                EVENTS_MERGE_LAG.labels(quantile).set(lag)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
