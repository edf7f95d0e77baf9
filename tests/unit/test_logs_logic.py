"""Pure logs logic: the definitions list, status words, and the byte-offset strategies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from caravan.logs import definitions, reads
from caravan.logs.status import rfc3339_utc, status_word


def entry(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "web-out",
        "group": "web",
        "job": "web",
        "task": "main",
        "fileName": "stdout",
        "logLevel": True,
    }
    base.update(overrides)
    return base


# Definitions ---------------------------------------------------------------------------


def test_a_valid_list_round_trips_through_the_stored_text() -> None:
    entries, problems = definitions.check_list([entry(), entry(id="b", logLevel=False)])
    assert problems == []
    again, stored_problems = definitions.parse_stored(definitions.dump(entries))
    assert stored_problems == []
    assert [e.to_json() for e in again] == [entry(), entry(id="b", logLevel=False)]


def test_check_list_reports_every_problem_and_keeps_nothing() -> None:
    raw = [
        entry(),
        entry(),  # duplicate id
        {"id": "x"},  # missing fields
        entry(id="y", logLevel="yes", task=3, extra=1),
        "not an object",
    ]
    entries, problems = definitions.check_list(raw)
    assert entries == []
    fields = [p.field for p in problems]
    assert "[1].id" in fields
    assert {"[2].group", "[2].job", "[2].task", "[2].fileName", "[2].logLevel"} <= set(fields)
    assert {"[3].logLevel", "[3].task", "[3].extra"} <= set(fields)
    assert "[4]" in fields


def test_check_list_refuses_empty_names_and_non_arrays() -> None:
    _, problems = definitions.check_list([entry(job="")])
    assert [p.field for p in problems] == ["[0].job"]
    _, problems = definitions.check_list({"id": "x"})
    assert problems[0].field == "body"


def test_stored_text_is_read_leniently() -> None:
    assert definitions.parse_stored(None) == ([], [])
    assert definitions.parse_stored("  ") == ([], [])
    entries, problems = definitions.parse_stored("{broken")
    assert entries == [] and problems[0].field == "$"
    text = json.dumps([entry(), {"id": "bad"}, entry(task="other")])
    entries, problems = definitions.parse_stored(text)
    # One bad entry and a repeated id are skipped, the rest is served.
    assert [e.task for e in entries] == ["main"]
    assert any(p.field == "[1].group" for p in problems)
    assert any("duplicate" in p.message for p in problems)


def test_find() -> None:
    entries, _ = definitions.check_list([entry(), entry(id="b")])
    found = definitions.find(entries, "b")
    assert found is not None and found.id == "b"
    assert definitions.find(entries, "nope") is None


# Status words --------------------------------------------------------------------------


def test_status_words_of_the_buckets() -> None:
    assert status_word("queued") == "pending"
    assert status_word("starting") == "pending"
    assert status_word("running") == "running"
    assert status_word("complete") == "complete"
    assert status_word("failed") == "failed"
    assert status_word("lost") == "lost"


def test_creation_times_are_rfc3339_utc() -> None:
    assert rfc3339_utc("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert rfc3339_utc("2026-01-01T02:00:00+02:00") == "2026-01-01T00:00:00Z"
    assert rfc3339_utc("2026-01-01T00:00:00.5Z") == "2026-01-01T00:00:00.500000Z"
    assert rfc3339_utc("") == ""
    assert rfc3339_utc("not a time") == "not a time"


# Tail strategy -------------------------------------------------------------------------


def test_tail_lines_grow_until_enough_bytes_or_the_whole_log() -> None:
    first = reads.first_tail_lines(65536)
    assert first == 657
    # Short lines: not enough bytes, estimate from the average seen, at least double.
    following = reads.next_tail_lines(first, first, first * 10, 65536)
    assert following is not None and following >= 2 * first
    assert following * 10 >= 65536
    # Enough bytes: done.
    assert reads.next_tail_lines(first, first, 70000, 65536) is None
    # Fewer lines than asked: that was the whole log.
    assert reads.next_tail_lines(first, 3, 30, 65536) is None
    assert reads.next_tail_lines(first, 0, 0, 65536) is None


def simulate_tail(lines: list[bytes], wanted: int) -> tuple[bytes, int]:
    """Runs the tail strategy against an in-memory log; returns (answer, round trips)."""
    asked = reads.first_tail_lines(wanted)
    trips = 0
    while True:
        trips += 1
        window = reads.TailWindow(wanted)
        answer = lines[-asked:] if asked else []
        for line in answer:
            window.feed(line)
        following = reads.next_tail_lines(asked, window.lines, window.seen, wanted)
        if following is None:
            return window.tail(), trips
        asked = following


@given(
    st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=300),
    st.integers(min_value=1, max_value=40000),
)
def test_tail_strategy_returns_exactly_the_last_bytes(lines: list[bytes], wanted: int) -> None:
    log = b"".join(lines)
    answer, trips = simulate_tail(lines, wanted)
    assert answer == log[-wanted:]
    assert trips <= 12


def test_a_window_counts_a_last_line_without_newline() -> None:
    window = reads.TailWindow(4)
    for chunk in (b"ab\n", b"cd\nef"):
        window.feed(chunk)
    assert window.lines == 3
    assert window.seen == 8
    assert window.tail() == b"d\nef"
    counting = reads.TailWindow(0)
    counting.feed(b"xyz")
    assert counting.tail() == b"" and counting.seen == 3 and counting.lines == 1


# Slices --------------------------------------------------------------------------------


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def collect(data: bytes, size: int, part: reads.Slice) -> bytes:
    return b"".join([c async for c in reads.sliced(_chunks(data, size), part)])


async def test_slices_skip_and_limit_across_chunk_boundaries() -> None:
    data = bytes(range(256)) * 4
    for size in (1, 7, 256, 5000):
        for skip in (0, 1, 255, 256, 1023, 1024, 5000):
            for limit in (None, 0, 1, 100, 5000):
                got = await collect(data, size, reads.Slice(skip, limit))
                expected = data[skip:] if limit is None else data[skip : skip + limit]
                assert got == expected, (size, skip, limit)


def test_start_and_end_slices() -> None:
    assert reads.start_slice(10, 100, follow=False) == (reads.Slice(10, 100), 110)
    assert reads.start_slice(10, 100, follow=True) == (reads.Slice(10, None), None)
    # Counted 500 bytes of tail, want the last 200: skip 300.
    assert reads.end_slice(500, 200, 100, follow=False) == reads.Slice(300, 100)
    # Asked more than there is: everything.
    assert reads.end_slice(50, 200, 100, follow=True) == reads.Slice(0, None)


def test_since_time_cuts_a_timestamped_line_to_its_second() -> None:
    line = b"2026-12-01T23:44:01.123456789Z app info tick=3\n"
    assert reads.since_time(line) == "2026-12-01T23:44:01Z"
    assert reads.since_time(b"2026-12-01T23:44:01Z x") == "2026-12-01T23:44:01Z"
    # Not a timestamped line (or nothing read): no start time, the caller reads it all.
    assert reads.since_time(b"") is None
    assert reads.since_time(b"hello world") is None
