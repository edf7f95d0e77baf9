"""The pure side of events across replicas: merging partials, the merge book's rules
(dedup by replica and period, completeness, grace, liveness, floors), the codec, and the
shared results log driven by the stream."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan.events.engine import Engine
from caravan.events.partial import Partial
from caravan.events.program import compile_documents
from caravan.events.results import ResultMessage
from caravan.events_nats import codec
from caravan.events_nats.codec import PartialReport, Watermark
from caravan.events_nats.merge import Added, MergeBook, merge_partials
from caravan.events_nats.shared_log import SharedResultsLog
from tests.samples import vote_cheer

P = 100


def partial(entries: dict[tuple[Any, ...], list[Any]], start: int = 0, **kw: Any) -> Partial:
    return Partial(
        channel=kw.get("channel", "game"),
        id=kw.get("id", "vote-count"),
        period_ms=P,
        period_start_ms=start,
        period_end_ms=kw.get("end", start + P),
        entries=list(entries.items()),
        dropped=kw.get("dropped", 0),
        max_keys=kw.get("max_keys", 100),
    )


def report(replica: str, p: Partial, epoch: int = 1, chunk: int = 0) -> PartialReport:
    return PartialReport(replica, epoch, chunk, p)


def engine_partials(events_by_replica: list[list[dict[str, Any]]]) -> list[list[Partial]]:
    """Each replica's partials for one period of the vote/cheer document."""
    out = []
    for events in events_by_replica:
        got: list[Partial] = []
        engine = Engine(
            compile_documents([vote_cheer(P)]),
            emit=lambda m: None,
            now_ms=0,
            emit_partial=got.append,
        )
        engine.ingest("game", events, 0)
        engine.tick(P)
        out.append(got)
    return out


def one_engine(events: list[dict[str, Any]]) -> dict[str, ResultMessage]:
    got: list[ResultMessage] = []
    engine = Engine(compile_documents([vote_cheer(P)]), emit=got.append, now_ms=0)
    engine.ingest("game", events, 0)
    engine.tick(P)
    return {m.id: m for m in got}


def by_key(message: ResultMessage) -> dict[tuple[Any, ...], Any]:
    return {tuple(r["key"]): r["value"] for r in json.loads(message.value)["results"]}


viewer_events = st.lists(
    st.one_of(
        st.builds(lambda o: {"key": ["vote"], "value": o}, st.sampled_from("abcde")),
        st.builds(
            lambda t, n: {"key": ["cheer", t], "value": n},
            st.sampled_from(["red", "blue"]),
            st.integers(0, 10**6),
        ),
    ),
    max_size=60,
)


@given(viewer_events, st.integers(1, 4), st.randoms())
def test_merging_every_replicas_partial_equals_one_engine_given_everything(
    events: list[dict[str, Any]], replicas: int, rnd: random.Random
) -> None:
    shares: list[list[dict[str, Any]]] = [[] for _ in range(replicas)]
    for ev in events:
        shares[rnd.randrange(replicas)].append(ev)
    alone = one_engine(events)
    per_reduction: dict[str, list[tuple[str, Partial]]] = {}
    for i, parts in enumerate(engine_partials(shares)):
        for p in parts:
            per_reduction.setdefault(p.id, []).append((f"r{i}", p))
    assert set(per_reduction) == set(alone)
    for rid, pieces in per_reduction.items():
        merged, _ = merge_partials(pieces)
        msg = book_render(merged)
        # Integers: exact, averages included (sum / numeric count of the merged whole).
        assert by_key(msg) == by_key(alone[rid])


def book_render(p: Partial) -> ResultMessage:
    from caravan.events.partial import dropped_error, render_message

    return render_message(
        p.channel,
        p.id,
        p.period_start_ms,
        p.period_end_ms,
        p.entries,
        dropped_error(p.dropped, p.max_keys),
    )


def test_min_max_and_non_numeric_values_merge_exactly() -> None:
    a = partial({("x",): [2, 5, 2, 1, 4], ("s",): [3, 0, 0, None, None]})
    b = partial({("x",): [1, -7, 1, -7, -7], ("s",): [1, 0, 0, None, None]})
    c = partial({("x",): [1, 0, 0, None, None]})  # only non-numeric values for x here
    merged, replicas = merge_partials([("b", b), ("a", a), ("c", c)])
    assert replicas == ("a", "b", "c")
    assert dict(merged.entries) == {("x",): [4, -2, 3, -7, 4], ("s",): [4, 0, 0, None, None]}
    values = by_key(book_render(merged))
    assert values[("x",)] == {"count": 4, "sum": -2, "min": -7, "max": 4, "average": -2 / 3}
    assert values[("s",)] == {"count": 4, "sum": None, "min": None, "max": None, "average": None}


