"""The documents stream: every replica switches programs at each of its messages, in
stream order. The message's sequence is the program's epoch, carried by every partial,
so that a period never mixes two programs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import nats.js.errors
from nats.js import api

from caravan.events.errors import format_errors
from caravan.events.service import EventsService
from caravan.events_nats import codec
from caravan.events_nats.connection import Connection
from caravan.events_nats.stats import ClusterStats
from caravan.events_nats.streams import RETRYABLE, seq_of
from caravan.retry import Backoff

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS = 20


class DocumentsFollower:
    def __init__(
        self, connection: Connection, stats: ClusterStats, on_switch: Callable[[], None]
    ) -> None:
        self.connection = connection
        self.names = connection.names
        self.stats = stats
        # Called once a new epoch began (the old one is then over: say so at once).
        self.on_switch = on_switch
        self.service: EventsService | None = None
        self._applied = 0
        self._advanced = asyncio.Condition()

    async def publish(self, documents: list[Any]) -> int:
        """Puts ``documents`` on the documents stream unless they are already its latest
        message; returns the sequence (the epoch) that carries them.

        Several replicas may try at once (each sees the ConfigMap change): the publish
        expects the subject's last sequence it read, so only one succeeds and the others
        find the documents already there."""
        if not await self.connection.wait_ready(10):
            raise RuntimeError("NATS is not reachable")
        js = self.connection.js
        backoff = Backoff(0.1, 2.0)
        for _ in range(PUBLISH_ATTEMPTS):
            try:
                last = await js.get_last_msg(self.names.documents_stream, self.names.documents)
                last_seq = int(last.seq or 0)
                if codec.decode_documents(last.data or b"") == documents:
                    return last_seq
            except (nats.js.errors.NotFoundError, codec.CodecError):
                last_seq = 0
            try:
                ack = await js.publish(
                    self.names.documents,
                    codec.encode_documents(documents),
                    headers={api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE: str(last_seq)},
                )
                return int(ack.seq)
            except nats.js.errors.APIError as exc:
                log.debug("events cluster: documents raced (%s); reading again", exc)
            except RETRYABLE as exc:
                delay = backoff.next_delay()
                log.info("events cluster: publishing documents: %s; retrying in %.2fs", exc, delay)
                await backoff.sleep(delay)
        raise RuntimeError("could not publish the events documents to NATS")

    async def wait_applied(self, seq: int, timeout: float) -> bool:
        """Until this replica runs the documents of sequence ``seq`` (or later)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self._applied >= seq)
        return self._applied >= seq

    async def run(self) -> None:
        cursor = self.connection.cursor(
            self.names.documents_stream, [self.names.documents], last_per_subject=True
        )
        try:
            while True:
                for msg in await cursor.next_batch():
                    self._apply(seq_of(msg), msg.data)
                    async with self._advanced:
                        self._advanced.notify_all()
        finally:
            await cursor.close()

    def _apply(self, seq: int, data: bytes) -> None:
        assert self.service is not None
        if seq <= self._applied:
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
        self.stats.epoch = self._applied = seq
        self.on_switch()
