"""Events: the map/reduce documents, the polled results log, ingestion and result streams.

The HTTP face of caravan.services.events (embedded engine or replicas on NATS alike);
the SSE and WebSocket wire formats are in caravan.api.results_feed. Access is checked as the
equivalent action on the events ConfigMap.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Path, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StrictStr

from caravan.api import results_feed, streams
from caravan.api.area import Area
from caravan.api.auth import check_access
from caravan.api.deps import EventsDep, WritesDep, configmap_access, services_of
from caravan.api.errors import ApiError
from caravan.api.models import StrictModel, responses

router = APIRouter(prefix="/v1/events", tags=["events"])
CAN_GET = [Depends(configmap_access("get", lambda names: names.events))]
CAN_UPDATE = [Depends(configmap_access("update", lambda names: names.events))]

# Bounds the memory one request can pin; a game server sends many small batches.
MAX_BATCH_EVENTS = 100_000


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


# -- documents -------------------------------------------------------------------------


@router.get(
    "",
    dependencies=CAN_GET,
    response_model=EventsView,
    responses=responses(),
    summary="The events documents in force, and the errors of the stored ones",
)
async def get_events(events: EventsDep) -> dict[str, Any]:
    return events.view()


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
    body: EventsDocuments, events: EventsDep, writes: WritesDep
) -> dict[str, Any]:
    await events.replace(writes, body.mapreduce)
    return events.view()


# -- results -----------------------------------------------------------------------------


@router.get(
    "/results/{counter}",
    dependencies=CAN_GET,
    response_model=ResultsPageView,
    responses=responses(),
    summary="Results messages after position `counter`; starts collection on first read",
)
async def get_results(
    events: EventsDep,
    counter: Annotated[int, Path(ge=0, description="The `counter` of the previous answer")],
) -> dict[str, Any]:
    return await events.results(counter)


# -- ingestion -----------------------------------------------------------------------------


@router.post(
    "/send",
    dependencies=CAN_UPDATE,
    response_model=SendResult,
    responses=responses(),
    summary="Send a batch of viewer events to a channel",
)
async def send_events(body: SendBatch, events: EventsDep) -> dict[str, Any]:
    result = await events.send(body.channel, body.events)
    return result.to_dict()


# -- streams -----------------------------------------------------------------------------


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
        **responses(429),
    },
    response_class=StreamingResponse,
    summary="Stream every results message as it is produced (SSE)",
)
async def stream_results(request: Request, events: EventsDep) -> StreamingResponse:
    # Ends when the caller may no longer read the events (api/streams.py).
    name = request.app.state.caravan.config.configmaps.events
    return StreamingResponse(
        streams.stream(request, results_feed.sse(events), "get", "configmaps", name=name),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/ws")
async def websocket_results(websocket: WebSocket) -> None:
    """Every results message as a JSON text frame `{"error", "value", "dropped"}`."""
    try:
        # check_access reads headers and app state only, which a WebSocket has too.
        state = websocket.app.state.caravan
        name = state.config.configmaps.events
        await check_access(cast(Request, websocket), "get", "configmaps", name=name)
        events = services_of(state).events
    except ApiError as exc:
        await websocket.close(code=1008, reason=exc.message[:120])
        return
    try:
        # Closed (1008) when the caller may no longer read the events (api/streams.py).
        async with streams.websocket_access(websocket, "get", "configmaps", name=name):
            await results_feed.websocket_results(websocket, events)
    except ApiError as exc:  # too many streams open already
        await websocket.close(code=1008, reason=exc.message[:120])


area = Area("events", router)