def test_the_key_order_does_not_depend_on_arrival_order() -> None:
    a = partial({("1",): [1, 1, 1, 1, 1]})
    b = partial({("2",): [1, 1, 1, 1, 1]})
    first, _ = merge_partials([("a", a), ("b", b)])
    second, _ = merge_partials([("b", b), ("a", a)])
    assert first.entries == second.entries


def test_a_copy_of_a_partial_is_ignored_and_a_late_one_never_merged_twice() -> None:
    book = MergeBook(grace_ms=50, liveness_ms=1_000)
    p = partial({("x",): [1, 1, 1, 1, 1]})
    assert book.add(report("a", p), seq=1, seen_ms=100) is Added.NEW
    assert book.add(report("a", p), seq=2, seen_ms=101) is Added.DUPLICATE
    assert book.add(report("a", p, chunk=1), seq=3, seen_ms=101) is Added.NEW  # another piece
    [final] = book.due(200, next_seq=4)
    assert by_key(final.message)[("x",)]["count"] == 2
    assert book.add(report("b", p), seq=4, seen_ms=201) is Added.LATE
    assert book.due(10_000, next_seq=5) == []
    assert (book.duplicates, book.late) == (1, 1)


def test_a_period_closes_once_every_live_replica_reported_or_after_the_grace() -> None:
    book = MergeBook(grace_ms=500, liveness_ms=300)
    for r in ("a", "b"):
        book.mark(Watermark(r, 1, 0), seen_ms=0)
    book.add(report("a", partial({("x",): [1, 1, 1, 1, 1]})), seq=3, seen_ms=100)
    book.mark(Watermark("a", 1, 100), seen_ms=100)
    assert book.due(150, next_seq=5) == []  # b has not passed the period's end
    book.mark(Watermark("b", 1, 100), seen_ms=160)  # b had no event in it
    [final] = book.due(170, next_seq=6)
    assert final.replicas == ("a",)

    # A dead replica (no watermark for liveness_ms) is not waited for ...
    book.add(report("a", partial({("y",): [1, 1, 1, 1, 1]}, start=100)), seq=7, seen_ms=210)
    book.mark(Watermark("a", 1, 200), seen_ms=210)
    assert book.due(300, next_seq=8) == []
    assert book.live(470) == ["a"]
    assert len(book.due(470, next_seq=8)) == 1
    # ... and a live replica that does not report is waited for until the grace.
    book.add(report("a", partial({("z",): [1, 1, 1, 1, 1]}, start=200)), seq=9, seen_ms=500)
    book.mark(Watermark("a", 1, 250), seen_ms=900)
    assert book.due(999, next_seq=10) == []
    assert len(book.due(1_000, next_seq=10)) == 1


def test_a_replica_on_a_later_epoch_has_finished_the_earlier_one() -> None:
    book = MergeBook(grace_ms=10_000, liveness_ms=10_000)
    book.mark(Watermark("a", 1, 0), seen_ms=0)
    book.mark(Watermark("b", 1, 0), seen_ms=0)
    # A switch flushed a long period at 40 ms: its nominal end (100) is far.
    book.add(report("a", partial({("x",): [1, 1, 1, 1, 1]}, end=40)), seq=3, seen_ms=40)
    book.mark(Watermark("a", 2, 40), seen_ms=41)
    assert book.due(50, next_seq=5) == []
    book.mark(Watermark("b", 2, 45), seen_ms=46)
    [final] = book.due(50, next_seq=6)
    assert final.message.period_end_ms == 40


def test_a_restarted_merger_waits_for_every_replica_to_show_up() -> None:
    book = MergeBook(grace_ms=5_000, liveness_ms=1_000)
    book.refresh_liveness(1_000)
    book.add(report("a", partial({("x",): [1, 1, 1, 1, 1]})), seq=1, seen_ms=1_000)
    book.mark(Watermark("a", 1, 1_000), seen_ms=1_000)
    # b exists but has not sent a watermark since the merger started: no closing yet.
    assert book.due(1_500, next_seq=3) == []
    book.add(report("b", partial({("x",): [1, 1, 1, 1, 1]})), seq=3, seen_ms=1_600)
    book.mark(Watermark("b", 1, 1_600), seen_ms=1_600)
    [final] = book.due(2_000, next_seq=5)
    assert final.replicas == ("a", "b")


