"""Events: the map/reduce documents, the polled results log, ingestion and result streams.

The engine is `caravan.events.EventsService` (pure); this module is its HTTP face and
its lifecycle. Documents live in the `caravan-events` ConfigMap (see
`caravan.events.storage`): a POST stores them first and only then makes them live, so
nothing runs that is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import APIRouter, Depends, Path, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StrictStr

from caravan.api.area import Area
from caravan.api.auth import authorize, check_access
from caravan.api.deps import EventsDep, EventsStorageDep, StateDep, WritesDep
from caravan.api.deps import get_events as running_events
from caravan.api.errors import ApiError
from caravan.api.models import StrictModel, responses
from caravan.api.state import AppState
from caravan.events.service import EventsService, monotonic_ms, wall_ms
from caravan.events.storage import EVENTS_KEY, StoredDocuments, encode
from caravan.events.subscribers import Delivery, Subscription
from caravan.tasks import cancel_and_wait

if TYPE_CHECKING:  # nats-py is imported only when NATS is configured
    from caravan.events.cluster.jetstream import EventsCluster

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/events", tags=["events"])
CAN_GET = [Depends(authorize("get", "configmaps"))]
CAN_UPDATE = [Depends(authorize("update", "configmaps"))]

# How long POST /v1/events waits for this replica to switch to the posted documents.
SWITCH_WAIT_SECONDS = 5.0
# Bounds the memory one request can pin; a game server sends many small batches.
MAX_BATCH_EVENTS = 100_000
# Proxies and load balancers close connections that stay silent for about a minute.
KEEPALIVE_SECONDS = 15.0


# -- bodies ----------------------------------------------------------------------------


class EventsDocuments(StrictModel):
    mapreduce: list[Any] = Field(
        description='Events documents: {"version": "1.7.0", "event": {"<channel>": '
        '{"maps": [...], "reductions": [...]}}}. All are validated together.'
    )


class EventsView(BaseModel):
    errors: str = Field(
        description="Empty when the stored documents are valid and running; otherwise one "
        "`path: message` line per problem."
    )
    mapreduce: list[Any] = Field(description="The documents in force.")


class ValidationDetail(BaseModel):
    path: str = Field(description="Where, e.g. mapreduce[0].event.game.maps[1].where.$gt")
    message: str


class InvalidDocuments(BaseModel):
    error: str
    details: list[ValidationDetail] = Field(description="Every error, not only the first.")


class ResultMessageView(BaseModel):
    error: str = Field(description="Empty unless something was lost in that period.")
    value: str = Field(
        description='JSON text {"channel": ..., "id": "<reduction id>", "results": '
        '[{"key": [...], "value": {"count","sum","min","max","average"}}]}'
    )


class ResultsPageView(BaseModel):
    counter: int = Field(description="The end position: pass it back to get what follows.")
    messages: list[ResultMessageView]


class SendBatch(StrictModel):
    channel: StrictStr = Field(min_length=1, description="The channel of every event.")
    events: list[Any] = Field(
        max_length=MAX_BATCH_EVENTS,
        description='Viewer events {"key": [...], "value": ...}. Malformed ones are '
        "counted as rejected with a reason; they do not fail the batch.",
    )


class RejectionView(BaseModel):
    index: int = Field(description="Position of the event in the batch.")
    reason: str


class SendResult(BaseModel):
    channel: str
    knownChannel: bool = Field(description="Whether any document defines this channel.")
    accepted: int = Field(description="Events that matched at least one map.")
    unmatched: int = Field(description="Well-formed events that matched no map.")
    rejected: int = Field(description="Malformed events.")
    droppedKeys: int = Field(
        description="Reduction inputs discarded because their reduction already held its "
        "maximum of distinct keys this period."
    )
    rejections: list[RejectionView] = Field(description="Reasons for the first 100 rejected.")


# -- helpers -----------------------------------------------------------------------------


def _view(service: EventsService) -> dict[str, Any]:
    return {"errors": service.errors, "mapreduce": service.documents}


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


# -- documents -------------------------------------------------------------------------


@router.get(
    "",
    dependencies=CAN_GET,
    response_model=EventsView,
    responses=responses(),
    summary="The events documents in force, and the errors of the stored ones",
)
async def get_events(service: EventsDep) -> dict[str, Any]:
    return _view(service)


@router.post(
    "",
    dependencies=CAN_UPDATE,
    response_model=EventsView,
    responses={
        **responses(),
        422: {"model": InvalidDocuments, "description": "Invalid documents; nothing stored"},
    },
    summary="Replace the events documents: validated, stored, then live",
)
async def post_events(
    body: EventsDocuments,
    service: EventsDep,
    stored: EventsStorageDep,
    state: StateDep,
    writes: WritesDep,
) -> dict[str, Any]:
    # One writer at a time, so the ConfigMap and the running program end in the same order.
    async with stored.write_lock:
        errors = service.validate(body.mapreduce)
        if errors:
            raise ApiError(
                422,
                f"the events documents are invalid ({len(errors)} error(s)); nothing was stored",
                [e.to_dict() for e in errors],
            )
        # Store first: if the write fails, the old program keeps running and matches storage.
        await writes.configmap_key(
            state.config.configmaps.events, EVENTS_KEY, encode(body.mapreduce)
        )
        cluster = state.events_cluster
        if cluster is None:
            service.replace(body.mapreduce)
        else:
            await _switch_cluster(cluster, body.mapreduce)
        stored.loaded = True
    return _view(service)


async def _switch_cluster(cluster: EventsCluster, documents: list[Any]) -> None:
    """Every replica switches at the documents stream's message; answer once this one has."""
    try:
        async with asyncio.timeout(SWITCH_WAIT_SECONDS):
            seq = await cluster.publish_documents(documents)
    except (TimeoutError, RuntimeError):
        # Stored, so the ConfigMap watch publishes them once NATS answers again.
        raise ApiError(
            503, "the documents are stored but NATS did not take them yet; they apply when it does"
        ) from None
    await cluster.wait_applied(seq, SWITCH_WAIT_SECONDS)


