"""The results stream, read by every replica into its `SharedResultsLog` and its stream
subscribers, so every replica serves the same messages with the same counters. A read of
the log publishes a read marker there (throttled), which starts or keeps the log
collecting on every replica at the same place in the stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from nats.aio.msg import Msg

from caravan.events.results import ResultsPage
from caravan.events.service import EventsService
from caravan.events_nats import codec
from caravan.events_nats.connection import Connection
from caravan.events_nats.merge import MergeBook
from caravan.events_nats.shared_log import SharedResultsLog
from caravan.events_nats.stats import ClusterStats
from caravan.events_nats.streams import RETRYABLE, seq_of, stamp_ms
from caravan.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# A read waits at most this long for its read marker to come back through the stream.
MARKER_WAIT_S = 2.0
# Merge lags kept for the benchmark's percentiles.
LAG_SAMPLES = 10_000


class ResultsFollower:
    def __init__(
        self,
        connection: Connection,
        shared_log: SharedResultsLog,
        book: MergeBook,
        stats: ClusterStats,
        clock: Callable[[], int],
    ) -> None:
        self.connection = connection
        self.names = connection.names
        self.log = shared_log
        self.book = book
        self.stats = stats
        self.clock = clock
        self.service: EventsService | None = None
        self.lags: deque[int] = deque(maxlen=LAG_SAMPLES)
        self._seq = 0  # last results-stream sequence applied to the log
        self._advanced = asyncio.Condition()
        self.live_from = 0  # results before this sequence are history: not re-streamed
        self._last_marker_ms = -(10**12)
        self._trailing_marker: asyncio.Task[None] | None = None

    async def note_history(self) -> None:
        """Where live results start: what the stream holds already is not re-streamed."""
        try:
            info = await self.connection.js.stream_info(self.names.results_stream)
            self.live_from = int(info.state.last_seq) + 1
        except RETRYABLE:
            self.live_from = 0

    async def run(self) -> None:
        cursor = self.connection.cursor(
            self.names.results_stream, [self.names.results, self.names.reads]
        )
        try:
            while True:
                for msg in await cursor.next_batch():
                    self._apply(msg)
                    self._seq = seq_of(msg)
                async with self._advanced:
                    self._advanced.notify_all()
        finally:
            await cursor.close()

    async def stop(self) -> None:
        await cancel_and_wait([self._trailing_marker])
        self._trailing_marker = None

    def _apply(self, msg: Msg) -> None:
        stamp = stamp_ms(msg)
        if msg.subject == self.names.reads:
            try:
                self.log.on_marker(stamp, codec.decode_read_marker(msg.data))
            except codec.CodecError as exc:
                log.warning("events cluster: read marker %d: %s", seq_of(msg), exc)
            return
        try:
            final = codec.decode_final(msg.data)
        except codec.CodecError as exc:
            log.warning("events cluster: results message %d: %s", seq_of(msg), exc)
            return
        self.book.mark_done(final.period, stamp)
        self.log.on_final(final.message, stamp)
        self.stats.finals_received += 1
        if seq_of(msg) >= self.live_from and self.service is not None:
            lag = stamp - final.nominal_end_ms
            self.lags.append(lag)
            self.stats.last_merge_lag_ms = lag
            self.service.deliver(final.message)

    async def read(self, counter: int, idle_timeout_ms: int) -> ResultsPage:
        """``GET /v1/events/results/{counter}`` on any replica."""
        now = self.clock()
        if not self.connection.ready.is_set():
            return self.log.read(counter)
        if not self.log.collecting_at(now) or idle_timeout_ms != self.log.idle_timeout_ms:
            # The log starts (again) at 0 on every replica at this marker's place in the
            # stream; wait for it so this answer already follows it.
            seq = await self._publish_marker(idle_timeout_ms)
            if seq:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(MARKER_WAIT_S), self._advanced:
                        await self._advanced.wait_for(lambda: self._seq >= seq)
        else:
            self._refresh_soon(idle_timeout_ms)
        return self.log.read(counter)

    def _refresh_soon(self, idle_timeout_ms: int) -> None:
        """Refreshes the idle timer at most every idle/10, never forgetting the last read:
        a read that comes too soon after a marker schedules one for later."""
        if self._trailing_marker is not None and not self._trailing_marker.done():
            return
        throttle = max(idle_timeout_ms // 10, 50)
        delay = max(self._last_marker_ms + throttle - self.clock(), 0) / 1000

        async def later() -> None:
            await asyncio.sleep(delay)
            await self._publish_marker(idle_timeout_ms)

        self._trailing_marker = asyncio.create_task(later(), name="caravan-events-read-marker")

    async def _publish_marker(self, idle_timeout_ms: int) -> int:
        self._last_marker_ms = self.clock()
        try:
            marker = codec.encode_read_marker(idle_timeout_ms)
            ack = await self.connection.js.publish(self.names.reads, marker)
        except RETRYABLE as exc:
            log.info("events cluster: read marker: %s", exc)
            return 0
        return int(ack.seq)

    def merge_lag_percentiles(self) -> dict[str, float]:
        if not self.lags:
            return {}
        ordered = sorted(self.lags)

        def pct(p: float) -> float:
            return float(ordered[min(len(ordered) - 1, int(p * len(ordered)))])

        return {"p50": pct(0.5), "p99": pct(0.99), "max": float(ordered[-1])}
