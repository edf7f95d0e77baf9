"""Results messages pushed to HTTP clients: server-sent events and WebSocket frames.

The subscription comes from the events service; this module only speaks the two wire
formats and notices when a client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Protocol

from fastapi import WebSocket

from caravan.events.subscribers import Delivery, Subscription
from caravan.tasks import cancel_and_wait


class Results(Protocol):
    """What streams results messages (the events service, or its engine)."""

    def subscribe(self) -> Subscription: ...


# Proxies and load balancers close connections that stay silent for about a minute.
KEEPALIVE_SECONDS = 15.0


def sse_frame(delivery: Delivery) -> bytes:
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


async def sse(events: Results) -> AsyncGenerator[bytes, None]:
    """The SSE body: every results message from now on, a keepalive when silent."""
    # Subscribe inside the generator so the subscription is closed whatever ends the stream.
    with events.subscribe() as subscription:
        yield b": subscribed\n\n"  # the client knows it receives everything from now on
        while True:
            try:
                delivery = await _next(subscription, KEEPALIVE_SECONDS)
            except StopAsyncIteration:
                return  # the service stopped
            yield b": keepalive\n\n" if delivery is None else sse_frame(delivery)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it leaves."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # text or binary alike


async def _forward(websocket: WebSocket, subscription: Subscription) -> None:
    async for delivery in subscription:
        frame = {**delivery.message.to_wire(), "dropped": delivery.dropped}
        await websocket.send_text(json.dumps(frame, ensure_ascii=False))


async def websocket_results(websocket: WebSocket, events: Results) -> None:
    """Accepts the socket and sends every results message as a JSON text frame
    `{"error", "value", "dropped"}` until the client leaves or the service stops."""
    await websocket.accept()
    with events.subscribe() as subscription:
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
