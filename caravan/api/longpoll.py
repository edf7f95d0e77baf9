"""The long-poll parameters every blocking read takes: `waitIndex` (header, or query) and
`wait`, parsed once into a `LongPoll` that routes receive as a dependency."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query

from caravan.api.errors import ApiError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
INDEX_PATTERN = r"^[0-9]{1,18}$"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_wait(text: str | None, default: float, maximum: float) -> float:
    """Nomad-style durations (`30s`, `5m`, `250ms`, bare seconds), capped at `maximum`."""
    if text is None or text == "":
        return min(default, maximum)
    match = _DURATION.match(text)
    if not match:
        raise ApiError(400, f"invalid wait {text!r}: use a duration such as 30s or 5m")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    return min(seconds, maximum)


def parse_index(header: str | None, query: str | None) -> int | None:
    raw = header if header is not None else query
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"invalid waitIndex {raw!r}: expected a non-negative integer") from None
    if value < 0:
        raise ApiError(400, f"invalid waitIndex {raw!r}: expected a non-negative integer")
    return value


@dataclass(frozen=True)
class LongPoll:
    """The index the caller has seen (None: answer at once) and its `wait`, unparsed until
    the route knows the bounds in force."""

    index: int | None
    wait: str | None

    def timeout(self, default: float, maximum: float) -> float:
        return parse_wait(self.wait, default, maximum)


async def long_poll(
    wait_index_header: Annotated[
        str | None,
        Header(alias="waitIndex", pattern=INDEX_PATTERN, description="Block while current"),
    ] = None,
    wait_index_query: Annotated[
        str | None, Query(alias="waitIndex", pattern=INDEX_PATTERN, description="As the header")
    ] = None,
    wait: Annotated[
        str | None,
        Query(
            pattern=_DURATION.pattern,
            description="Longest wait, e.g. 30s or 250ms (default 5m, max 10m)",
        ),
    ] = None,
) -> LongPoll:
    return LongPoll(parse_index(wait_index_header, wait_index_query), wait)


LongPollDep = Annotated[LongPoll, Depends(long_poll)]