# -- results -----------------------------------------------------------------------------


@router.get(
    "/results/{counter}",
    dependencies=CAN_GET,
    response_model=ResultsPageView,
    responses=responses(),
    summary="Results messages after position `counter`; starts collection on first read",
)
async def get_results(
    state: StateDep,
    service: EventsDep,
    counter: Annotated[int, Path(ge=0, description="The `counter` of the previous answer")],
) -> dict[str, Any]:
    # The settings area may change the idle timeout at any time; apply it on each read.
    timeout = state.runtime_settings.events_results_idle_timeout_seconds
    cluster = state.events_cluster
    if cluster is not None:
        page = await cluster.read_results(counter, _ms(timeout))
        return dict(page.to_wire())
    service.results_log.idle_timeout_ms = _ms(timeout)
    return service.results(counter).to_wire()


# -- ingestion -----------------------------------------------------------------------------


@router.post(
    "/send",
    dependencies=CAN_UPDATE,
    response_model=SendResult,
    responses=responses(),
    summary="Send a batch of viewer events to a channel",
)
async def send_events(body: SendBatch, service: EventsDep) -> dict[str, Any]:
    result = await service.send(body.channel, body.events)
    return result.to_dict()


# -- streams -----------------------------------------------------------------------------


def _frame(delivery: Delivery) -> bytes:
    text = b""
    if delivery.dropped:
        gap = json.dumps({"dropped": delivery.dropped})
        text += f"event: dropped\ndata: {gap}\n\n".encode()
    wire = json.dumps(delivery.message.to_wire(), ensure_ascii=False)
    return text + f"data: {wire}\n\n".encode()


async def _next(subscription: Subscription, timeout: float) -> Delivery | None:
    """The next delivery; None on timeout. Raises StopAsyncIteration once closed."""
    # asyncio.timeout, not wait_for, which on 3.11 can swallow a cancellation.
    try:
        async with asyncio.timeout(timeout):
            return await subscription.get()
    except TimeoutError:
        return None


async def _sse(service: EventsService) -> AsyncGenerator[bytes, None]:
    # Subscribe inside the generator so the subscription is closed whatever ends the stream.
    with service.subscribe() as subscription:
        yield b": subscribed\n\n"  # the client knows it receives everything from now on
        while True:
            try:
                delivery = await _next(subscription, KEEPALIVE_SECONDS)
            except StopAsyncIteration:
                return  # the service stopped
            yield b": keepalive\n\n" if delivery is None else _frame(delivery)


