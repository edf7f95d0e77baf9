"""The events service: one object the HTTP routes call.

It owns the stored documents, the running engine, the polled results log and the stream
subscribers. Everything runs on the event loop thread; methods are synchronous except the
ones that yield to the loop (``send`` for large batches, ``run`` for the ticker), so each
call is atomic with respect to other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from caravan.events.engine import DEFAULT_MAX_KEYS_PER_PERIOD, Engine, IngestResult
from caravan.events.errors import EventsError, EventsValidationError, format_errors
from caravan.events.partial import Partial
from caravan.events.program import Program, compile_documents
from caravan.events.results import (
    DEFAULT_IDLE_TIMEOUT_MS,
    DEFAULT_MAX_MESSAGES,
    Clock,
    ResultMessage,
    ResultsLog,
    ResultsPage,
)
from caravan.events.subscribers import DEFAULT_QUEUE_SIZE, SubscriberHub, Subscription
from caravan.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 5_000
# The ticker wakes at least this often even with no window due, to expire the results
# log and notice a stop promptly.
MAX_TICK_SLEEP_S = 1.0


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def wall_ms() -> int:
    """Periods aligned on this clock line up across machines (NTP keeps them close)."""
    return time.time_ns() // 1_000_000


class PartialSink(Protocol):
    """Where closed windows go when several replicas reduce together
    (``caravan.events_nats``): this replica's partials, then a watermark per tick."""

    def on_partial(self, partial: Partial) -> None:
        """A window closed; called synchronously from the engine, in order."""

    def on_tick(self, now_ms: int) -> None:
        """Every window ending at or before ``now_ms`` has been handed over."""


