"""This replica's partials and watermarks, published in order and retried until stored.

Bounded while NATS is away: beyond `MAX_OUTBOX` the oldest are lost (and counted), so an
outage cannot exhaust memory. A partial carries a de-duplication id, so a retried publish
whose first attempt was stored is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from nats.js import JetStreamContext, api

from caravan.events_nats.stats import ClusterStats
from caravan.events_nats.streams import RETRYABLE
from caravan.retry import Backoff

log = logging.getLogger(__name__)

MAX_OUTBOX = 50_000

Item = tuple[str, bytes, str | None]  # subject, payload, de-duplication id


class Outbox:
    def __init__(self, stats: ClusterStats) -> None:
        self.stats = stats
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._backoff = Backoff(0.05, 2.0)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, subject: str, payload: bytes, msg_id: str | None) -> None:
        if len(self._items) >= MAX_OUTBOX:
            self._items.popleft()
            self.stats.partials_lost += 1
        self._items.append((subject, payload, msg_id))
        self._empty.clear()
        self._ready.set()

    async def run(self, js: JetStreamContext) -> None:
        """Publishes what is queued, oldest first, forever."""
        while True:
            if not self._items:
                self._ready.clear()
                await self._ready.wait()
                continue
            item = self._items[0]
            subject, payload, msg_id = item
            headers: dict[str, Any] | None = {api.Header.MSG_ID: msg_id} if msg_id else None
            try:
                await js.publish(subject, payload, headers=headers)
            except RETRYABLE as exc:
                # Same id on the retry: if the first attempt was stored, JetStream drops
                # the copy, so a partial is stored once.
                self.stats.publish_retries += 1
                delay = self._backoff.next_delay()
                log.debug("events cluster: publish: %s; retrying in %.2fs", exc, delay)
                await self._backoff.sleep(delay)
                continue
            self._backoff.reset()
            if self._items and self._items[0] is item:  # not dropped meanwhile
                self._items.popleft()
            if not self._items:
                self._empty.set()

    async def drain(self, timeout: float) -> None:
        """Waits (bounded) until what is queued was stored."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                if self._items:
                    await self._empty.wait()

    def lose_all(self) -> int:
        """Drops everything (a crash); returns how many partials were lost."""
        lost = sum(1 for _, _, msg_id in self._items if msg_id)
        self._items.clear()
        return lost
