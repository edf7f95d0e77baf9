"""Where clauses: key patterns, bindings, type checks, every operator, $or/$and."""

from __future__ import annotations

from typing import Any

import pytest

from caravan.events.document import parse_documents
from caravan.events.where import Slots, compile_where

pytestmark = pytest.mark.unit

NO_MATCH = None


def match(where: dict[str, Any], key: list[Any], value: Any) -> dict[str, Any] | None:
    """Compile ``where`` (as a map's clause) and return its bindings, or None."""
    doc = {
        "version": "1.7.0",
        "event": {"c": {"maps": [{"id": "m", "where": where, "key": ["out"], "value": 1}]}},
    }
    specs, errors = parse_documents([doc])
    assert not errors, errors
    spec = specs[0].channels[0].maps[0].where
    slots = Slots()
    matcher = compile_where(spec, slots)
    env = slots.new_env()
    if not matcher(key, value, env):
        return None
    return {name: env[i] for name, i in slots.index.items()}


def test_the_spec_example() -> None:
    where = {"key": ["cheer", "<team>"], "name": "<n>", "type": "number", "$gte": 0}
    assert match(where, ["cheer", "red"], 5) == {"team": "red", "n": 5}
    assert match(where, ["cheer", "red"], -1) is NO_MATCH
    assert match(where, ["cheer", "red"], "5") is NO_MATCH
    assert match(where, ["cheer"], 5) is NO_MATCH
    assert match(where, ["cheer", "red", "x"], 5) is NO_MATCH
    assert match(where, ["boo", "red"], 5) is NO_MATCH


@pytest.mark.parametrize(
    ("pattern", "key", "bindings"),
    [
        (["vote"], ["vote"], {}),
        (["vote"], ["Vote"], NO_MATCH),  # key literals are case-sensitive
        (["<a>"], ["x"], {"a": "x"}),
        (["<a>", "<b>"], [1, "y"], {"a": 1, "b": "y"}),
        (["a", "<b>", "c"], ["a", 2.5, "c"], {"b": 2.5}),
        (["a", "<b>", "c"], ["a", 2.5, "d"], NO_MATCH),
        (["<a>", "b"], ["z", "b"], {"a": "z"}),
        ([1, "<b>"], [1.0, "q"], {"b": "q"}),  # numbers compare by value
        ([1, "<b>"], ["1", "q"], NO_MATCH),  # but a string is not a number
    ],
)
def test_key_patterns(pattern: list[Any], key: list[Any], bindings: dict[str, Any] | None) -> None:
    assert match({"key": pattern}, key, "v") == bindings


def test_no_key_matches_any_key() -> None:
    assert match({"name": "<v>"}, ["anything", 1], "x") == {"v": "x"}
    assert match({}, ["k"], None) == {}


@pytest.mark.parametrize(
    ("vtype", "value", "ok"),
    [
        ("number", 1, True),
        ("number", 1.5, True),
        ("number", True, False),
        ("number", "1", False),
        ("number", None, False),
        ("string", "x", True),
        ("string", 1, False),
        ("string", ["x"], False),
    ],
)
def test_type(vtype: str, value: Any, ok: bool) -> None:
    assert (match({"type": vtype}, ["k"], value) is not None) is ok


@pytest.mark.parametrize(
    ("op", "operand", "value", "ok"),
    [
        ("$eq", 5, 5, True),
        ("$eq", 5, 5.0, True),
        ("$eq", 5, "5", False),
        ("$eq", 1, True, False),  # bool is not a number
        ("$eq", True, True, True),
        ("$eq", True, 1, False),
        ("$eq", None, None, True),
        ("$eq", None, 0, False),
        ("$eq", "E4", "e4", True),  # case-insensitive by default
        ("$neq", 5, 6, True),
        ("$neq", 5, 5, False),
        ("$neq", 5, "5", True),
        ("$neq", "red", "RED", False),
        ("$gt", 3, 4, True),
        ("$gt", 3, 3, False),
        ("$gt", 3, "4", False),
        ("$gte", 3, 3, True),
        ("$gte", 3, 2.9, False),
        ("$lt", 3, 2, True),
        ("$lt", 3, 3, False),
        ("$lt", 3, True, False),
        ("$lte", 3, 3, True),
        ("$lte", 3, 3.5, False),
        ("$gt", "m", "n", True),
        ("$gt", "m", "a", False),
        ("$gt", "m", 5, False),
        ("$lt", "b", "a", True),
    ],
)
def test_comparisons(op: str, operand: Any, value: Any, ok: bool) -> None:
    assert (match({op: operand}, ["k"], value) is not None) is ok