@dataclass(slots=True)
class EventsStats:
    """Totals since the service started (for /metrics)."""

    accepted: int = 0
    unmatched: int = 0
    rejected: int = 0
    dropped_keys: int = 0
    messages: int = 0
    replacements: int = 0
    subscribers: int = 0
    results_collecting: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventsService:
    def __init__(
        self,
        *,
        clock: Clock = monotonic_ms,
        max_keys_per_period: int = DEFAULT_MAX_KEYS_PER_PERIOD,
        results_idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS,
        results_max_messages: int = DEFAULT_MAX_MESSAGES,
        subscriber_queue_size: int = DEFAULT_QUEUE_SIZE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        partials: PartialSink | None = None,
    ) -> None:
        self._clock = clock
        # None: the embedded default, this engine's messages are the results. Otherwise
        # closed windows go to the sink and results come back through deliver().
        self._partials = partials
        self._max_keys = max_keys_per_period
        self._chunk_size = chunk_size
        self.results_log = ResultsLog(
            clock, idle_timeout_ms=results_idle_timeout_ms, max_messages=results_max_messages
        )
        self.hub = SubscriberHub(subscriber_queue_size)
        self._stats = EventsStats()
        self._errors = ""
        self._engine = self._new_engine(compile_documents([]))
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- documents -------------------------------------------------------------------

    @property
    def program(self) -> Program:
        return self._engine.program

    @property
    def documents(self) -> list[Any]:
        """The stored ``mapreduce`` array (a copy: safe to serialise or mutate)."""
        return copy.deepcopy(self._engine.program.documents)

    @property
    def errors(self) -> str:
        """The ``errors`` string of ``GET /v1/events``: empty unless :meth:`restore` was
        given invalid documents."""
        return self._errors

    def validate(self, docs: Any) -> list[EventsError]:
        try:
            compile_documents(docs)
        except EventsValidationError as e:
            return list(e.errors)
        return []

    def replace(self, docs: Any) -> list[EventsError]:
        """``POST /v1/events``: compile ``docs`` and make them live, atomically.

        On errors nothing changes and every error is returned (answer 422). On success
        the old program's open windows are flushed (their partial periods are emitted
        now) and the new program starts with fresh windows.
        """
        try:
            program = compile_documents(docs)
        except EventsValidationError as e:
            return list(e.errors)
        self._install(program)
        self._errors = ""
        return []

    def restore(self, docs: Any) -> list[EventsError]:
        """Load persisted documents at startup. Unlike :meth:`replace`, invalid documents
        are kept (``documents`` returns them, ``errors`` describes them) and nothing runs."""
        try:
            program = compile_documents(docs)
        except EventsValidationError as e:
            self._install(Program(documents=copy.deepcopy(docs), channels={}))
            self._errors = format_errors(e.errors)
            return list(e.errors)
        self._install(program)
        self._errors = ""
        return []

    def report_errors(self, errors: str) -> None:
        """Set the ``errors`` string without touching what runs: the stored documents
        were edited into something invalid, and the last valid program keeps running.
        An empty string clears the report."""
        self._errors = errors

    @property
    def max_keys_per_period(self) -> int:
        return self._max_keys

    def set_limits(self, *, max_keys_per_period: int, max_messages: int) -> None:
        """New bounds from the settings, in force from now on (open windows included)."""
        self._max_keys = max_keys_per_period
        self._engine.max_keys_per_period = max_keys_per_period
        self.results_log.set_max_messages(max_messages)

    def _new_engine(self, program: Program) -> Engine:
        return Engine(
            program,
            emit=self._on_result,
            now_ms=self._clock(),
            max_keys_per_period=self._max_keys,
            emit_partial=None if self._partials is None else self._partials.on_partial,
        )

    def _install(self, program: Program) -> None:
        # No await between flush and swap: no event can land in between.
        self._engine.flush(self._clock())
        self._engine = self._new_engine(program)
        self._stats.replacements += 1
        self._wake.set()  # the new program's first deadline may be sooner

    # -- events ----------------------------------------------------------------------

    def ingest(self, channel: str, events: Sequence[Any]) -> IngestResult:
        """Apply a batch now (synchronously). Prefer :meth:`send` for large batches."""
        now = self._clock()
        deadline = self._engine.next_deadline
        result = self._engine.ingest(channel, events, now)
        if self._partials is not None and deadline is not None and now >= deadline:
            # The batch closed windows first (the ticker was late): say so at once, or
            # the merger would wait for the next tick to learn those periods are done.
            self._partials.on_tick(now)
        s = self._stats
        s.accepted += result.accepted
        s.unmatched += result.unmatched
        s.rejected += result.rejected
        s.dropped_keys += result.dropped_keys
        return result

    async def send(self, channel: str, events: Sequence[Any]) -> IngestResult:
        """``POST /v1/events/send``: like :meth:`ingest` but yields to the event loop
        between chunks so a huge batch does not stall other requests."""
        n = self._chunk_size
        if len(events) <= n:
            return self.ingest(channel, events)
        total: IngestResult | None = None
        for off in range(0, len(events), n):
            part = self.ingest(channel, events[off : off + n])
            if total is None:
                total = part
            else:
                total.merge(part, off)
            await asyncio.sleep(0)
        assert total is not None
        return total

    def tick(self, now_ms: int | None = None) -> list[ResultMessage]:
        """Close the windows that ended by ``now_ms`` (default: the clock)."""
        return self._engine.tick(self._clock() if now_ms is None else now_ms)

    # -- results -----------------------------------------------------------------------

    def _on_result(self, message: ResultMessage) -> None:
        self._stats.messages += 1
        self.results_log.append(message)
        self.hub.publish(message)

    def deliver(self, message: ResultMessage) -> None:
        """A merged results message from the cluster: to the stream subscribers (the
        cluster keeps its own shared results log)."""
        self._stats.messages += 1
        self.hub.publish(message)

    def results(self, counter: int) -> ResultsPage:
        """``GET /v1/events/results/{counter}``; ``.to_wire()`` is the response body."""
        return self.results_log.read(counter)

    def subscribe(self, maxsize: int | None = None) -> Subscription:
        """A stream of every results message from now on; close it when the client
        leaves (or use it as a context manager)."""
        return self.hub.subscribe(maxsize)

    def stats(self) -> EventsStats:
        s = copy.copy(self._stats)
        s.subscribers = len(self.hub)
        s.results_collecting = self.results_log.collecting
        return s

    # -- real-time ticker ------------------------------------------------------------------

    async def run(self) -> None:
        """Tick on the clock forever: emits each period's results when it ends."""
        while True:
            now = self._clock()
            try:
                self.tick(now)
                if self._partials is not None:
                    self._partials.on_tick(now)  # also the replica's heartbeat
            except Exception:  # a bug must not stop every later period from closing
                log.exception("events ticker failed")
            _ = self.results_log.collecting  # drop an idle log even when nothing is emitted
            deadline = self._engine.next_deadline
            delay = (
                MAX_TICK_SLEEP_S
                if deadline is None
                else min(max(deadline - now, 0) / 1000, MAX_TICK_SLEEP_S)
            )
            self._wake.clear()
            # asyncio.timeout, not wait_for: on 3.11, wait_for swallows a cancellation that
            # arrives as the wake-up completes, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def start(self) -> asyncio.Task[None]:
        """Start :meth:`run` as a task on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="caravan-events-ticker"
            )
        return self._task

    async def stop(self) -> None:
        """Stop the ticker, emit the open windows, end every subscription."""
        await cancel_and_wait([self._task])
        self._task = None
        now = self._clock()
        self._engine.flush(now)
        if self._partials is not None:
            self._partials.on_tick(now)
        self.hub.close_all()
