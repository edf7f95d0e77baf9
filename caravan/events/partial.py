"""A reduction's accumulators for one period, before they become a results message.

One replica alone turns its closed window straight into a :class:`ResultMessage`. With
several replicas (``caravan.events_nats``) each publishes its :class:`Partial` and one
merger adds them up first; both paths render the message with :func:`render_message`, so
a merged period reads exactly like one replica's.

An accumulator is ``[count, sum, numeric_count, min, max]``: ``count`` counts every
event, the others only numeric values (``min``/``max`` are None until one is seen).
Keeping ``numeric_count`` rather than the average is what makes averages merge exactly:
``average = sum / numeric_count`` over the merged accumulators.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from caravan.events.results import ResultMessage

Accumulator = list[Any]  # [count, sum, numeric_count, min, max]


@dataclass(frozen=True, slots=True)
class Partial:
    """What one replica's window of one reduction held when its period closed."""

    channel: str
    id: str
    period_ms: int
    period_start_ms: int
    period_end_ms: int  # the nominal end, or earlier when a document switch flushed it
    entries: list[tuple[tuple[Any, ...], Accumulator]]
    dropped: int  # events with new keys discarded by the keys-per-period bound
    max_keys: int  # that bound, for the error sentence


def new_accumulator() -> Accumulator:
    return [0, 0, 0, None, None]


def merge_accumulator(into: Accumulator, other: Accumulator) -> None:
    """Add ``other`` into ``into`` in place: counts and sums add, min/max compare."""
    into[0] += other[0]
    into[1] += other[1]
    if other[2]:
        if into[2]:
            if other[3] < into[3]:
                into[3] = other[3]
            if other[4] > into[4]:
                into[4] = other[4]
        else:
            into[3], into[4] = other[3], other[4]
        into[2] += other[2]


def _finite(x: Any) -> Any:
    # Float sums can overflow to inf; JSON has no inf, so report null.
    return None if type(x) is float and not math.isfinite(x) else x


def _average(total: Any, numeric: int) -> Any:
    try:
        return _finite(total / numeric)
    except OverflowError:  # an int sum too large for a float
        return None


def dropped_error(dropped: int, max_keys: int, *, per_replica: bool = False) -> str:
    if not dropped:
        return ""
    where = " on each replica" if per_replica else ""
    return (
        f"{dropped} event(s) with new keys were dropped: this reduction "
        f"holds at most {max_keys} distinct keys per period{where}"
    )


def render_message(
    channel: str,
    reduction_id: str,
    period_start_ms: int,
    period_end_ms: int,
    entries: Iterable[tuple[tuple[Any, ...], Accumulator]],
    error: str,
) -> ResultMessage:
    """The results message of one period: one result per key, in the order given."""
    results = []
    for k, (count, total, numeric, lo, hi) in entries:
        results.append(
            {
                "key": [_finite(e) for e in k],
                "value": {
                    "count": count,
                    "sum": _finite(total) if numeric else None,
                    "min": lo,
                    "max": hi,
                    "average": _average(total, numeric) if numeric else None,
                },
            }
        )
    value = json.dumps(
        {"channel": channel, "id": reduction_id, "results": results},
        separators=(",", ":"),
        allow_nan=False,
    )
    return ResultMessage(
        channel=channel,
        id=reduction_id,
        period_start_ms=period_start_ms,
        period_end_ms=period_end_ms,
        error=error,
        value=value,
    )
