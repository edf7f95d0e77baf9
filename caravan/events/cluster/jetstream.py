"""The events cluster on JetStream: what one replica does beside its engine.

Every replica:
- publishes its closed windows (:class:`~caravan.events.partial.Partial`) and a
  watermark per tick to the partials stream, in order, retrying until stored;
- reads the documents stream and switches programs at each message, in stream order: the
  message's sequence is the program's *epoch*, carried by every partial, so that a period
  never mixes two programs;
- reads the results stream into its :class:`SharedResultsLog` and its stream
  subscribers, so every replica serves the same messages with the same counters.

The replica that leads (the Lease holder) also runs the merger: it reads the partials
stream, merges each period once (:class:`MergeBook`) and publishes the final with a
de-duplication id, so a period re-merged by a new merger after a failover is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from caravan.config import NatsConfig
from caravan.events.cluster import codec
from caravan.events.cluster.codec import Final, PartialReport, Watermark
from caravan.events.cluster.merge import DEFAULT_LIVENESS_MS, Added, MergeBook
from caravan.events.cluster.shared_log import SharedResultsLog
from caravan.events.cluster.streams import (
    RETRYABLE,
    Cursor,
    Names,
    connect,
    ensure_streams,
    seq_of,
    stamp_ms,
)
from caravan.events.errors import format_errors
from caravan.events.partial import Partial
from caravan.events.results import DEFAULT_MAX_MESSAGES, ResultsPage
from caravan.events.service import EventsService, wall_ms
from caravan.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Keys per partials message: 5,000 keys of the sample documents are about 200 KB, well
# under NATS's default 1 MB message limit.
MAX_ENTRIES_PER_MESSAGE = 5_000
# What a replica holds while NATS is away; beyond it the oldest partials are lost (and
# counted), so an outage cannot exhaust memory.
MAX_OUTBOX = 50_000
# A read waits at most this long for its read marker to come back through the stream.
MARKER_WAIT_S = 2.0
MERGER_WAIT_S = 0.1
# Merge lags kept for the benchmark's percentiles.
LAG_SAMPLES = 10_000


@dataclass(slots=True)
class ClusterStats:
    """This replica's side of the cluster (the events section of /metrics)."""

    connected: bool = False
    epoch: int = 0
    partials_published: int = 0
    partials_lost: int = 0  # dropped from a full outbox, or never sent (crash)
    watermarks_published: int = 0
    publish_retries: int = 0
    finals_received: int = 0
    merging: bool = False
    finals_published: int = 0
    finals_deduplicated: int = 0  # a re-merged period JetStream already held
    late_partials: int = 0  # arrived after their period was merged (past the grace)
    duplicate_partials: int = 0
    open_periods: int = 0
    merged_by_replica: dict[str, int] = field(default_factory=dict)
    live_replicas: int = 0
    last_merge_lag_ms: int = 0


