"""The merger's book: partials in, each period's final message out, once.

Pure (no clock, no I/O): times are passed in, in milliseconds on the wall clock, and the
transport feeds messages in the partials stream's order.

A period (epoch, channel, reduction, start) is merged when it is *complete* or its
*grace* has passed, whichever comes first:

- complete: every live replica has said (by a watermark) that it published every period
  ending at or before the period's nominal end, or has moved on to a later epoch. A
  replica is live while its last watermark is younger than ``liveness_ms``; one that died
  is then no longer waited for.
- grace: ``grace_ms`` after the period's first partial was stored.

Exactly-once inside the merger: a second copy of a partial (same replica, period and
chunk) is ignored, and a partial for a period already merged is counted as late and
ignored, so no period is ever merged twice. Replicas merge in name order, so the key
order of a final does not depend on arrival order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from caravan.events.partial import (
    Accumulator,
    Partial,
    dropped_error,
    merge_accumulator,
    render_message,
)
from caravan.events_nats.codec import Final, PartialReport, PeriodKey, Watermark

DEFAULT_GRACE_MS = 2_000
DEFAULT_LIVENESS_MS = 3_500  # a watermark comes at least every second (the ticker)
DEFAULT_RETENTION_MS = 10 * 60_000  # how long merged periods are remembered


class Added(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"  # that replica's partial for that period was already held
    LATE = "late"  # the period was already merged


@dataclass(frozen=True, slots=True)
class ReplicaMark:
    epoch: int
    watermark_ms: int
    seen_ms: int  # when the watermark was stored (the stream's time)


@dataclass(slots=True)
class _Open:
    period_ms: int
    first_seen_ms: int
    first_seq: int  # lowest partials-stream sequence holding a piece of this period
    pieces: dict[tuple[str, int], Partial] = field(default_factory=dict)


def merge_partials(pieces: Iterable[tuple[str, Partial]]) -> tuple[Partial, tuple[str, ...]]:
    """Add up pieces of one period (given with their replica), in replica order.

    count/sum/min/max add exactly; the average is recomputed from the merged sum and
    numeric count when rendered. The end is the latest piece's end (a document switch
    flushes each replica at a slightly different time)."""
    ordered = sorted(pieces, key=lambda rp: rp[0])
    if not ordered:
        raise ValueError("nothing to merge")
    first = ordered[0][1]
    # The first piece is taken as is (copied: pieces stay unchanged), the others added.
    entries: dict[tuple[Any, ...], Accumulator] = {key: list(acc) for key, acc in first.entries}
    dropped = 0
    max_keys = 0
    end = first.period_end_ms
    for i, (_, p) in enumerate(ordered):
        if i:
            for key, acc in p.entries:
                into = entries.get(key)
                if into is None:
                    entries[key] = list(acc)
                else:
                    merge_accumulator(into, acc)
        dropped += p.dropped
        max_keys = max(max_keys, p.max_keys)
        end = max(end, p.period_end_ms)
    merged = Partial(
        channel=first.channel,
        id=first.id,
        period_ms=first.period_ms,
        period_start_ms=first.period_start_ms,
        period_end_ms=end,
        entries=list(entries.items()),
        dropped=dropped,
        max_keys=max_keys,
    )
    replicas = tuple(sorted({r for r, _ in ordered}))
    return merged, replicas


class MergeBook:
    def __init__(
        self,
        *,
        grace_ms: int = DEFAULT_GRACE_MS,
        liveness_ms: int = DEFAULT_LIVENESS_MS,
        retention_ms: int = DEFAULT_RETENTION_MS,
    ) -> None:
        if grace_ms < 0 or liveness_ms <= 0 or retention_ms <= 0:
            raise ValueError("grace_ms >= 0, liveness_ms > 0 and retention_ms > 0")
        self.grace_ms = grace_ms
        self.liveness_ms = liveness_ms
        self.retention_ms = retention_ms
        self._open: dict[PeriodKey, _Open] = {}
        self._done: dict[PeriodKey, int] = {}  # merged periods -> when (for pruning)
        self.replicas: dict[str, ReplicaMark] = {}
        self.duplicates = 0
        self.late = 0
        self.partials_by_replica: dict[str, int] = {}
        # Liveness is not judged from before this time (see refresh_liveness).
        self._fresh_from: int | None = None

    # -- input ---------------------------------------------------------------------------

    def add(self, report: PartialReport, *, seq: int, seen_ms: int) -> Added:
        key = report.period
        if key in self._done:
            self.late += 1
            return Added.LATE
        entry = self._open.get(key)
        if entry is None:
            entry = self._open[key] = _Open(report.partial.period_ms, seen_ms, seq)
        piece = (report.replica, report.chunk)
        if piece in entry.pieces:
            self.duplicates += 1
            return Added.DUPLICATE
        entry.pieces[piece] = report.partial
        entry.first_seq = min(entry.first_seq, seq)
        self.partials_by_replica[report.replica] = (
            self.partials_by_replica.get(report.replica, 0) + 1
        )
        return Added.NEW

    def mark(self, mark: Watermark, *, seen_ms: int) -> None:
        known = self.replicas.get(mark.replica)
        if known is not None and (known.epoch, known.watermark_ms) > (
            mark.epoch,
            mark.watermark_ms,
        ):
            # A replayed older watermark (a new merger reading from its floor).
            self.replicas[mark.replica] = ReplicaMark(known.epoch, known.watermark_ms, seen_ms)
            return
        self.replicas[mark.replica] = ReplicaMark(mark.epoch, mark.watermark_ms, seen_ms)

    def mark_done(self, key: PeriodKey, now_ms: int) -> None:
        """A final seen on the results stream (published by this or an earlier merger):
        partials of that period arriving later are late, never merged again."""
        self._open.pop(key, None)
        self._done.setdefault(key, now_ms)

    def drop_open(self) -> None:
        """Forget unmerged periods (a merger starting replays them from its floor)."""
        self._open.clear()

    # -- output --------------------------------------------------------------------------

    def refresh_liveness(self, now_ms: int) -> None:
        """Count every known replica as live again from ``now_ms``: after the merger
        (re)starts or NATS was away, old watermark times say nothing about who is dead,
        and waiting for a live replica is safe while taking a dead one for live only costs
        the grace. For ``liveness_ms`` from then, only the grace closes periods (the
        replicas that are alive make themselves known meanwhile)."""
        self._fresh_from = now_ms

    def live(self, now_ms: int) -> list[str]:
        return sorted(
            r
            for r, m in self.replicas.items()
            if now_ms - max(m.seen_ms, self._fresh_from or 0) < self.liveness_ms
        )

    def complete(self, key: PeriodKey, now_ms: int) -> bool:
        entry = self._open.get(key)
        if entry is None:
            return False
        if self._fresh_from is not None and now_ms - self._fresh_from < self.liveness_ms:
            # Just (re)started: a replica that has not sent a watermark yet is unknown,
            # and "every replica reported" cannot be told until each had time to.
            return False
        epoch, _, _, start = key
        nominal_end = start + entry.period_ms
        for name in self.live(now_ms):
            m = self.replicas[name]
            if m.epoch <= epoch and m.watermark_ms < nominal_end:
                return False
        return True

    def due(self, now_ms: int, *, next_seq: int, use_grace: bool = True) -> list[Final]:
        """Merge every period that is complete (or past its grace, unless ``use_grace`` is
        off, e.g. while a new merger is still replaying the stream) and forget it.

        ``next_seq`` is the next partials-stream sequence to be read; each final carries
        the lowest sequence still needed (the floor) so that a new merger knows where to
        resume reading."""
        # After a (re)start or an outage, replicas come back at different times: the
        # grace counts from the end of that warm-up, not from a piece stored before it.
        warm = 0 if self._fresh_from is None else self._fresh_from + self.liveness_ms
        ready = [
            key
            for key, entry in self._open.items()
            if self.complete(key, now_ms)
            or (use_grace and now_ms - max(entry.first_seen_ms, warm) >= self.grace_ms)
        ]
        merged_list = []
        for key in ready:
            entry = self._open.pop(key)
            self._done[key] = now_ms
            merged, replicas = merge_partials((r, p) for (r, _), p in entry.pieces.items())
            merged_list.append((key, entry, merged, replicas))
        # In the order the periods really ended (a switch flushes a long period early).
        merged_list.sort(key=lambda m: (m[2].period_end_ms, m[0]))
        # Final i is published before final i+1: if the merger stops in between, a new
        # one must still find i+1's pieces, so i's floor counts every later final too.
        floor = self.floor(next_seq)
        floors = []
        for _, entry, _, _ in reversed(merged_list):
            floors.append(floor)
            floor = min(floor, entry.first_seq)
        floors.reverse()
        finals: list[Final] = []
        for (key, entry, merged, replicas), floor_i in zip(merged_list, floors, strict=True):
            message = render_message(
                merged.channel,
                merged.id,
                merged.period_start_ms,
                merged.period_end_ms,
                merged.entries,
                dropped_error(merged.dropped, merged.max_keys, per_replica=len(replicas) > 1),
            )
            finals.append(Final(key[0], message, entry.period_ms, replicas, floor_i))
        self._prune(now_ms)
        return finals

    def floor(self, next_seq: int) -> int:
        """The lowest partials-stream sequence an open period still needs."""
        return min((e.first_seq for e in self._open.values()), default=next_seq)

    @property
    def open_periods(self) -> int:
        return len(self._open)

    def _prune(self, now_ms: int) -> None:
        cutoff = now_ms - self.retention_ms
        if self._done and next(iter(self._done.values())) < cutoff:
            self._done = {k: t for k, t in self._done.items() if t >= cutoff}
