"""Byte offsets over the Kubernetes pod log API, which only knows lines.

The pod log API offers `tailLines` (the last N lines), `limitBytes` (the first N bytes)
and `follow`, but no byte offset. Caravan emulates the API's two origins with them:

- `origin=start&offset=N`: stream from the beginning with `limitBytes = N + max`, drop the
  first N bytes and pass the rest through as it comes.
- `origin=end&offset=N`: ask for the last K lines, K growing geometrically from an
  estimate, until the answer holds at least N bytes or the whole log came back; then the
  last N bytes are the answer. Only about N bytes cross the wire however long the log
  is. When N is larger than what one read may return, the last pass only counts bytes and
  one more pass streams from the right place instead of holding N bytes in memory.
- With split streams Kubernetes refuses `tailLines` beside `stream`. So the last K lines
  of the *combined* log are read with timestamps, and the stream is asked `sinceTime` the
  first of them (whole seconds): a suffix of the stream holding at least its share of
  those K lines. K grows as above until that suffix holds N bytes, or the combined tail
  was the whole log (then the whole stream is read).

Everything here is pure (no I/O) so the strategies are unit-tested without a cluster.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

Origin = Literal["start", "end"]
Fs = Literal["stdout", "stderr"]

# First guess of the length of a log line; only decides how many round trips a tail read
# takes (the next guess uses the lengths actually seen).
GUESS_LINE_BYTES = 100
# Ask for a bit more than the estimate, so one more round trip is rare.
TAIL_MARGIN = 1.25


def first_tail_lines(wanted_bytes: int, line_bytes: int = GUESS_LINE_BYTES) -> int:
    """How many lines to ask for first to get `wanted_bytes` from the end."""
    return max(1, math.ceil(wanted_bytes / line_bytes) + 1)


def next_tail_lines(asked: int, got_lines: int, got_bytes: int, wanted_bytes: int) -> int | None:
    """The next `tailLines` to ask for, or None when the last answer is enough.

    Enough: it holds `wanted_bytes`, or it has fewer lines than asked (the whole log).
    Otherwise the estimate uses the average line length seen, and at least doubles, so
    the number of round trips is logarithmic even when line lengths vary wildly.
    """
    if got_bytes >= wanted_bytes or got_lines < asked:
        return None
    average = max(got_bytes / max(got_lines, 1), 1.0)
    estimate = math.ceil(wanted_bytes / average * TAIL_MARGIN) + 1
    return max(asked * 2, estimate)


@dataclass(frozen=True, slots=True)
class TailStart:
    """Where a tail read starts: the last `lines` lines (combined log), or the stream's
    entries since `since` (RFC 3339, whole seconds; None: the whole stream)."""

    lines: int | None = None
    since: str | None = None


def since_time(timestamped_line: bytes) -> str | None:
    """`sinceTime` for a line read with `timestamps=true`: its time cut to the second
    (Kubernetes takes whole seconds), so the read starts at or before that line."""
    stamp = timestamped_line.split(b" ", 1)[0].decode("ascii", "replace")
    if len(stamp) < 20 or stamp[10] != "T":
        return None
    return stamp[:19] + "Z"


@dataclass
class TailWindow:
    """Counts the bytes and lines of a stream, keeping only its last `keep` bytes."""

    keep: int
    seen: int = 0
    newlines: int = 0
    _last: int = -1
    _chunks: deque[bytes] = field(default_factory=deque)
    _kept: int = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.seen += len(chunk)
        self.newlines += chunk.count(b"\n")
        self._last = chunk[-1]
        if self.keep <= 0:
            return
        self._chunks.append(chunk)
        self._kept += len(chunk)
        # Drop whole chunks that lie entirely before the window.
        while self._chunks and self._kept - len(self._chunks[0]) >= self.keep:
            self._kept -= len(self._chunks.popleft())

    @property
    def lines(self) -> int:
        """Lines seen; a last line without its newline counts."""
        partial = 1 if self.seen and self._last != ord("\n") else 0
        return self.newlines + partial

    def tail(self) -> bytes:
        """The last `keep` bytes seen (all of them if fewer)."""
        data = b"".join(self._chunks)
        return data[-self.keep :] if self.keep > 0 else b""


@dataclass(frozen=True, slots=True)
class Slice:
    """Which bytes of an upstream answer to pass on: skip `skip`, then at most `limit`."""

    skip: int
    limit: int | None  # None: everything (a followed stream)


def start_slice(offset: int, max_bytes: int, follow: bool) -> tuple[Slice, int | None]:
    """The slice and the `limitBytes` to ask for, for `origin=start`."""
    if follow:
        return Slice(offset, None), None
    return Slice(offset, max_bytes), offset + max_bytes


def end_slice(counted_bytes: int, offset: int, max_bytes: int, follow: bool) -> Slice:
    """The slice of an answer whose first `counted_bytes` are the tail that was counted."""
    return Slice(max(counted_bytes - offset, 0), None if follow else max_bytes)


async def sliced(chunks: AsyncIterator[bytes], part: Slice) -> AsyncIterator[bytes]:
    """Passes the chunks through, without the first `skip` bytes and past `limit`."""
    skip = part.skip
    remaining = part.limit
    if remaining == 0:
        return
    async for chunk in chunks:
        if skip:
            if len(chunk) <= skip:
                skip -= len(chunk)
                continue
            chunk = chunk[skip:]
            skip = 0
        if remaining is not None:
            if len(chunk) >= remaining:
                yield chunk[:remaining]
                return
            remaining -= len(chunk)
        yield chunk
