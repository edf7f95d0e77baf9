"""The polled results log: positions, bounds, idle reset (clock injected, no sleeps)."""

from __future__ import annotations

import pytest

from caravan.events import ResultMessage, ResultsLog
from tests.samples import Clock

pytestmark = pytest.mark.unit


def msg(i: int) -> ResultMessage:
    return ResultMessage(
        channel="c", id="r", period_start_ms=0, period_end_ms=1, error="", value=f'{{"n":{i}}}'
    )


def values(page_messages: list[ResultMessage]) -> list[str]:
    return [m.value for m in page_messages]


def test_nothing_is_collected_before_the_first_request() -> None:
    clock = Clock()
    log = ResultsLog(clock)
    log.append(msg(0))
    assert not log.collecting
    page = log.read(0)
    assert page.counter == 0 and page.messages == []
    assert log.collecting


def test_positions_are_absolute_and_reads_return_what_follows() -> None:
    clock = Clock()
    log = ResultsLog(clock)
    log.read(0)
    for i in range(5):
        log.append(msg(i))
    page = log.read(0)
    assert page.counter == 5
    assert values(page.messages) == [f'{{"n":{i}}}' for i in range(5)]
    assert values(log.read(3).messages) == ['{"n":3}', '{"n":4}']
    assert log.read(5).messages == []
    assert page.to_wire()["messages"][0] == {"error": "", "value": '{"n":0}'}


def test_counter_past_the_end_returns_the_current_end() -> None:
    clock = Clock()
    log = ResultsLog(clock)
    log.read(0)
    log.append(msg(0))
    page = log.read(99)
    assert page.counter == 1 and page.messages == []


def test_only_the_newest_messages_are_kept() -> None:
    clock = Clock()
    log = ResultsLog(clock, max_messages=3)
    log.read(0)
    for i in range(10):
        log.append(msg(i))
    page = log.read(2)  # older than the oldest kept (7): everything kept
    assert page.counter == 10
    assert values(page.messages) == ['{"n":7}', '{"n":8}', '{"n":9}']
    assert values(log.read(8).messages) == ['{"n":8}', '{"n":9}']


def test_a_new_bound_keeps_positions_and_the_newest_messages() -> None:
    log = ResultsLog(Clock(), max_messages=5)
    log.read(0)
    for i in range(5):
        log.append(msg(i))
    log.set_max_messages(2)
    page = log.read(0)
    assert page.counter == 5
    assert values(page.messages) == ['{"n":3}', '{"n":4}']
    log.set_max_messages(4)
    for i in range(5, 8):
        log.append(msg(i))
    assert values(log.read(0).messages) == ['{"n":4}', '{"n":5}', '{"n":6}', '{"n":7}']
    with pytest.raises(ValueError):
        log.set_max_messages(0)


def test_log_is_dropped_after_the_idle_timeout() -> None:
    clock = Clock()
    log = ResultsLog(clock, idle_timeout_ms=5_000)
    log.read(0)
    log.append(msg(0))
    clock.now = 4_999
    assert log.read(0).counter == 1  # a read refreshes the timer
    clock.now = 9_998
    log.append(msg(1))
    assert log.end == 2
    clock.now = 9_999  # 5 s after the last read
    log.append(msg(2))  # not collected: collection stopped
    assert not log.collecting
    page = log.read(2)  # collection restarts from position 0
    assert page.counter == 0 and page.messages == []
    log.append(msg(3))
    assert values(log.read(0).messages) == ['{"n":3}']


def test_idle_timeout_is_a_parameter() -> None:
    clock = Clock()
    log = ResultsLog(clock, idle_timeout_ms=100)
    log.read(0)
    clock.now = 99
    assert log.collecting
    clock.now = 200
    assert not log.collecting


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ResultsLog(Clock(), idle_timeout_ms=0)
    with pytest.raises(ValueError):
        ResultsLog(Clock(), max_messages=0)
