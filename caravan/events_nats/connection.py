"""The replica's NATS connection: made (with the three streams) once NATS answers, then
kept by nats-py, which reconnects forever."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.client import Client
from nats.js import JetStreamContext

from caravan.config import NatsConfig
from caravan.events_nats.streams import RETRYABLE, Cursor, Names, connect, ensure_streams
from caravan.retry import Backoff, retrying

log = logging.getLogger(__name__)


class Connection:
    def __init__(self, config: NatsConfig, names: Names, replica: str) -> None:
        self.config = config
        self.names = names
        self.replica = replica
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.ready = asyncio.Event()  # connected, streams made

    @property
    def nc(self) -> Client:
        assert self._nc is not None, "not connected yet"
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "not connected yet"
        return self._js

    async def open(self) -> None:
        """Connects and makes the streams, waiting out NATS being away."""
        await retrying(
            self._open_once,
            RETRYABLE,
            Backoff(0.5, 10.0),
            what=f"events cluster: NATS at {self.config.url}",
            log=log,
            level=logging.WARNING,
        )
        self.ready.set()
        log.info("events cluster: %s connected to %s", self.replica, self.config.url)

    async def _open_once(self) -> None:
        try:
            self._nc = await connect(self.config, self.replica)
            self._js = self._nc.jetstream(timeout=2.0)
            await ensure_streams(self._js, self.names)
        except RETRYABLE:
            await self.close()
            raise

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.ready.wait()
        return self.ready.is_set()

    def cursor(
        self,
        stream: str,
        subjects: list[str],
        *,
        start_seq: int = 1,
        last_per_subject: bool = False,
        wait_s: float = 1.0,
    ) -> Cursor:
        return Cursor(
            self.js,
            self.nc,
            stream,
            subjects,
            start_seq=start_seq,
            last_per_subject=last_per_subject,
            wait_s=wait_s,
        )

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            # Bounded: a close flushes, and a NATS that does not answer must not hold a stop.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await nc.close()
