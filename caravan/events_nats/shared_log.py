"""The results log every replica serves, driven by the results stream alone.

``GET /v1/events/results/{counter}`` must give the same counters on every replica, so the
log's state (collecting or not, its positions, the 5 s idle reset) cannot depend on each
replica's own reads and clock. It depends only on the results stream, which every
replica reads in the same order:

- a *read marker* (published by a replica that served a read, at most every
  ``idle/10``, and at once when the log was idle) starts collection at position 0 when
  the log is not collecting, and refreshes the idle timer;
- a *final* is logged while collecting; a final stamped ``idle`` or more after the last
  marker first ends collection (the log is dropped, like one replica's log after 5 s
  without a read).

Times are the stream's own timestamps (set by the JetStream server), identical for every
reader. Pure: the transport calls :meth:`on_marker` and :meth:`on_final`.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from caravan.events.results import DEFAULT_IDLE_TIMEOUT_MS, ResultMessage, ResultsPage


class SharedResultsLog:
    def __init__(self, max_messages: int, idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS) -> None:
        if max_messages <= 0:
            raise ValueError("max_messages must be positive")
        self.max_messages = max_messages
        self.idle_timeout_ms = idle_timeout_ms
        self._messages: deque[ResultMessage] = deque(maxlen=max_messages)
        self._end = 0
        self._last_read_ms: int | None = None  # None: not collecting

    @property
    def end(self) -> int:
        return self._end

    @property
    def last_read_ms(self) -> int | None:
        return self._last_read_ms

    def collecting_at(self, now_ms: int) -> bool:
        """Whether a read at ``now_ms`` finds the log collecting (else the reader must
        publish a marker and wait for it, so that every replica restarts at 0 alike)."""
        last = self._last_read_ms
        return last is not None and now_ms - last < self.idle_timeout_ms

    def set_max_messages(self, max_messages: int) -> None:
        if max_messages <= 0:
            raise ValueError("max_messages must be positive")
        self.max_messages = max_messages
        self._messages = deque(self._messages, maxlen=max_messages)

    def _expire(self, stamp_ms: int) -> None:
        last = self._last_read_ms
        if last is not None and stamp_ms - last >= self.idle_timeout_ms:
            self._last_read_ms = None
            self._messages.clear()
            self._end = 0

    def on_marker(self, stamp_ms: int, idle_timeout_ms: int) -> None:
        self._expire(stamp_ms)
        # The timeout travels in the marker: a settings change applies on every replica
        # at the same point of the stream.
        self.idle_timeout_ms = idle_timeout_ms
        self._last_read_ms = stamp_ms

    def on_final(self, message: ResultMessage, stamp_ms: int) -> None:
        self._expire(stamp_ms)
        if self._last_read_ms is None:
            return
        self._messages.append(message)
        self._end += 1

    def read(self, counter: int) -> ResultsPage:
        """Like ``ResultsLog.read``, without side effects (markers do the refreshing)."""
        if counter >= self._end:
            return ResultsPage(self._end)
        oldest = self._end - len(self._messages)
        start = max(counter, oldest) - oldest
        return ResultsPage(self._end, list(islice(self._messages, start, None)))
