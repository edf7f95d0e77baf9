"""Run a compiled program: viewer events -> maps -> reductions -> per-period results.

Windows are tumbling and aligned to multiples of their period on the injected clock
(``start = now - now % period``). Time only advances through :meth:`Engine.tick`,
:meth:`Engine.flush` and the ``now_ms`` passed to :meth:`Engine.ingest`; the engine never
reads a clock itself, so tests drive it without sleeping. ``ingest`` first closes windows
whose end has passed, so a late ticker never puts events in the wrong period.

Not thread-safe: call it from one thread (the event loop).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from caravan.events.partial import Partial, dropped_error, render_message
from caravan.events.program import CompiledReduction, KeyBuilder, Program
from caravan.events.results import ResultMessage
from caravan.events.where import Env, Matcher

DEFAULT_MAX_KEYS_PER_PERIOD = 100_000
# An IngestResult lists the reasons of at most this many rejected events (all are counted).
MAX_REJECTION_REASONS = 100

Emit = Callable[[ResultMessage], None]
# With several replicas a closed window goes out as raw accumulators, to be merged.
EmitPartial = Callable[[Partial], None]


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int  # position of the event in the batch
    reason: str


@dataclass(slots=True)
class IngestResult:
    """What happened to a batch: ``accepted + unmatched + rejected == len(batch)``.

    - accepted: well-formed and matched by at least one map;
    - unmatched: well-formed but no map matched (or the channel has no maps);
    - rejected: malformed; ``rejections`` gives the reasons of the first ones;
    - dropped_keys: reduction inputs discarded because their reduction already held
      ``max_keys_per_period`` distinct keys this period and the key was new.
    """

    channel: str
    known_channel: bool
    accepted: int = 0
    unmatched: int = 0
    rejected: int = 0
    dropped_keys: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "knownChannel": self.known_channel,
            "accepted": self.accepted,
            "unmatched": self.unmatched,
            "rejected": self.rejected,
            "droppedKeys": self.dropped_keys,
            "rejections": [{"index": r.index, "reason": r.reason} for r in self.rejections],
        }

    def merge(self, other: IngestResult, offset: int) -> None:
        """Add a later chunk's result (its indexes shifted by ``offset``)."""
        self.accepted += other.accepted
        self.unmatched += other.unmatched
        self.rejected += other.rejected
        self.dropped_keys += other.dropped_keys
        room = MAX_REJECTION_REASONS - len(self.rejections)
        self.rejections.extend(
            Rejection(r.index + offset, r.reason) for r in other.rejections[: max(room, 0)]
        )


class _Window:
    """The open period of one reduction. An accumulator is
    ``[count, sum, numeric_count, min, max]`` (a list: updated in place, no allocation)."""

    __slots__ = ("data", "dropped", "end", "reduction", "start")

    def __init__(self, reduction: CompiledReduction, now_ms: int) -> None:
        self.reduction = reduction
        self.data: dict[tuple[Any, ...], list[Any]] = {}
        self.dropped = 0
        self.start = 0
        self.end = 0
        self.open(now_ms)

    def open(self, now_ms: int) -> None:
        p = self.reduction.period_ms
        self.start = now_ms - now_ms % p
        self.end = self.start + p
        self.data = {}
        self.dropped = 0


# (match, env, build_key, window) for one reduction a map feeds.
_Target = tuple[Matcher, Env, KeyBuilder, _Window]
# (match, env, build_key, value_slot, literal, targets) for one map.
_MapRun = tuple[Matcher, Env, KeyBuilder, int | None, Any, tuple[_Target, ...]]


def _reason(ev: object) -> str:
    """Why an event failed the fast checks (only called on the slow path)."""
    if not isinstance(ev, dict):
        return f"event must be an object, got {type(ev).__name__}"
    if "key" not in ev:
        return 'event has no "key"'
    key = ev["key"]
    if not isinstance(key, list):
        return '"key" must be an array of strings and numbers'
    if not key:
        return '"key" must not be empty'
    for i, k in enumerate(key):
        if type(k) not in (str, int, float):
            return f"key[{i}] must be a string or a number, got {json.dumps(k)[:40]}"
        if type(k) is float and not math.isfinite(k):
            return f"key[{i}] must be a finite number"
    return 'event has no "value"'


