"""Results messages and the polled results log behind ``GET /v1/events/results/{counter}``.

The log only exists while someone reads it: the first read starts collection (position 0),
and once no read has happened for ``idle_timeout_ms`` the log is dropped and collection
stops until the next read, which starts again from position 0. Positions are absolute
counts of messages since collection started. Only the newest ``max_messages`` are kept;
a reader asking for a position older than the oldest kept message gets everything kept
(so it can tell from the count that it missed some).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

Clock = Callable[[], int]  # milliseconds, monotonic

DEFAULT_IDLE_TIMEOUT_MS = 5_000
DEFAULT_MAX_MESSAGES = 10_000


@dataclass(frozen=True, slots=True)
class ResultMessage:
    """One reduction's output for one period.

    ``value`` is the JSON string ``{"channel", "id", "results"}`` served as is; the other
    fields are for in-process consumers (metrics, streams) and are not part of the wire
    shape.
    """

    channel: str
    id: str
    period_start_ms: int
    period_end_ms: int
    error: str
    value: str

    def to_wire(self) -> dict[str, str]:
        """The ``{"error", "value"}`` object of the results API."""
        return {"error": self.error, "value": self.value}


@dataclass(frozen=True, slots=True)
class ResultsPage:
    counter: int  # the end position: pass it back to get what comes next
    messages: list[ResultMessage] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {"counter": self.counter, "messages": [m.to_wire() for m in self.messages]}


class ResultsLog:
    """Bounded, idle-expiring log of results messages (not thread-safe: use one loop)."""

    def __init__(
        self,
        clock: Clock,
        *,
        idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS,
        max_messages: int = DEFAULT_MAX_MESSAGES,
    ) -> None:
        if idle_timeout_ms <= 0 or max_messages <= 0:
            raise ValueError("idle_timeout_ms and max_messages must be positive")
        self._clock = clock
        self.idle_timeout_ms = idle_timeout_ms
        self.max_messages = max_messages
        self._messages: deque[ResultMessage] = deque(maxlen=max_messages)
        self._end = 0
        self._last_read: int | None = None  # None: not collecting

    def set_max_messages(self, max_messages: int) -> None:
        """A new bound; shrinking it forgets the oldest messages kept, positions stay."""
        if max_messages <= 0:
            raise ValueError("max_messages must be positive")
        self.max_messages = max_messages
        self._messages = deque(self._messages, maxlen=max_messages)

    @property
    def collecting(self) -> bool:
        self._expire(self._clock())
        return self._last_read is not None

    @property
    def end(self) -> int:
        return self._end

    def _expire(self, now: int) -> None:
        if self._last_read is not None and now - self._last_read >= self.idle_timeout_ms:
            self._last_read = None
            self._messages.clear()
            self._end = 0

    def append(self, message: ResultMessage) -> None:
        """Record a message if collection is on (a no-op otherwise)."""
        self._expire(self._clock())
        if self._last_read is None:
            return
        self._messages.append(message)  # deque(maxlen) forgets the oldest
        self._end += 1

    def read(self, counter: int) -> ResultsPage:
        """Messages after position ``counter``; starts collection and refreshes the idle
        timer. A counter past the end yields no messages and the current end."""
        now = self._clock()
        self._expire(now)
        self._last_read = now
        if counter >= self._end:
            return ResultsPage(self._end)
        oldest = self._end - len(self._messages)
        start = max(counter, oldest) - oldest
        return ResultsPage(self._end, list(islice(self._messages, start, None)))
