"""Streams end when their caller's access is withdrawn, and are counted per caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from caravan.api.errors import ApiError
from caravan.api.streams import Streams, until_denied
from caravan.config import ServerLimits


async def forever(closed: list[bool]) -> AsyncIterator[int]:
    try:
        n = 0
        while True:
            await asyncio.sleep(0.01)
            n += 1
            yield n
    finally:
        closed.append(True)


async def silent(closed: list[bool]) -> AsyncIterator[int]:
    try:
        await asyncio.Event().wait()  # a stream with nothing to say
        yield 0
    finally:
        closed.append(True)


@pytest.mark.parametrize("source", [forever, silent])
async def test_a_stream_ends_when_access_is_withdrawn(source: object) -> None:
    answers = iter([True, True, False])
    asked = 0

    async def still_allowed() -> bool:
        nonlocal asked
        asked += 1
        return next(answers)

    closed: list[bool] = []
    items = [i async for i in until_denied(source(closed), still_allowed, 0.05)]  # type: ignore[operator]
    assert asked == 3  # asked on schedule, also while the source said nothing
    assert closed == [True]
    assert all(isinstance(i, int) for i in items)


async def test_a_finished_source_ends_the_stream() -> None:
    async def three() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    async def yes() -> bool:
        return True

    assert [i async for i in until_denied(three(), yes, 10)] == [0, 1, 2]


async def test_streams_are_counted_per_caller_while_they_run() -> None:
    streams = Streams(ServerLimits(max_streams_per_caller=2))

    async def yes() -> bool:
        return True

    closed: list[bool] = []
    first = streams.follow("u", forever(closed), yes)
    second = streams.follow("u", forever(closed), yes)
    streams.check("u")  # nothing runs yet: a response never started holds no slot
    assert await anext(first) and await anext(second)
    with pytest.raises(ApiError) as refused:
        streams.check("u")
    assert refused.value.status == 429
    streams.check("someone-else")
    await first.aclose()
    streams.check("u")
    await second.aclose()
    assert streams.open == {}