class Engine:
    def __init__(
        self,
        program: Program,
        *,
        emit: Emit,
        now_ms: int,
        max_keys_per_period: int = DEFAULT_MAX_KEYS_PER_PERIOD,
        emit_partial: EmitPartial | None = None,
    ) -> None:
        if max_keys_per_period <= 0:
            raise ValueError("max_keys_per_period must be positive")
        self.program = program
        self.max_keys_per_period = max_keys_per_period
        self._emit = emit
        self._emit_partial = emit_partial
        self._windows: list[_Window] = []
        # channel -> (maps by first key literal, fallback maps)
        self._channels: dict[str, tuple[dict[Any, tuple[_MapRun, ...]], tuple[_MapRun, ...]]] = {}
        for name, ch in program.channels.items():
            windows = [_Window(r, now_ms) for r in ch.reductions]
            self._windows.extend(windows)
            runs: list[_MapRun] = []
            for m in ch.maps:
                targets = tuple(
                    (
                        ch.reductions[i].match,
                        ch.reductions[i].slots.new_env(),
                        ch.reductions[i].build_key,
                        windows[i],
                    )
                    for i in m.reductions
                )
                runs.append(
                    (m.match, m.slots.new_env(), m.build_key, m.value_slot, m.literal, targets)
                )
            by_first = {k: tuple(runs[i] for i in idx) for k, idx in ch.by_first.items()}
            self._channels[name] = (by_first, tuple(runs[i] for i in ch.fallback))
        self._deadline = min((w.end for w in self._windows), default=None)

    @property
    def next_deadline(self) -> int | None:
        """When the earliest open window ends (ms on the engine clock), None if none."""
        return self._deadline

    def ingest(self, channel: str, events: Sequence[Any], now_ms: int) -> IngestResult:
        """Apply a batch of viewer events received at ``now_ms``."""
        if self._deadline is not None and now_ms >= self._deadline:
            self.tick(now_ms)
        dispatch = self._channels.get(channel)
        result = IngestResult(channel=channel, known_channel=dispatch is not None)
        by_first, fallback = dispatch if dispatch is not None else ({}, ())
        limit = self.max_keys_per_period
        accepted = unmatched = dropped = 0
        rejections = result.rejections
        rejected = 0
        # The hot loop: locals only, tuples unpacked, no per-event allocation except the
        # output key tuples (which are dict keys).
        for idx, ev in enumerate(events):
            if type(ev) is dict and "value" in ev:
                key = ev.get("key")
                if type(key) is list and key:
                    for k in key:
                        tk = type(k)
                        if tk is not str and tk is not int and (tk is not float or k - k != 0):
                            break
                    else:
                        value = ev["value"]
                        hit = False
                        for match, env, build, vslot, literal, targets in by_first.get(
                            key[0], fallback
                        ):
                            if not match(key, value, env):
                                continue
                            out_key = build(env)
                            if out_key is None:
                                continue
                            hit = True
                            out_value = literal if vslot is None else env[vslot]
                            for rmatch, renv, rbuild, win in targets:
                                if not rmatch(out_key, out_value, renv):
                                    continue
                                rkey = rbuild(renv)
                                if rkey is None:
                                    continue
                                data = win.data
                                acc = data.get(rkey)
                                if acc is None:
                                    if len(data) >= limit:
                                        win.dropped += 1
                                        dropped += 1
                                        continue
                                    acc = data[rkey] = [0, 0, 0, None, None]
                                acc[0] += 1
                                tv = type(out_value)
                                # bool is not a number; inf/nan are not summed.
                                if tv is int or (tv is float and out_value - out_value == 0):
                                    acc[1] += out_value
                                    if acc[2]:
                                        if out_value < acc[3]:
                                            acc[3] = out_value
                                        elif out_value > acc[4]:
                                            acc[4] = out_value
                                    else:
                                        acc[3] = acc[4] = out_value
                                    acc[2] += 1
                        if hit:
                            accepted += 1
                        else:
                            unmatched += 1
                        continue
            rejected += 1
            if len(rejections) < MAX_REJECTION_REASONS:
                rejections.append(Rejection(idx, _reason(ev)))
        result.accepted = accepted
        result.unmatched = unmatched
        result.rejected = rejected
        result.dropped_keys = dropped
        return result

    def tick(self, now_ms: int) -> list[ResultMessage]:
        """Close every window whose period ended at or before ``now_ms`` and emit its
        results. Periods without events emit nothing."""
        out: list[ResultMessage] = []
        for win in self._windows:
            if now_ms >= win.end:
                if win.data:
                    msg = self._close(win, win.end)
                    if msg is not None:
                        out.append(msg)
                win.open(now_ms)
        self._deadline = min((w.end for w in self._windows), default=None)
        for msg in out:
            self._emit(msg)
        return out

    def flush(self, now_ms: int) -> list[ResultMessage]:
        """Close every window now, even unfinished ones (used when the program is
        replaced): partial periods are emitted with ``period_end_ms = now_ms``."""
        closed = (self._close(w, min(now_ms, w.end)) for w in self._windows if w.data)
        out = [m for m in closed if m is not None]
        for w in self._windows:
            w.open(now_ms)
        self._deadline = min((w.end for w in self._windows), default=None)
        for msg in out:
            self._emit(msg)
        return out

    def _close(self, win: _Window, end_ms: int) -> ResultMessage | None:
        """The window's message, or None when its accumulators went to ``emit_partial``
        instead (several replicas: the merger renders the message)."""
        if self._emit_partial is not None:
            self._emit_partial(
                Partial(
                    channel=win.reduction.channel,
                    id=win.reduction.id,
                    period_ms=win.reduction.period_ms,
                    period_start_ms=win.start,
                    period_end_ms=end_ms,
                    entries=list(win.data.items()),
                    dropped=win.dropped,
                    max_keys=self.max_keys_per_period,
                )
            )
            return None
        r = win.reduction
        # The window is full exactly when something was dropped: len(data) is the bound.
        return render_message(
            r.channel,
            r.id,
            win.start,
            end_ms,
            win.data.items(),
            dropped_error(win.dropped, len(win.data)),
        )