def test_floors_let_a_new_merger_find_every_unmerged_piece() -> None:
    book = MergeBook(grace_ms=100, liveness_ms=10_000)
    book.mark(Watermark("a", 1, 0), seen_ms=0)  # live, lagging: only the grace closes
    book.add(report("a", partial({("x",): [1, 1, 1, 1, 1]}, start=0)), seq=10, seen_ms=0)
    book.add(
        report("a", partial({("x",): [1, 1, 1, 1, 1]}, start=0, id="cheer-sum")), seq=11, seen_ms=0
    )
    book.add(report("a", partial({("x",): [1, 1, 1, 1, 1]}, start=100)), seq=12, seen_ms=150)
    first, second = book.due(120, next_seq=13)
    assert (first.message.id, second.message.id) == ("cheer-sum", "vote-count")
    # If the merger stops after publishing `first`, the next one resumes at `second`'s
    # piece (seq 10, before first's own); after `second`, at the open period's.
    assert (first.floor, second.floor) == (10, 12)
    assert book.floor(13) == 12


def test_the_codec_round_trips_exactly() -> None:
    p = partial(
        {("a", 1, 2.5): [3, 0.1 + 0.2, 2, -1e308, 1e308], ("b",): [1, 10**30, 1, 10**30, 10**30]}
    )
    r = report("pod-1", p, epoch=7, chunk=2)
    assert codec.decode_report(codec.encode_partial(r)) == r
    w = Watermark("pod-1", 7, 123)
    assert codec.decode_report(codec.encode_watermark(w)) == w
    docs = [vote_cheer(P)]
    assert codec.decode_documents(codec.encode_documents(docs)) == docs
    assert codec.decode_read_marker(codec.encode_read_marker(5_000)) == 5_000
    for bad in (b"", b"[]", b'{"t": "partial"}', b'{"t": "other"}'):
        with pytest.raises(codec.CodecError):
            codec.decode_report(bad)
    with pytest.raises(codec.CodecError):
        codec.decode_final(b'{"t": "read", "idle": 1}')


def test_large_partials_travel_in_pieces_that_merge_back() -> None:
    entries = {(f"k{i}",): [1, i, 1, i, i] for i in range(25)}
    p = partial(entries, dropped=3)
    pieces = codec.split_partial(p, 10)
    assert [len(x.entries) for x in pieces] == [10, 10, 5]
    assert sum(x.dropped for x in pieces) == 3
    merged, _ = merge_partials([("a", x) for x in pieces])
    assert dict(merged.entries) == entries
    assert codec.split_partial(p, 100) == [p]
    ids = {report("a", x, chunk=i).msg_id for i, x in enumerate(pieces)}
    assert len(ids) == 3


def test_dropped_keys_are_summed_and_said_per_replica() -> None:
    a = partial({("x",): [1, 1, 1, 1, 1]}, dropped=2, max_keys=1)
    b = partial({("y",): [1, 1, 1, 1, 1]}, dropped=1, max_keys=1)
    book = MergeBook(grace_ms=0)
    book.add(report("a", a), seq=1, seen_ms=0)
    book.add(report("b", b), seq=2, seen_ms=0)
    [final] = book.due(0, next_seq=3)
    assert final.message.error == (
        "3 event(s) with new keys were dropped: this reduction holds at most 1 distinct keys "
        "per period on each replica"
    )


def message(n: int) -> ResultMessage:
    return ResultMessage("game", "r", n, n + 1, "", str(n))


def test_the_shared_log_follows_markers_and_stream_times_only() -> None:
    log = SharedResultsLog(max_messages=3, idle_timeout_ms=1_000)
    log.on_final(message(0), 0)  # nobody reads: not logged
    assert log.read(0).counter == 0 and not log.collecting_at(0)
    log.on_marker(100, 1_000)
    assert log.collecting_at(500) and not log.collecting_at(1_100)
    for i in range(1, 5):
        log.on_final(message(i), 100 + i)
    page = log.read(0)
    assert page.counter == 4 and [m.value for m in page.messages] == ["2", "3", "4"]  # bounded
    assert [m.value for m in log.read(3).messages] == ["4"]
    assert log.read(9).messages == [] and log.read(9).counter == 4
    log.on_marker(900, 1_000)  # a read refreshed the timer
    log.on_final(message(5), 1_800)
    assert log.read(0).counter == 5
    log.on_final(message(6), 1_900)  # 1,000 ms after the last marker: dropped
    assert log.read(0).counter == 0 and log.last_read_ms is None
    log.on_marker(2_000, 2_000)  # the next read starts again at 0, with its timeout
    log.on_final(message(7), 3_500)
    assert log.read(0).counter == 1 and log.idle_timeout_ms == 2_000
