"""cancel_and_wait: a stop that survives a lost cancellation (Python 3.11's wait_for)."""

from __future__ import annotations

import asyncio

import pytest

from caravan.tasks import cancel_and_wait

pytestmark = pytest.mark.unit


async def loop_that_swallows(times: int, stop: asyncio.Event | None = None) -> None:
    """As a loop around a 3.11 ``wait_for`` that lost its cancellation: runs on."""
    swallowed = 0
    while stop is None or not stop.is_set():
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if swallowed >= times:
                raise
            swallowed += 1


async def test_a_task_that_lost_one_cancellation_is_cancelled_again_and_stops() -> None:
    task = asyncio.create_task(loop_that_swallows(times=2))
    await asyncio.sleep(0.02)
    task.cancel()  # what a plain cancel-then-gather stop does: not enough
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 0.3)
    assert not task.done()

    assert await cancel_and_wait([task], timeout=5) == set()
    assert task.cancelled()


async def test_what_never_stops_is_returned_after_the_timeout() -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(loop_that_swallows(times=10**6, stop=stop))
    await asyncio.sleep(0.02)
    assert await cancel_and_wait([task], timeout=0.6) == {task}
    stop.set()
    await task


async def test_done_and_none_entries_are_fine_and_failures_are_retrieved() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(fails())
    await asyncio.sleep(0)
    sleeper = asyncio.create_task(asyncio.sleep(30))
    assert await cancel_and_wait([None, failed, sleeper]) == set()
    assert sleeper.cancelled()
    assert failed.done() and not failed.cancelled()