@router.get(
    "/stream",
    dependencies=CAN_GET,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Server-sent events: one `data:` line per results message "
            '({"error", "value"} as in /v1/events/results); `event: dropped` with '
            '{"dropped": N} when N messages were lost because the client was too slow; '
            "a `: keepalive` comment every 15 s.",
        },
        **responses(),
    },
    response_class=StreamingResponse,
    summary="Stream every results message as it is produced (SSE)",
)
async def stream_results(service: EventsDep) -> StreamingResponse:
    return StreamingResponse(
        _sse(service),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it leaves."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # text or binary alike


async def _forward(websocket: WebSocket, subscription: Subscription) -> None:
    async for delivery in subscription:
        frame = {**delivery.message.to_wire(), "dropped": delivery.dropped}
        await websocket.send_text(json.dumps(frame, ensure_ascii=False))


@router.websocket("/ws")
async def websocket_results(websocket: WebSocket) -> None:
    """Every results message as a JSON text frame `{"error", "value", "dropped"}`."""
    try:
        # check_access reads headers and app state only, which a WebSocket has too.
        await check_access(cast(Request, websocket), "get", "configmaps")
        service = running_events(websocket.app.state.caravan)
    except ApiError as exc:
        await websocket.close(code=1008, reason=exc.message[:120])
        return
    await websocket.accept()
    with service.subscribe() as subscription:
        tasks = [
            asyncio.create_task(_drain(websocket)),
            asyncio.create_task(_forward(websocket, subscription)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(tasks)
    with contextlib.suppress(Exception):
        await websocket.close(code=1001)  # the service stopped (or the client left)


# -- lifecycle ---------------------------------------------------------------------------


def _start_cluster(state: AppState) -> EventsCluster:
    """The JetStream side (imported only when configured: nats-py is an extra)."""
    from caravan.events.cluster.jetstream import EventsCluster
    from caravan.events.cluster.streams import Names

    nats = state.config.nats
    assert nats is not None
    names = Names.of(state.config.namespace, state.config.configmaps.events, nats.stream_prefix)
    return EventsCluster(
        nats,
        names,
        state.config.identity,
        results_max_messages=state.runtime_settings.events_max_results_messages,
    )


async def start(state: AppState) -> None:
    settings = state.runtime_settings
    cluster = _start_cluster(state) if state.config.nats is not None else None
    service = EventsService(
        # Several replicas align their periods on the wall clock (one per machine).
        clock=monotonic_ms if cluster is None else wall_ms,
        max_keys_per_period=settings.events_max_keys_per_reduction,
        results_idle_timeout_ms=_ms(settings.events_results_idle_timeout_seconds),
        results_max_messages=settings.events_max_results_messages,
        partials=cluster,
    )
    name = state.config.configmaps.events
    stored = StoredDocuments(service, name)
    if cluster is not None:
        cluster.attach(service)
        stored.publish = lambda documents: _publish_soon(cluster, documents)
        state.events_cluster = cluster
        state.leadership_listeners.append(cluster.set_leading)
        cluster.set_leading(state.leading)
        cluster.start()
    # The informers may not have synced yet: the listener applies the ConfigMap whenever
    # it arrives, and every later edit (kubectl included).
    if name in state.store.configmaps:
        stored.apply(state.store.configmaps[name])
    state.store.on_configmap(stored.on_change)
    state.events = service
    state.events_storage = stored
    state.runtime_listeners.append(
        lambda runtime: service.set_limits(
            max_keys_per_period=runtime.events_max_keys_per_reduction,
            max_messages=runtime.events_max_results_messages,
        )
    )
    if cluster is not None:
        state.runtime_listeners.append(
            lambda runtime: cluster.set_max_messages(runtime.events_max_results_messages)
        )
    service.start()


_publishing: set[asyncio.Task[Any]] = set()


def _publish_soon(cluster: EventsCluster, documents: list[Any]) -> None:
    """From the ConfigMap watch (synchronous): publish in the background, logged."""

    async def publish() -> None:
        try:
            await cluster.publish_documents(documents)
        except Exception:
            log.exception("could not publish the events documents to NATS")

    task = asyncio.get_running_loop().create_task(publish())
    _publishing.add(task)  # keep a reference until it is done
    task.add_done_callback(_publishing.discard)


async def stop(state: AppState) -> None:
    if state.events is not None:
        await state.events.stop()  # flushes the open windows (to NATS, with a cluster)
    if state.events_cluster is not None:
        await state.events_cluster.stop()


area = Area("events", router, on_start=start, on_stop=stop)
