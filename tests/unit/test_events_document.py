"""Validation of events documents: every error, each with a path naming doc/channel/field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from caravan.events import EventsValidationError, compile_documents, validate_documents
from tests.samples import vote_cheer, without

pytestmark = pytest.mark.unit


def vote_doc() -> dict[str, Any]:
    """The sample with one reduction (vote-count) every 250 ms."""
    return without(vote_cheer(period=250), "cheer-sum")


def errors_of(docs: Any) -> dict[str, str]:
    return {e.path: e.message for e in validate_documents(docs)}


def test_valid_document_has_no_errors() -> None:
    assert validate_documents([vote_doc()]) == []
    assert validate_documents([]) == []


def test_not_an_array() -> None:
    assert list(errors_of({"version": "1.7.0"})) == ["mapreduce"]


def test_document_level_errors() -> None:
    errs = errors_of([42, {"version": "2.0.0", "event": {}}, {"version": "1.7.0"}])
    assert set(errs) == {"mapreduce[0]", "mapreduce[1].version", "mapreduce[2].event"}
    assert "1.7.0" in errs["mapreduce[1].version"]


def test_every_error_is_reported_with_its_path_and_id() -> None:
    doc = vote_doc()
    maps = doc["event"]["game"]["maps"]
    maps[1]["where"]["$gt"] = [1]
    maps[1]["where"]["type"] = "bool"
    maps[0]["source"] = "keyboard"
    doc["event"]["game"]["reductions"][0]["period"] = 0
    doc["event"]["game"]["reductions"][0]["value"] = ["$count", "$median"]
    errs = errors_of([vote_doc(), doc])
    base = "mapreduce[1].event.game"
    assert set(errs) == {
        f"{base}.maps[1].where.$gt",
        f"{base}.maps[1].where.type",
        f"{base}.maps[0].source",
        f"{base}.reductions[0].period",
        f"{base}.reductions[0].value[1]",
    }
    assert errs[f"{base}.maps[1].where.$gt"].startswith("map 'cheers':")
    assert errs[f"{base}.reductions[0].period"].startswith("reduction 'vote-count':")
    assert "$median" in errs[f"{base}.reductions[0].value[1]"]


def test_compile_raises_with_all_errors() -> None:
    doc = vote_doc()
    doc["event"]["game"]["maps"][0]["where"]["$lt"] = {}
    doc["event"]["game"]["maps"][1]["id"] = ""
    with pytest.raises(EventsValidationError) as info:
        compile_documents([doc])
    paths = [e.path for e in info.value.errors]
    assert "mapreduce[0].event.game.maps[0].where.$lt" in paths
    assert "mapreduce[0].event.game.maps[1].id" in paths
    assert "maps[0].where.$lt" in str(info.value)


@pytest.mark.parametrize(
    ("where", "field", "needle"),
    [
        ({"key": "vote"}, "key", "non-empty array"),
        ({"key": []}, "key", "non-empty array"),
        ({"key": ["vote", True]}, "key[1]", "strings, finite numbers"),
        ({"key": ["<>"]}, "key[0]", "not a valid binding"),
        ({"key": ["<a>", "<a>"]}, "key[1]", "appears twice"),
        ({"name": "n"}, "name", "binding like"),
        ({"type": "boolean"}, "type", '"string" or "number"'),
        ({"$eq": [1]}, "$eq", "a string, a number, a boolean or null"),
        ({"$gte": None}, "$gte", "a number or a string"),
        ({"$gt": "a", "type": "number"}, "$gt", "could never match"),
        ({"$in": []}, "$in", "non-empty array"),
        ({"$in": [[1]]}, "$in", "non-empty array"),
        ({"$search": 3}, "$search", "must be a string"),
        ({"$searchIn": [1]}, "$searchIn", "string or a"),
        ({"$search": "a", "type": "number"}, "type", "apply to strings"),
        ({"$caseSensitive": "yes"}, "$caseSensitive", "boolean"),
        ({"$or": []}, "$or", "non-empty array"),
        ({"$and": {}}, "$and", "non-empty array"),
        ({"$gtee": 1}, "$gtee", "unknown field"),
        ({"$or": [{"$lt": []}]}, "$or[0].$lt", "a number or a string"),
    ],
)
def test_where_errors(where: dict[str, Any], field: str, needle: str) -> None:
    doc = vote_doc()
    doc["event"]["game"]["maps"][0] = {"id": "m", "where": where, "key": ["x"], "value": 1}
    errs = errors_of([doc])
    path = f"mapreduce[0].event.game.maps[0].where.{field}"
    assert path in errs, errs
    assert needle in errs[path]
    assert errs[path].startswith("map 'm':")


def test_where_must_be_an_object() -> None:
    doc = vote_doc()
    doc["event"]["game"]["maps"][0]["where"] = ["vote"]
    assert "mapreduce[0].event.game.maps[0].where" in errors_of([doc])


def test_unbound_bindings_in_templates() -> None:
    doc = vote_doc()
    m = doc["event"]["game"]["maps"][0]
    m["key"] = ["vote", "<opt>"]
    m["value"] = "<count>"
    r = doc["event"]["game"]["reductions"][0]
    r["key"] = ["<option>"]
    errs = errors_of([doc])
    assert "<opt>" in errs["mapreduce[0].event.game.maps[0].key[1]"]
    assert "<count>" in errs["mapreduce[0].event.game.maps[0].value"]
    assert "not bound" in errs["mapreduce[0].event.game.reductions[0].key[0]"]


def test_or_bindings_must_be_bound_in_every_branch() -> None:
    doc = vote_doc()
    doc["event"]["game"]["maps"][0] = {
        "id": "m",
        "where": {"$or": [{"key": ["a", "<x>"]}, {"key": ["b", "<y>"]}]},
        "key": ["<x>"],
        "value": 1,
    }
    assert "mapreduce[0].event.game.maps[0].key[0]" in errors_of([doc])
    doc["event"]["game"]["maps"][0]["where"]["$or"][1] = {"key": ["b", "<x>"]}
    assert errors_of([doc]) == {}


def test_binding_bound_twice_on_one_path() -> None:
    doc = vote_doc()
    doc["event"]["game"]["maps"][0] = {
        "id": "m",
        "where": {"key": ["a", "<x>"], "$and": [{"name": "<x>"}]},
        "key": ["<x>"],
        "value": 1,
    }
    errs = errors_of([doc])
    assert "bound more than once" in errs["mapreduce[0].event.game.maps[0].where"]


def test_map_and_reduction_required_fields() -> None:
    doc = vote_doc()
    doc["event"]["game"]["maps"].append({"id": "bare"})
    doc["event"]["game"]["reductions"].append({"id": "r", "extra": 1})
    errs = errors_of([doc])
    m = "mapreduce[0].event.game.maps[2]"
    r = "mapreduce[0].event.game.reductions[1]"
    for f in ("where", "key", "value"):
        assert f"{m}.{f}" in errs
    for f in ("where", "key", "value", "period", "extra"):
        assert f"{r}.{f}" in errs
    assert errs[f"{r}.extra"].startswith("reduction 'r': unknown field")


@pytest.mark.parametrize("period", [0, -5, 2.5, True, "250", 86_400_001])
def test_bad_periods(period: Any) -> None:
    doc = vote_doc()
    doc["event"]["game"]["reductions"][0]["period"] = period
    assert "mapreduce[0].event.game.reductions[0].period" in errors_of([doc])


def test_duplicate_ids_across_documents_name_the_first() -> None:
    first = vote_doc()
    second = copy.deepcopy(first)
    errs = errors_of([first, second])
    path = "mapreduce[1].event.game.maps[0].id"
    assert "duplicate map id" in errs[path]
    assert "mapreduce[0].event.game.maps[0]" in errs[path]
    assert "mapreduce[1].event.game.reductions[0].id" in errs
    # The same ids on another channel are fine.
    second["event"] = {"other": second["event"]["game"]}
    assert errors_of([first, second]) == {}


def test_channel_names_with_odd_characters_are_quoted_in_paths() -> None:
    doc = vote_doc()
    ch = doc["event"].pop("game")
    ch["maps"][0]["value"] = "<nope>"
    doc["event"]["my game"] = ch
    assert 'mapreduce[0].event["my game"].maps[0].value' in errors_of([doc])


def test_compile_copies_the_documents() -> None:
    doc = vote_doc()
    program = compile_documents([doc])
    doc["event"]["game"]["maps"].clear()
    assert len(program.documents[0]["event"]["game"]["maps"]) == 2
    assert len(program.channels["game"].maps) == 2
