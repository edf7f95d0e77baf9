"""The events cluster on JetStream: what one replica does beside its engine.

Every replica:
- publishes its closed windows (:class:`~caravan.events.partial.Partial`) and a
  watermark per tick to the partials stream, in order, retrying until stored (`outbox`);
- reads the documents stream and switches programs at each message (`documents`);
- reads the results stream into its shared results log and its stream subscribers
  (`results`).

The replica that leads (the Lease holder) also runs the merger (`merger`). This class
puts the parts together over one connection (`connection`) and is what the events
service sees: a :class:`~caravan.events.service.PartialSink`, documents to publish and
results to read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from caravan.config import NatsConfig
from caravan.events.partial import Partial
from caravan.events.results import DEFAULT_MAX_MESSAGES, ResultsPage
from caravan.events.service import EventsService, wall_ms
from caravan.events_nats import codec
from caravan.events_nats.codec import PartialReport, Watermark
from caravan.events_nats.connection import Connection
from caravan.events_nats.documents import DocumentsFollower
from caravan.events_nats.merge import DEFAULT_LIVENESS_MS, MergeBook
from caravan.events_nats.merger import Merger
from caravan.events_nats.outbox import Outbox
from caravan.events_nats.results import ResultsFollower
from caravan.events_nats.shared_log import SharedResultsLog
from caravan.events_nats.stats import ClusterStats
from caravan.events_nats.streams import Names
from caravan.tasks import cancel_and_wait

# Keys per partials message: 5,000 keys of the sample documents are about 200 KB, well
# under NATS's default 1 MB message limit.
MAX_ENTRIES_PER_MESSAGE = 5_000


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
        self.names = names
        self.replica = replica
        self.clock = clock
        self.stats = ClusterStats()
        self.log = SharedResultsLog(results_max_messages)
        self.book = MergeBook(grace_ms=config.merge_grace_ms, liveness_ms=liveness_ms)
        self.connection = Connection(config, names, replica)
        self.outbox = Outbox(self.stats)
        self.documents = DocumentsFollower(
            self.connection, self.stats, lambda: self.on_tick(self.clock())
        )
        self.results = ResultsFollower(self.connection, self.log, self.book, self.stats, clock)
        self.merger = Merger(self.connection, self.book, self.stats, clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._merging: asyncio.Task[None] | None = None
        self._leading = False
        self._crashed = False

    # -- PartialSink (called synchronously by the engine / ticker) ----------------------

    def on_partial(self, partial: Partial) -> None:
        if self._crashed:
            self.stats.partials_lost += 1
            return
        epoch = self.stats.epoch
        for chunk, piece in enumerate(codec.split_partial(partial, MAX_ENTRIES_PER_MESSAGE)):
            report = PartialReport(self.replica, epoch, chunk, piece)
            self.outbox.put(self.names.partials, codec.encode_partial(report), report.msg_id)
            self.stats.partials_published += 1

    def on_tick(self, now_ms: int) -> None:
        if self._crashed:
            return
        # Watermarks need no de-duplication id: a repeated one says nothing new.
        mark = Watermark(self.replica, self.stats.epoch, now_ms)
        self.outbox.put(self.names.partials, codec.encode_watermark(mark), None)
        self.stats.watermarks_published += 1

    # -- lifecycle ---------------------------------------------------------------------

    def attach(self, service: EventsService) -> None:
        self.documents.service = service
        self.results.service = service

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name="caravan-events-cluster")]

    async def wait_ready(self, timeout: float) -> bool:
        return await self.connection.wait_ready(timeout)

    async def _run(self) -> None:
        await self.connection.open()
        self.stats.connected = True
        await self.results.note_history()
        self._tasks += [
            asyncio.create_task(self.outbox.run(self.connection.js), name="caravan-events-publish"),
            asyncio.create_task(self.documents.run(), name="caravan-events-documents"),
            asyncio.create_task(self.results.run(), name="caravan-events-results"),
        ]
        if self._leading:
            self._start_merger()

    async def drain(self, timeout: float = 3.0) -> None:
        """Waits (bounded) until what is queued was stored: a clean stop loses nothing."""
        if self.connection.ready.is_set() and not self._crashed:
            await self.outbox.drain(timeout)

    async def stop(self) -> None:
        await self.drain()
        await self._cancel_all()

    async def crash(self) -> None:
        """For fault tests: stop at once, as a killed process would, losing the outbox."""
        self._crashed = True
        self.stats.partials_lost += self.outbox.lose_all()
        await self._cancel_all()

    async def _cancel_all(self) -> None:
        await cancel_and_wait([*self._tasks, self._merging])
        self._tasks, self._merging = [], None
        await self.results.stop()
        await self.connection.close()
        self.stats.connected = False

    # -- leadership: the merger ----------------------------------------------------------

    def set_leading(self, leading: bool) -> None:
        self._leading = leading
        if leading and self.connection.ready.is_set():
            self._start_merger()
        elif not leading and self._merging is not None:
            self._merging.cancel()
            self._merging = None

    def _start_merger(self) -> None:
        if self._merging is None or self._merging.done():
            # A lost cancellation (see caravan.tasks) must not leave a second merger: one
            # that is no longer this replica's merger ends at its next batch.
            self._merging = asyncio.create_task(
                self.merger.run(lambda: self._merging is asyncio.current_task()),
                name="caravan-events-merger",
            )

    # -- documents and results -----------------------------------------------------------

    async def publish_documents(self, documents: list[Any]) -> int:
        return await self.documents.publish(documents)

    async def wait_applied(self, seq: int, timeout: float) -> bool:
        return await self.documents.wait_applied(seq, timeout)

    async def read_results(self, counter: int, idle_timeout_ms: int) -> ResultsPage:
        return await self.results.read(counter, idle_timeout_ms)

    def set_max_messages(self, max_messages: int) -> None:
        self.log.set_max_messages(max_messages)

    def merge_lag_percentiles(self) -> dict[str, float]:
        return self.results.merge_lag_percentiles()