class EventsCluster:
    """Implements :class:`~caravan.events.service.PartialSink` for the service."""

    def __init__(
        self,
        config: NatsConfig,
        names: Names,
        replica: str,
        *,
        liveness_ms: int = DEFAULT_LIVENESS_MS,
        results_max_messages: int = DEFAULT_MAX_MESSAGES,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.config = config
        self.names = names
        self.replica = replica
        self.clock = clock
        self.stats = ClusterStats()
        self.log = SharedResultsLog(results_max_messages)
        self.book = MergeBook(grace_ms=config.merge_grace_ms, liveness_ms=liveness_ms)
        self.lags: deque[int] = deque(maxlen=LAG_SAMPLES)
        self.service: EventsService | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._outbox: deque[tuple[str, bytes, str | None]] = deque()
        self._outbox_ready = asyncio.Event()
        self._outbox_empty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._merger: asyncio.Task[None] | None = None
        self._leading = False
        self._ready = asyncio.Event()  # connected, streams made
        self._crashed = False
        self._results_seq = 0  # last results-stream sequence applied to the log
        self._results_advanced = asyncio.Condition()
        self._applied_docs = 0
        self._docs_advanced = asyncio.Condition()
        self._live_from = 0  # results before this sequence are history: not re-streamed
        self._last_marker_ms = -(10**12)
        self._trailing_marker: asyncio.Task[None] | None = None

    # -- PartialSink (called synchronously by the engine / ticker) ----------------------

    def on_partial(self, partial: Partial) -> None:
        if self._crashed:
            self.stats.partials_lost += 1
            return
        epoch = self.stats.epoch
        for chunk, piece in enumerate(codec.split_partial(partial, MAX_ENTRIES_PER_MESSAGE)):
            report = PartialReport(self.replica, epoch, chunk, piece)
            self._send(self.names.partials, codec.encode_partial(report), report.msg_id)
            self.stats.partials_published += 1

    def on_tick(self, now_ms: int) -> None:
        if self._crashed:
            return
        # Watermarks need no de-duplication id: a repeated one says nothing new.
        mark = Watermark(self.replica, self.stats.epoch, now_ms)
        self._send(self.names.partials, codec.encode_watermark(mark), None)
        self.stats.watermarks_published += 1

    def _send(self, subject: str, payload: bytes, msg_id: str | None) -> None:
        if len(self._outbox) >= MAX_OUTBOX:
            self._outbox.popleft()
            self.stats.partials_lost += 1
        self._outbox.append((subject, payload, msg_id))
        self._outbox_empty.clear()
        self._outbox_ready.set()

    # -- lifecycle ---------------------------------------------------------------------

    def attach(self, service: EventsService) -> None:
        self.service = service

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="caravan-events-cluster"),
        ]

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        return self._ready.is_set()

    async def _run(self) -> None:
        while True:
            try:
                self._nc = await connect(self.config, self.replica)
                self._js = self._nc.jetstream(timeout=2.0)
                await ensure_streams(self._js, self.names)
                break
            except RETRYABLE as exc:
                log.warning("events cluster: NATS at %s: %s; retrying", self.config.url, exc)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(1.0)
        self.stats.connected = True
        try:
            info = await self._js.stream_info(self.names.results_stream)
            self._live_from = int(info.state.last_seq) + 1
        except RETRYABLE:
            self._live_from = 0
        self._ready.set()
        log.info("events cluster: %s connected to %s", self.replica, self.config.url)
        self._tasks += [
            asyncio.create_task(self._publish_loop(), name="caravan-events-publish"),
            asyncio.create_task(self._read_documents(), name="caravan-events-documents"),
            asyncio.create_task(self._read_results(), name="caravan-events-results"),
        ]
        if self._leading:
            self._start_merger()

    async def drain(self, timeout: float = 3.0) -> None:
        """Waits (bounded) until what is queued was stored: a clean stop loses nothing."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                if self._outbox and self._ready.is_set() and not self._crashed:
                    await self._outbox_empty.wait()

    async def stop(self) -> None:
        await self.drain()
        await self._cancel_all()

    async def crash(self) -> None:
        """For fault tests: stop at once, as a killed process would, losing the outbox."""
        self._crashed = True
        self.stats.partials_lost += sum(1 for _, _, msg_id in self._outbox if msg_id)
        self._outbox.clear()
        await self._cancel_all()

    async def _cancel_all(self) -> None:
        await cancel_and_wait([*self._tasks, self._merger, self._trailing_marker])
        self._tasks, self._merger, self._trailing_marker = [], None, None
        if self._nc is not None:
            # Bounded: a close flushes, and a NATS that does not answer must not hold a stop.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._nc.close()
        self.stats.connected = False

    # -- leadership: the merger ----------------------------------------------------------

    def set_leading(self, leading: bool) -> None:
        self._leading = leading
        if leading and self._ready.is_set():
            self._start_merger()
        elif not leading and self._merger is not None:
            self._merger.cancel()
            self._merger = None

    def _start_merger(self) -> None:
        if self._merger is None or self._merger.done():
            self._merger = asyncio.create_task(self._merge_loop(), name="caravan-events-merger")

    async def _merge_loop(self) -> None:
        assert self._js is not None and self._nc is not None
        self.stats.merging = True
        self.book.drop_open()
        try:
            start = await self._resume_floor()
            log.info("events merger: %s merging from partials sequence %d", self.replica, start)
            cursor = Cursor(
                self._js,
                self._nc,
                self.names.partials_stream,
                [self.names.partials],
                start_seq=start,
                wait_s=MERGER_WAIT_S,
            )
            self.book.refresh_liveness(self.clock())
            resets = 0
            try:
                # A lost cancellation (see caravan.tasks) must not leave a second merger:
                # one that is no longer this replica's merger ends at its next batch.
                while self._merger is asyncio.current_task():
                    batch = await cursor.next_batch()
                    if cursor.resets != resets:  # NATS was away: nobody is known dead
                        resets = cursor.resets
                        self.book.refresh_liveness(self.clock())
                    for msg in batch:
                        self._merge_one(msg)
                    # While replaying after a failover, a period may still have pieces
                    # further on in the stream: only completeness closes it then.
                    finals = self.book.due(
                        self.clock(), next_seq=cursor.next_seq, use_grace=cursor.caught_up
                    )
                    for final in finals:
                        await self._publish_final(final)
                    self._note_book()
            finally:
                await cursor.close()
        finally:
            self.stats.merging = False

    async def _resume_floor(self) -> int:
        """Where a new merger starts reading: the floor of the last final on the results
        stream (every period that was still open then), else the stream's start."""
        assert self._js is not None
        while True:
            try:
                last = await self._js.get_last_msg(self.names.results_stream, self.names.results)
                return max(codec.decode_final(last.data or b"").floor, 1)
            except nats.js.errors.NotFoundError:
                return 1
            except codec.CodecError:
                return 1
            except RETRYABLE as exc:
                log.info("events merger: reading the results stream: %s", exc)
                await asyncio.sleep(0.25)

    def _merge_one(self, msg: Msg) -> None:
        try:
            item = codec.decode_report(msg.data)
        except codec.CodecError as exc:
            log.warning("events merger: skipping message %d: %s", seq_of(msg), exc)
            return
        if isinstance(item, Watermark):
            self.book.mark(item, seen_ms=stamp_ms(msg))
            return
        added = self.book.add(item, seq=seq_of(msg), seen_ms=stamp_ms(msg))
        if added is Added.LATE:
            log.debug("events merger: late partial of %s from %s", item.period, item.replica)

    async def _publish_final(self, final: Final) -> None:
        assert self._js is not None
        payload = codec.encode_final(final)
        while True:
            try:
                ack = await self._js.publish(
                    self.names.results, payload, headers={api.Header.MSG_ID: final.msg_id}
                )
                break
            except RETRYABLE as exc:
                self.stats.publish_retries += 1
                log.info("events merger: publishing a final: %s; retrying", exc)
                await asyncio.sleep(0.1)
        if ack.duplicate:
            self.stats.finals_deduplicated += 1
        else:
            self.stats.finals_published += 1

    def _note_book(self) -> None:
        s, b = self.stats, self.book
        s.late_partials, s.duplicate_partials = b.late, b.duplicates
        s.open_periods = b.open_periods
        s.merged_by_replica = dict(b.partials_by_replica)
        s.live_replicas = len(b.live(self.clock()))

    # -- publishing this replica's partials ----------------------------------------------

    async def _publish_loop(self) -> None:
        assert self._js is not None
        while True:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            item = self._outbox[0]
            subject, payload, msg_id = item
            headers: dict[str, Any] | None = {api.Header.MSG_ID: msg_id} if msg_id else None
            try:
                await self._js.publish(subject, payload, headers=headers)
            except RETRYABLE as exc:
                # Same id on the retry: if the first attempt was stored, JetStream drops
                # the copy, so a partial is stored once.
                self.stats.publish_retries += 1
                log.debug("events cluster: publish: %s; retrying", exc)
                await asyncio.sleep(0.2)
                continue
            if self._outbox and self._outbox[0] is item:  # not dropped meanwhile
                self._outbox.popleft()
            if not self._outbox:
                self._outbox_empty.set()

    # -- documents -----------------------------------------------------------------------

    async def publish_documents(self, documents: list[Any]) -> int:
        """Puts ``documents`` on the documents stream unless they are already its latest
        message; returns the sequence (the epoch) that carries them.

        Several replicas may try at once (each sees the ConfigMap change): the publish
        expects the subject's last sequence it read, so only one succeeds and the others
        find the documents already there."""
        if not await self.wait_ready(10):
            raise RuntimeError("NATS is not reachable")
        assert self._js is not None
        for _ in range(20):
            try:
                last = await self._js.get_last_msg(
                    self.names.documents_stream, self.names.documents
                )
                last_seq = int(last.seq or 0)
                if codec.decode_documents(last.data or b"") == documents:
                    return last_seq
            except nats.js.errors.NotFoundError:
                last_seq = 0
            except codec.CodecError:
                last_seq = 0
            try:
                ack = await self._js.publish(
                    self.names.documents,
                    codec.encode_documents(documents),
                    headers={api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE: str(last_seq)},
                )
                return int(ack.seq)
            except nats.js.errors.APIError as exc:
                log.debug("events cluster: documents raced (%s); reading again", exc)
            except RETRYABLE as exc:
                log.info("events cluster: publishing documents: %s; retrying", exc)
                await asyncio.sleep(0.2)
        raise RuntimeError("could not publish the events documents to NATS")

    async def wait_applied(self, seq: int, timeout: float) -> bool:
        """Until this replica runs the documents of sequence ``seq`` (or later)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._docs_advanced:
                await self._docs_advanced.wait_for(lambda: self._applied_docs >= seq)
        return self._applied_docs >= seq

    async def _read_documents(self) -> None:
        assert self._js is not None and self._nc is not None
        cursor = Cursor(
            self._js,
            self._nc,
            self.names.documents_stream,
            [self.names.documents],
            last_per_subject=True,
        )
        try:
            while True:
                for msg in await cursor.next_batch():
                    self._apply_documents(seq_of(msg), msg.data)
                    async with self._docs_advanced:
                        self._docs_advanced.notify_all()
        finally:
            await cursor.close()

    def _apply_documents(self, seq: int, data: bytes) -> None:
        assert self.service is not None
        if seq <= self._applied_docs:
            return
        try:
            documents = codec.decode_documents(data)
        except codec.CodecError as exc:
            log.warning("events cluster: documents message %d: %s", seq, exc)
            return
        # replace() flushes the old program's windows as partials of the old epoch (this
        # runs synchronously: no event lands in between), then the new epoch begins.
        errors = self.service.replace(documents)
        if errors:
            self.service.report_errors(
                f"documents message {seq} on NATS is invalid:\n{format_errors(errors)}"
            )
        self.stats.epoch = self._applied_docs = seq
        self.on_tick(self.clock())  # tells the merger the old epoch is over, now

    # -- the shared results log ----------------------------------------------------------

    async def _read_results(self) -> None:
        assert self._js is not None and self._nc is not None
        cursor = Cursor(
            self._js,
            self._nc,
            self.names.results_stream,
            [self.names.results, self.names.reads],
        )
        try:
            while True:
                for msg in await cursor.next_batch():
                    self._apply_result(msg)
                    self._results_seq = seq_of(msg)
                async with self._results_advanced:
                    self._results_advanced.notify_all()
        finally:
            await cursor.close()

    def _apply_result(self, msg: Msg) -> None:
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
        if seq_of(msg) >= self._live_from and self.service is not None:
            lag = stamp - final.nominal_end_ms
            self.lags.append(lag)
            self.stats.last_merge_lag_ms = lag
            self.service.deliver(final.message)

    async def read_results(self, counter: int, idle_timeout_ms: int) -> ResultsPage:
        """``GET /v1/events/results/{counter}`` on any replica."""
        now = self.clock()
        if not self._ready.is_set():
            return self.log.read(counter)
        if not self.log.collecting_at(now) or idle_timeout_ms != self.log.idle_timeout_ms:
            # The log starts (again) at 0 on every replica at this marker's place in the
            # stream; wait for it so this answer already follows it.
            seq = await self._publish_marker(idle_timeout_ms)
            if seq:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(MARKER_WAIT_S), self._results_advanced:
                        await self._results_advanced.wait_for(lambda: self._results_seq >= seq)
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
        assert self._js is not None
        self._last_marker_ms = self.clock()
        try:
            marker = codec.encode_read_marker(idle_timeout_ms)
            ack = await self._js.publish(self.names.reads, marker)
        except RETRYABLE as exc:
            log.info("events cluster: read marker: %s", exc)
            return 0
        return int(ack.seq)

    def set_max_messages(self, max_messages: int) -> None:
        self.log.set_max_messages(max_messages)

    def merge_lag_percentiles(self) -> dict[str, float]:
        if not self.lags:
            return {}
        ordered = sorted(self.lags)

        def pct(p: float) -> float:
            return float(ordered[min(len(ordered) - 1, int(p * len(ordered)))])

        return {"p50": pct(0.5), "p99": pct(0.99), "max": float(ordered[-1])}
