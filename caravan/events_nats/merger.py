"""The merger, run by the replica that leads: it reads the partials stream, merges each
period once (`MergeBook`) and publishes the final with a de-duplication id, so a period
re-merged by a new merger after a failover is stored once."""

from __future__ import annotations

import logging
from collections.abc import Callable

import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from caravan.events_nats import codec
from caravan.events_nats.codec import Final, Watermark
from caravan.events_nats.connection import Connection
from caravan.events_nats.merge import Added, MergeBook
from caravan.events_nats.stats import ClusterStats
from caravan.events_nats.streams import RETRYABLE, seq_of, stamp_ms
from caravan.retry import Backoff, retrying

log = logging.getLogger(__name__)

MERGER_WAIT_S = 0.1


class Merger:
    def __init__(
        self,
        connection: Connection,
        book: MergeBook,
        stats: ClusterStats,
        clock: Callable[[], int],
    ) -> None:
        self.connection = connection
        self.names = connection.names
        self.book = book
        self.stats = stats
        self.clock = clock

    async def run(self, still_merging: Callable[[], bool]) -> None:
        """Merges until `still_merging()` turns false (checked at every batch) or the task
        is cancelled."""
        self.stats.merging = True
        self.book.drop_open()
        try:
            start = await self._resume_floor()
            replica = self.connection.replica
            log.info("events merger: %s merging from partials sequence %d", replica, start)
            cursor = self.connection.cursor(
                self.names.partials_stream,
                [self.names.partials],
                start_seq=start,
                wait_s=MERGER_WAIT_S,
            )
            self.book.refresh_liveness(self.clock())
            resets = 0
            try:
                while still_merging():
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

        async def read() -> int:
            js = self.connection.js
            try:
                last = await js.get_last_msg(self.names.results_stream, self.names.results)
                return max(codec.decode_final(last.data or b"").floor, 1)
            except (nats.js.errors.NotFoundError, codec.CodecError):
                return 1

        return await retrying(
            read, RETRYABLE, Backoff(0.1, 2.0), what="events merger: results stream", log=log
        )

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
        payload = codec.encode_final(final)

        async def publish() -> api.PubAck:
            try:
                return await self.connection.js.publish(
                    self.names.results, payload, headers={api.Header.MSG_ID: final.msg_id}
                )
            except RETRYABLE:
                self.stats.publish_retries += 1
                raise

        ack = await retrying(
            publish, RETRYABLE, Backoff(0.05, 2.0), what="events merger: a final", log=log
        )
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