@pytest.mark.parametrize(
    ("operand", "value", "ok"),
    [
        (["a", "b"], "a", True),
        (["a", "b"], "B", True),
        (["a", "b"], "c", False),
        ([1, 2], 2, True),
        ([1, 2], 2.0, True),
        ([1, 2], "2", False),
        ([1, 2], True, False),
        ([True, None], True, True),
        ([True, None], None, True),
        ([True, None], False, False),
        (["a"], ["a"], False),
    ],
)
def test_in(operand: list[Any], value: Any, ok: bool) -> None:
    assert (match({"$in": operand}, ["k"], value) is not None) is ok


@pytest.mark.parametrize(
    ("clause", "value", "ok"),
    [
        ({"$search": "ee"}, "cheers", True),
        ({"$search": "EE"}, "cheers", True),
        ({"$search": "EE", "$caseSensitive": True}, "cheers", False),
        ({"$search": "x"}, "cheers", False),
        ({"$search": "1"}, 123, False),  # only strings are searched
        ({"$searchIn": ["red team", "blue team"]}, "red", True),
        ({"$searchIn": ["red team", "blue team"]}, "BLUE", True),
        ({"$searchIn": ["red team"], "$caseSensitive": True}, "RED", False),
        ({"$searchIn": "red team"}, "team", True),
        ({"$searchIn": ["red team"]}, "green", False),
        ({"$searchIn": ["1"]}, 1, False),
    ],
)
def test_search(clause: dict[str, Any], value: Any, ok: bool) -> None:
    assert (match(clause, ["k"], value) is not None) is ok


@pytest.mark.parametrize(
    ("clause", "value", "ok"),
    [
        ({"$eq": "Red", "$caseSensitive": True}, "red", False),
        ({"$eq": "Red", "$caseSensitive": True}, "Red", True),
        ({"$neq": "Red", "$caseSensitive": True}, "red", True),
        ({"$in": ["Red"], "$caseSensitive": True}, "red", False),
        ({"$in": ["Red"], "$caseSensitive": False}, "rED", True),
        ({"$eq": "straße"}, "STRASSE", True),  # casefold, not just lower()
    ],
)
def test_case_sensitivity(clause: dict[str, Any], value: Any, ok: bool) -> None:
    assert (match(clause, ["k"], value) is not None) is ok


def test_several_tests_in_one_clause_all_apply() -> None:
    clause = {"key": ["score"], "type": "number", "$gte": 0, "$lt": 10, "$neq": 5}
    assert match(clause, ["score"], 0) == {}
    assert match(clause, ["score"], 9.5) == {}
    assert match(clause, ["score"], 5) is NO_MATCH
    assert match(clause, ["score"], 10) is NO_MATCH


def test_or_keeps_bindings_of_the_matching_branch() -> None:
    clause = {
        "$or": [
            {"key": ["vote", "<choice>"]},
            {"key": ["ballot", "<choice>"], "$eq": "yes"},
            {"key": ["<choice>"], "type": "string"},
        ]
    }
    assert match(clause, ["vote", "a"], 1) == {"choice": "a"}
    assert match(clause, ["ballot", "b"], "YES") == {"choice": "b"}
    assert match(clause, ["ballot", "b"], "no") is NO_MATCH
    assert match(clause, ["c"], "s") == {"choice": "c"}
    assert match(clause, ["c"], 1) is NO_MATCH


def test_and_combines_bindings_of_every_branch() -> None:
    clause = {
        "key": ["move", "<dir>"],
        "$and": [
            {"name": "<speed>", "type": "number"},
            {"$or": [{"$gt": 0}, {"$lt": -10}]},
        ],
    }
    assert match(clause, ["move", "up"], 3) == {"dir": "up", "speed": 3}
    assert match(clause, ["move", "up"], -20) == {"dir": "up", "speed": -20}
    assert match(clause, ["move", "up"], -5) is NO_MATCH
    assert match(clause, ["move", "up"], "3") is NO_MATCH


def test_key_and_or_in_the_same_clause_both_apply() -> None:
    clause = {"key": ["pick", "<p>"], "$or": [{"$eq": "a"}, {"$eq": "b"}]}
    assert match(clause, ["pick", "x"], "b") == {"p": "x"}
    assert match(clause, ["pick", "x"], "c") is NO_MATCH
    assert match(clause, ["nope", "x"], "a") is NO_MATCH
