"""The engine: maps, reductions, tumbling periods on an injected clock, malformed events,
several channels, the key bound."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caravan.events import Engine, ResultMessage, compile_documents
from caravan.events.engine import MAX_REJECTION_REASONS
from tests.samples import vote_cheer

pytestmark = pytest.mark.unit


def game_doc(period: int = 250) -> dict[str, Any]:
    """The sample, both reductions every `period` ms."""
    return vote_cheer(period)


class Harness:
    def __init__(self, docs: list[Any], now: int = 0, max_keys: int = 100_000) -> None:
        self.messages: list[ResultMessage] = []
        self.engine = Engine(
            compile_documents(docs),
            emit=self.messages.append,
            now_ms=now,
            max_keys_per_period=max_keys,
        )

    def results(self) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
        """reduction id -> key -> value, over the messages emitted so far (then cleared)."""
        out: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        for m in self.messages:
            body = json.loads(m.value)
            assert set(body) == {"channel", "id", "results"}
            out.setdefault(body["id"], {}).update(
                {tuple(r["key"]): r["value"] for r in body["results"]}
            )
        self.messages.clear()
        return out


def ev(key: list[Any], value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def test_votes_and_cheers_end_to_end() -> None:
    h = Harness([game_doc()])
    res = h.engine.ingest(
        "game",
        [
            ev(["vote"], "e4"),
            ev(["vote"], "e4"),
            ev(["vote"], "d4"),
            ev(["cheer", "red"], 5),
            ev(["cheer", "red"], 2),
            ev(["cheer", "blue"], 1.5),
            ev(["cheer", "blue"], -1),  # fails $gte 0
        ],
        now_ms=10,
    )
    assert (res.accepted, res.unmatched, res.rejected) == (6, 1, 0)
    assert h.engine.tick(249) == []  # the period is [0, 250)
    msgs = h.engine.tick(250)
    assert [m.id for m in msgs] == ["vote-count", "cheer-sum"]
    assert all(m.error == "" and m.channel == "game" for m in msgs)
    assert (msgs[0].period_start_ms, msgs[0].period_end_ms) == (0, 250)
    results = h.results()
    assert results["vote-count"] == {
        ("e4",): {"count": 2, "sum": 2, "min": 1, "max": 1, "average": 1.0},
        ("d4",): {"count": 1, "sum": 1, "min": 1, "max": 1, "average": 1.0},
    }
    assert results["cheer-sum"][("red",)] == {
        "count": 2,
        "sum": 7,
        "min": 2,
        "max": 5,
        "average": 3.5,
    }
    assert results["cheer-sum"][("blue",)]["sum"] == 1.5


def test_message_wire_shape() -> None:
    h = Harness([game_doc()])
    h.engine.ingest("game", [ev(["vote"], "a")], now_ms=0)
    (msg,) = h.engine.tick(300)
    assert msg.to_wire() == {
        "error": "",
        "value": json.dumps(
            {
                "channel": "game",
                "id": "vote-count",
                "results": [
                    {
                        "key": ["a"],
                        "value": {"count": 1, "sum": 1, "min": 1, "max": 1, "average": 1.0},
                    }
                ],
            },
            separators=(",", ":"),
        ),
    }


def test_windows_are_tumbling_and_only_count_their_period() -> None:
    h = Harness([game_doc(period=100)], now=1_000)
    h.engine.ingest("game", [ev(["vote"], "a")], now_ms=1_010)
    h.engine.tick(1_100)
    assert h.results()["vote-count"][("a",)]["count"] == 1
    # Second period: only its own events.
    h.engine.ingest("game", [ev(["vote"], "a"), ev(["vote"], "b")], now_ms=1_150)
    msgs = h.engine.tick(1_200)
    assert (msgs[0].period_start_ms, msgs[0].period_end_ms) == (1_100, 1_200)
    assert h.results()["vote-count"] == {
        ("a",): {"count": 1, "sum": 1, "min": 1, "max": 1, "average": 1.0},
        ("b",): {"count": 1, "sum": 1, "min": 1, "max": 1, "average": 1.0},
    }
    # A period without events emits nothing.
    assert h.engine.tick(1_300) == []


def test_windows_are_aligned_to_multiples_of_the_period() -> None:
    h = Harness([game_doc(period=250)], now=1_234)
    assert h.engine.next_deadline == 1_250
    h.engine.ingest("game", [ev(["vote"], "a")], now_ms=1_240)
    (msg,) = h.engine.tick(1_250)
    assert (msg.period_start_ms, msg.period_end_ms) == (1_000, 1_250)
    assert h.engine.next_deadline == 1_500


def test_ingest_closes_due_windows_before_adding() -> None:
    """A late ticker must not put new events in an old period."""
    h = Harness([game_doc(period=100)])
    h.engine.ingest("game", [ev(["vote"], "old")], now_ms=50)
    h.engine.ingest("game", [ev(["vote"], "new")], now_ms=130)  # no tick in between
    assert list(h.results()["vote-count"]) == [("old",)]
    h.engine.tick(200)
    assert list(h.results()["vote-count"]) == [("new",)]


def test_a_long_gap_closes_once_and_realigns() -> None:
    h = Harness([game_doc(period=100)])
    h.engine.ingest("game", [ev(["vote"], "a")], now_ms=10)
    msgs = h.engine.tick(10_050)
    assert len(msgs) == 1 and msgs[0].period_end_ms == 100
    assert h.engine.next_deadline == 10_100


def test_different_periods_close_independently() -> None:
    doc = game_doc()
    doc["event"]["game"]["reductions"][1]["period"] = 1_000
    h = Harness([doc])
    h.engine.ingest("game", [ev(["vote"], "a"), ev(["cheer", "red"], 1)], now_ms=0)
    assert [m.id for m in h.engine.tick(250)] == ["vote-count"]
    assert h.engine.tick(999) == []
    assert [m.id for m in h.engine.tick(1_000)] == ["cheer-sum"]


def test_non_numeric_values_are_counted_but_not_summed() -> None:
    doc = {
        "version": "1.7.0",
        "event": {
            "c": {
                "maps": [
                    {
                        "id": "m",
                        "where": {"key": ["k"], "name": "<v>"},
                        "key": ["k"],
                        "value": "<v>",
                    }
                ],
                "reductions": [
                    {
                        "id": "r",
                        "where": {"key": ["k"]},
                        "key": ["all"],
                        "value": ["$min", "$max"],
                        "period": 10,
                    }
                ],
            }
        },
    }
    h = Harness([doc])
    h.engine.ingest("c", [ev(["k"], v) for v in ("x", True, None, {"a": 1}, 3, 1.5)], 0)
    h.engine.tick(10)
    assert h.results()["r"][("all",)] == {
        "count": 6,
        "sum": 4.5,
        "min": 1.5,
        "max": 3,
        "average": 2.25,
    }
    h.engine.ingest("c", [ev(["k"], "only strings")], 10)
    h.engine.tick(20)
    assert h.results()["r"][("all",)] == {
        "count": 1,
        "sum": None,
        "min": None,
        "max": None,
        "average": None,
    }


def test_map_with_literal_key_and_value_from_key_binding() -> None:
    doc = {
        "version": "1.7.0",
        "event": {
            "c": {
                "maps": [
                    {
                        "id": "m",
                        "where": {"key": ["click", "<x>", "<y>"]},
                        "key": ["clicks", "<y>", "at", "<x>"],
                        "value": "<x>",
                    }
                ],
                "reductions": [
                    {
                        "id": "r",
                        "where": {"key": ["clicks", "<y>", "at", "<x>"]},
                        "key": ["<y>", "<x>"],
                        "value": ["$max"],
                        "period": 10,
                    }
                ],
            }
        },
    }
    h = Harness([doc])
    h.engine.ingest("c", [ev(["click", 3, "top"], None), ev(["click", 4, "top"], None)], 0)
    h.engine.tick(10)
    assert h.results()["r"] == {
        ("top", 3): {"count": 1, "sum": 3, "min": 3, "max": 3, "average": 3.0},
        ("top", 4): {"count": 1, "sum": 4, "min": 4, "max": 4, "average": 4.0},
    }


def test_value_binding_in_a_key_needs_a_string_or_number() -> None:
    doc = {
        "version": "1.7.0",
        "event": {
            "c": {
                "maps": [
                    {
                        "id": "m",
                        "where": {"key": ["pick"], "name": "<v>"},
                        "key": ["<v>"],
                        "value": 1,
                    }
                ],
                "reductions": [
                    {
                        "id": "r",
                        "where": {"key": ["<v>"]},
                        "key": ["<v>"],
                        "value": ["$count"],
                        "period": 10,
                    }
                ],
            }
        },
    }
    h = Harness([doc])
    res = h.engine.ingest("c", [ev(["pick"], "a"), ev(["pick"], [1]), ev(["pick"], 2)], 0)
    assert (res.accepted, res.unmatched) == (2, 1)
    h.engine.tick(10)
    assert set(h.results()["r"]) == {("a",), (2,)}


def test_reduction_where_filters_map_outputs() -> None:
    doc = game_doc()
    doc["event"]["game"]["reductions"].append(
        {
            "id": "big-cheers",
            "where": {"key": ["cheer", "<t>"], "$gt": 10},
            "key": ["big"],
            "value": ["$count"],
            "period": 250,
        }
    )
    h = Harness([doc])
    h.engine.ingest(
        "game", [ev(["cheer", "r"], 5), ev(["cheer", "b"], 50), ev(["cheer", "g"], 11)], now_ms=0
    )
    h.engine.tick(250)
    # Reductions aggregate the map output's value (the cheer amount here).
    assert h.results()["big-cheers"] == {
        ("big",): {"count": 2, "sum": 61, "min": 11, "max": 50, "average": 30.5}
    }


def test_one_event_feeds_every_matching_map() -> None:
    doc = game_doc()
    doc["event"]["game"]["maps"].append(
        {"id": "all-votes", "where": {"key": ["vote"]}, "key": ["vote", "any"], "value": 1}
    )
    h = Harness([doc])
    res = h.engine.ingest("game", [ev(["vote"], "a"), ev(["vote"], 7)], now_ms=0)
    assert res.accepted == 2  # 7 is not a string for "votes" but matches "all-votes"
    h.engine.tick(250)
    assert h.results()["vote-count"] == {
        ("a",): {"count": 1, "sum": 1, "min": 1, "max": 1, "average": 1.0},
        ("any",): {"count": 2, "sum": 2, "min": 1, "max": 1, "average": 1.0},
    }


def test_channels_are_independent_and_merge_across_documents() -> None:
    other = {
        "version": "1.7.0",
        "event": {
            "lobby": {
                "maps": [{"id": "votes", "where": {"key": ["vote"]}, "key": ["v"], "value": 1}],
                "reductions": [
                    {
                        "id": "vote-count",
                        "where": {"key": ["v"]},
                        "key": ["total"],
                        "value": ["$count"],
                        "period": 250,
                    }
                ],
            },
            "game": {
                "maps": [
                    {
                        "id": "extra",
                        "where": {"key": ["emote", "<e>"]},
                        "key": ["vote", "<e>"],
                        "value": 1,
                    }
                ]
            },
        },
    }
    h = Harness([game_doc(), other])
    h.engine.ingest("lobby", [ev(["vote"], "x")], now_ms=0)
    h.engine.ingest("game", [ev(["vote"], "x"), ev(["emote", "smile"], None)], now_ms=0)
    msgs = h.engine.tick(250)
    assert sorted((m.channel, m.id) for m in msgs) == [
        ("game", "vote-count"),
        ("lobby", "vote-count"),
    ]
    by_channel = {m.channel: json.loads(m.value) for m in msgs}
    assert by_channel["lobby"]["results"] == [
        {"key": ["total"], "value": {"count": 1, "sum": 1, "min": 1, "max": 1, "average": 1.0}}
    ]
    game_keys = [r["key"] for r in by_channel["game"]["results"]]
    assert game_keys == [["x"], ["smile"]]


def test_unknown_channel_counts_unmatched() -> None:
    h = Harness([game_doc()])
    res = h.engine.ingest("nope", [ev(["vote"], "a"), 3], now_ms=0)
    assert not res.known_channel
    assert (res.accepted, res.unmatched, res.rejected) == (0, 1, 1)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("vote", "event must be an object, got str"),
        (["vote"], "event must be an object, got list"),
        ({"value": 1}, 'event has no "key"'),
        ({"key": "vote", "value": 1}, '"key" must be an array'),
        ({"key": [], "value": 1}, '"key" must not be empty'),
        ({"key": ["vote", True], "value": 1}, "key[1] must be a string or a number"),
        ({"key": [["a"]], "value": 1}, "key[0] must be a string or a number"),
        ({"key": [None], "value": 1}, "key[0] must be a string or a number"),
        ({"key": ["a", float("inf")], "value": 1}, "key[1] must be a finite number"),
        ({"key": ["vote"]}, 'event has no "value"'),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(event: Any, reason: str) -> None:
    h = Harness([game_doc()])
    res = h.engine.ingest("game", [ev(["vote"], "ok"), event], now_ms=0)
    assert (res.accepted, res.rejected) == (1, 1)
    assert len(res.rejections) == 1
    assert res.rejections[0].index == 1
    assert res.rejections[0].reason.startswith(reason)


def test_null_value_is_a_value() -> None:
    h = Harness([game_doc()])
    res = h.engine.ingest("game", [ev(["vote"], None)], now_ms=0)
    assert (res.unmatched, res.rejected) == (1, 0)


def test_rejections_are_all_counted_but_reasons_are_capped() -> None:
    h = Harness([game_doc()])
    res = h.engine.ingest("game", [1] * (MAX_REJECTION_REASONS + 5), now_ms=0)
    assert res.rejected == MAX_REJECTION_REASONS + 5
    assert len(res.rejections) == MAX_REJECTION_REASONS
    d = res.to_dict()
    assert d["rejected"] == MAX_REJECTION_REASONS + 5
    assert d["rejections"][0] == {"index": 0, "reason": "event must be an object, got int"}


def test_key_bound_drops_new_keys_and_reports_it() -> None:
    h = Harness([game_doc()], max_keys=3)
    events = [ev(["vote"], f"o{i}") for i in range(5)] + [ev(["vote"], "o0")]
    res = h.engine.ingest("game", events, now_ms=0)
    assert res.accepted == 6
    assert res.dropped_keys == 2
    (msg,) = h.engine.tick(250)
    assert "2 event(s) with new keys were dropped" in msg.error
    assert "at most 3 distinct keys" in msg.error
    results = h.results()["vote-count"]
    assert list(results) == [("o0",), ("o1",), ("o2",)]
    assert results[("o0",)]["count"] == 2  # known keys keep counting
    # The bound is per period: the next period starts empty.
    res = h.engine.ingest("game", [ev(["vote"], "o4")], now_ms=300)
    assert res.dropped_keys == 0


def test_flush_emits_partial_windows() -> None:
    h = Harness([game_doc()])
    h.engine.ingest("game", [ev(["vote"], "a")], now_ms=10)
    (msg,) = h.engine.flush(100)
    assert (msg.period_start_ms, msg.period_end_ms) == (0, 100)
    assert h.engine.tick(250) == []


def test_empty_program_accepts_nothing() -> None:
    h = Harness([])
    assert h.engine.next_deadline is None
    res = h.engine.ingest("game", [ev(["vote"], "a")], now_ms=0)
    assert (res.known_channel, res.unmatched) == (False, 1)
    assert h.engine.tick(10**9) == []


def test_huge_sums_stay_valid_json() -> None:
    doc = game_doc()
    h = Harness([doc])
    h.engine.ingest(
        "game",
        [ev(["cheer", "r"], 1e308), ev(["cheer", "r"], 1e308), ev(["cheer", "i"], 10**400)],
        now_ms=0,
    )
    h.engine.tick(250)
    res = h.results()["cheer-sum"]
    assert res[("r",)]["sum"] is None and res[("r",)]["max"] == 1e308
    assert res[("i",)]["sum"] == 10**400 and res[("i",)]["average"] is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("vote"), st.sampled_from(["a", "b", "C", "c"])),
            st.tuples(
                st.sampled_from(["red", "blue"]),
                st.one_of(st.integers(-5, 5), st.floats(-5, 5), st.text(max_size=2)),
            ),
        ),
        max_size=60,
    )
)
def test_engine_agrees_with_a_naive_reference(items: list[tuple[str, Any]]) -> None:
    h = Harness([game_doc()])
    events = [ev(["vote"], v) if k == "vote" else ev(["cheer", k], v) for k, v in items]
    res = h.engine.ingest("game", events, now_ms=0)
    h.engine.tick(250)
    got = h.results()
    votes: dict[str, int] = {}
    cheers: dict[str, list[float]] = {}
    unmatched = 0
    for k, v in items:
        if k == "vote":
            votes[v] = votes.get(v, 0) + 1
        elif type(v) in (int, float) and v >= 0:
            cheers.setdefault(k, []).append(v)
        else:
            unmatched += 1
    assert res.unmatched == unmatched
    assert {k[0]: r["count"] for k, r in got.get("vote-count", {}).items()} == votes
    cheer = got.get("cheer-sum", {})
    assert set(cheer) == {(k,) for k in cheers}
    for k, vals in cheers.items():
        r = cheer[(k,)]
        assert r["count"] == len(vals)
        assert r["sum"] == pytest.approx(sum(vals))
        assert (r["min"], r["max"]) == (min(vals), max(vals))
