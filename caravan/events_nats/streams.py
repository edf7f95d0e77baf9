"""JetStream plumbing the events cluster stands on: names, streams, connection, a cursor.

Nothing here knows about periods or documents (see ``jetstream``); it is the part that
talks to nats-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from caravan.config import NatsConfig
from caravan.retry import Backoff

log = logging.getLogger(__name__)

# Enough for the merger to de-duplicate a re-merged period after a failover, and for a
# retried publish to be stored once, however long NATS was away (within reason).
DUPLICATE_WINDOW_S = 120.0
PARTIALS_MAX_AGE_S = 10 * 60.0
RESULTS_MAX_AGE_S = 30 * 60.0
RESULTS_MAX_MSGS = 100_000
DOCUMENTS_HISTORY = 16
# A consumer the cursor lost (NATS restarted without it) is removed by the server after
# this long without a fetch; the cursor makes a new one meanwhile.
CONSUMER_INACTIVE_S = 60.0


def _token(text: str) -> str:
    # Stream names and subject tokens: no dots, wildcards or spaces.
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


@dataclass(frozen=True, slots=True)
class Names:
    """Streams and subjects of one installation (namespace + ConfigMap prefix)."""

    prefix: str

    @classmethod
    def of(cls, namespace: str, configmap_prefix: str, override: str = "") -> Names:
        return cls(_token(override or f"caravan_{namespace}_{configmap_prefix}"))

    @property
    def partials_stream(self) -> str:
        return f"{self.prefix}_partials"

    @property
    def results_stream(self) -> str:
        return f"{self.prefix}_results"

    @property
    def documents_stream(self) -> str:
        return f"{self.prefix}_documents"

    @property
    def partials(self) -> str:
        return f"{self.prefix}.partials"

    @property
    def results(self) -> str:
        return f"{self.prefix}.results"

    @property
    def reads(self) -> str:
        return f"{self.prefix}.reads"

    @property
    def documents(self) -> str:
        return f"{self.prefix}.documents"


def tls_context(config: NatsConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    context = ssl.create_default_context(cafile=config.tls_ca_file)
    if config.tls_cert_file:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    return context


async def connect(config: NatsConfig, name: str) -> Client:
    """A connection that reconnects forever: a NATS restart must not end the replica."""
    kwargs: dict[str, Any] = {
        "servers": [s.strip() for s in config.url.split(",") if s.strip()],
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 2,
        "allow_reconnect": True,
    }
    context = tls_context(config)
    if context is not None:
        kwargs["tls"] = context
    if config.creds_file:
        kwargs["user_credentials"] = config.creds_file
    if config.user:
        kwargs["user"] = config.user
        kwargs["password"] = config.password or ""

    async def quiet(exc: Exception) -> None:
        log.debug("nats: %s", exc)  # reconnection noise; the cursors log what matters

    return await nats.connect(error_cb=quiet, **kwargs)


async def ensure_streams(js: JetStreamContext, names: Names) -> None:
    """Create (or bring to this configuration) the three streams; idempotent."""
    configs = [
        api.StreamConfig(
            name=names.partials_stream,
            subjects=[names.partials],
            storage=api.StorageType.FILE,
            max_age=PARTIALS_MAX_AGE_S,
            duplicate_window=DUPLICATE_WINDOW_S,
        ),
        api.StreamConfig(
            name=names.results_stream,
            subjects=[names.results, names.reads],
            storage=api.StorageType.FILE,
            max_age=RESULTS_MAX_AGE_S,
            max_msgs=RESULTS_MAX_MSGS,
            duplicate_window=DUPLICATE_WINDOW_S,
        ),
        api.StreamConfig(
            name=names.documents_stream,
            subjects=[names.documents],
            storage=api.StorageType.FILE,
            max_msgs_per_subject=DOCUMENTS_HISTORY,
        ),
    ]
    for config in configs:
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # It exists with another configuration (an older Caravan): bring it up to date.
            await js.update_stream(config)


def stamp_ms(msg: Msg) -> int:
    """The time the JetStream server stored the message: the same for every reader."""
    return int(msg.metadata.timestamp.timestamp() * 1000)


def seq_of(msg: Msg) -> int:
    return int(msg.metadata.sequence.stream)


RETRYABLE: tuple[type[BaseException], ...] = (
    nats.errors.Error,  # timeouts, no responders, connection closed/reconnecting
    asyncio.TimeoutError,
    OSError,
)


class Cursor:
    """Reads a stream in order from a sequence, without acknowledgements: an ephemeral
    pull consumer that is made again from the next sequence whenever it is lost (NATS
    restarted, the connection reconnected). The reader's position is ``next_seq``."""

    def __init__(
        self,
        js: JetStreamContext,
        nc: Client,
        stream: str,
        subjects: list[str],
        *,
        start_seq: int = 1,
        last_per_subject: bool = False,
        wait_s: float = 1.0,
    ) -> None:
        self.js = js
        self.nc = nc
        self.stream = stream
        self.subjects = subjects
        self.next_seq = max(start_seq, 1)
        self._last_per_subject = last_per_subject
        self.wait_s = wait_s
        self._sub: JetStreamContext.PullSubscription | None = None
        self._reconnects = -1
        self._backoff = Backoff(0.1, 2.0)
        self.caught_up = False  # nothing was pending after the last batch
        self.resets = 0  # how often the consumer was lost and made again

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        await self.close()
        if self._last_per_subject:
            config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)
        else:
            config = api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.next_seq
            )
        config.ack_policy = api.AckPolicy.NONE
        config.inactive_threshold = CONSUMER_INACTIVE_S
        config.mem_storage = True
        config.filter_subjects = list(self.subjects)
        self._sub = await self.js.pull_subscribe(
            self.subjects[0], stream=self.stream, config=config
        )
        self._reconnects = int(self.nc.stats["reconnects"])
        return self._sub

    async def next_batch(self, max_batch: int = 512) -> list[Msg]:
        """The next messages in order; [] after ``wait_s`` without any. Raises only
        what cannot be retried (cancellation)."""
        try:
            sub = self._sub
            if sub is None or int(self.nc.stats["reconnects"]) != self._reconnects:
                if sub is not None:
                    self.resets += 1
                sub = await self._subscribe()
            try:
                # One message first: a bigger fetch would wait for the whole batch.
                msgs = await sub.fetch(1, timeout=self.wait_s)
            except nats.errors.TimeoutError:
                self._backoff.reset()
                self.caught_up = True
                return []
            pending = msgs[-1].metadata.num_pending
            while pending > 0:
                more = await sub.fetch(min(pending, max_batch), timeout=2.0)
                msgs.extend(more)
                pending = more[-1].metadata.num_pending if more else 0
                if len(msgs) >= max_batch:
                    break
        except RETRYABLE as exc:
            delay = self._backoff.next_delay()
            log.info(
                "stream %s: %s; reading again from %d in %.2fs",
                self.stream,
                exc,
                self.next_seq,
                delay,
            )
            self._sub = None
            self.resets += 1
            await self._backoff.sleep(delay)
            return []
        self._backoff.reset()
        self._last_per_subject = False  # from now on, simply the next sequence
        msgs = [m for m in msgs if seq_of(m) >= self.next_seq or self.next_seq == 1]
        if msgs:
            self.next_seq = seq_of(msgs[-1]) + 1
            self.caught_up = msgs[-1].metadata.num_pending == 0
        return msgs

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
