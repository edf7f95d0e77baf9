"""Fan results messages out to stream consumers (WebSocket / SSE routes).

Each subscriber has a bounded queue. Publishing never blocks and never waits for a slow
consumer: when a queue is full its oldest message is discarded and the next delivery
says how many were lost, so a stuck client cannot make the engine or other clients lag.
Publishing must happen on the event loop thread (asyncio primitives are not thread-safe).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from caravan.events.results import ResultMessage

DEFAULT_QUEUE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class Delivery:
    message: ResultMessage
    dropped: int  # messages discarded for this subscriber just before this one


class Subscription:
    """An async iterator of :class:`Delivery`; ends after :meth:`close`."""

    def __init__(self, hub: SubscriberHub, maxsize: int) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        self._hub = hub
        self.maxsize = maxsize
        self._queue: deque[ResultMessage] = deque()
        self._dropped = 0
        self._total_dropped = 0
        self._wakeup = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def total_dropped(self) -> int:
        return self._total_dropped

    def pending(self) -> int:
        return len(self._queue)

    def _put(self, message: ResultMessage) -> None:
        if len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self._dropped += 1
            self._total_dropped += 1
        self._queue.append(message)
        self._wakeup.set()

    def get_nowait(self) -> Delivery | None:
        if not self._queue:
            return None
        dropped, self._dropped = self._dropped, 0
        return Delivery(self._queue.popleft(), dropped)

    async def get(self) -> Delivery:
        """The next delivery; raises StopAsyncIteration once closed and drained."""
        while True:
            d = self.get_nowait()
            if d is not None:
                return d
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

    def close(self) -> None:
        """Unsubscribe; pending messages can still be read, then iteration stops."""
        if not self._closed:
            self._closed = True
            self._hub._remove(self)
            self._wakeup.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Delivery:
        return await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SubscriberHub:
    def __init__(self, default_maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self.default_maxsize = default_maxsize
        self._subs: list[Subscription] = []

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self, maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, maxsize or self.default_maxsize)
        self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def publish(self, message: ResultMessage) -> None:
        for sub in self._subs:
            sub._put(message)

    def close_all(self) -> None:
        for sub in list(self._subs):
            sub.close()
