"""Property tests: filling and validation over documents generated from the schemas."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caravan.settings import (
    RuntimeSettings,
    defaults_from_schema,
    fill_defaults,
    json_path,
    load_builtin_schema,
    validate_settings,
)

pytestmark = pytest.mark.unit

SCHEMA = load_builtin_schema()
DEFAULTS = defaults_from_schema(SCHEMA)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


def _typed(node: Mapping[str, Any], *, in_bounds: bool) -> st.SearchStrategy[Any]:
    """Values of the node's declared type; within its bounds when `in_bounds`."""
    kind = node["type"]
    if kind == "object" and "properties" in node:
        optional = {k: _typed(v, in_bounds=in_bounds) for k, v in node["properties"].items()}
        return st.fixed_dictionaries({}, optional=optional)
    if kind == "object":
        return st.dictionaries(st.text(max_size=5), json_values, max_size=3)
    if kind == "string":
        if in_bounds:
            return st.text(min_size=node.get("minLength", 0), max_size=node.get("maxLength", 20))
        return st.text(max_size=300)
    low = node.get("minimum", node.get("exclusiveMinimum", -(10**12)))
    high = node.get("maximum", 10**12)
    if kind == "integer":
        return st.integers(low, high) if in_bounds else st.integers(-(10**12), 10**12)
    if in_bounds:
        floats = st.floats(low, high, exclude_min="exclusiveMinimum" in node)
        return floats | st.integers(max(1, int(low)), int(high))
    return st.floats(allow_nan=False, allow_infinity=False) | st.integers()


typed_documents = _typed(SCHEMA, in_bounds=False)
valid_shaped_documents = _typed(SCHEMA, in_bounds=True)


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            yield from _leaves(sub, (*path, key))
    else:
        yield path, value


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _out_of_bounds(node: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, str):
        return not node.get("minLength", 0) <= len(value) <= node.get("maxLength", len(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            return True
        if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
            return True
        return "maximum" in node and value > node["maximum"]
    return False


def _expected_error_paths(document: dict[str, Any]) -> set[str]:
    """Where errors must be, worked out without jsonschema: each out-of-bounds knob."""
    expected = set()
    for path, value in _leaves(document):
        if not path or path[0] == "app":
            continue  # free-form: nothing can be out of bounds there
        node: Mapping[str, Any] = SCHEMA
        for key in path:
            node = node["properties"][key]
        if _out_of_bounds(node, value):
            expected.add(json_path(path))
    long_poll = document["jobs"]["longPoll"]
    if long_poll["defaultWaitSeconds"] > long_poll["maxWaitSeconds"]:
        expected.add("$.jobs.longPoll.defaultWaitSeconds")
    return expected


@settings(deadline=None)
@given(typed_documents | st.dictionaries(st.text(max_size=5), json_values))
def test_fill_is_idempotent_pure_and_never_overwrites(document: dict[str, Any]) -> None:
    before = copy.deepcopy(document)
    filled = fill_defaults(document, SCHEMA)
    assert document == before
    assert fill_defaults(filled, SCHEMA) == filled
    for path, value in _leaves(document):
        if isinstance(value, dict):
            assert isinstance(_at(filled, path), dict)  # an empty object may gain defaults
        else:
            assert _at(filled, path) == value


@settings(deadline=None)
@given(typed_documents)
def test_filled_typed_documents_report_exactly_their_out_of_bounds_values(
    document: dict[str, Any],
) -> None:
    filled = fill_defaults(document, SCHEMA)
    errors = validate_settings(filled, SCHEMA)
    assert {e.path for e in errors} == _expected_error_paths(filled)
    assert errors == sorted(errors, key=lambda e: (e.path.split("."), e.keyword, e.message))


@settings(deadline=None)
@given(valid_shaped_documents)
def test_in_bounds_documents_are_valid_unless_the_waits_cross(document: dict[str, Any]) -> None:
    filled = fill_defaults(document, SCHEMA)
    long_poll = filled["jobs"]["longPoll"]
    errors = validate_settings(filled, SCHEMA)
    if long_poll["defaultWaitSeconds"] <= long_poll["maxWaitSeconds"]:
        assert errors == []
        settings_view = RuntimeSettings.from_document(filled)
        assert settings_view.long_poll_max_wait_seconds == long_poll["maxWaitSeconds"]
    else:
        assert [e.keyword for e in errors] == ["crossField"]


# --- any schema ----------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c", "d"])
leaf_schemas = st.one_of(
    st.integers().map(lambda v: {"type": "integer", "default": v}),
    st.text(max_size=3).map(lambda v: {"type": "string", "default": v}),
    st.lists(st.integers(), max_size=2).map(lambda v: {"type": "array", "default": v}),
    st.just({"type": "integer"}),
    st.just({"type": ["string", "null"], "default": None}),
)


def _object_schema(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    properties = st.dictionaries(names, children, max_size=4)
    own_default = st.sampled_from([{}, {"default": {}}, {"default": {"z": 1}}])
    return st.tuples(properties, own_default).map(
        lambda pair: {"type": "object", "properties": pair[0], **pair[1]}
    )


object_schemas = _object_schema(st.recursive(leaf_schemas, _object_schema, max_leaves=12))


@settings(deadline=None)
@given(object_schemas, st.dictionaries(names, json_values, max_size=4))
def test_for_any_schema_filling_empty_gives_the_valid_defaults(
    schema: dict[str, Any], document: dict[str, Any]
) -> None:
    defaults = defaults_from_schema(schema)
    assert fill_defaults({}, schema) == defaults
    assert validate_settings(defaults, schema) == []
    assert fill_defaults(defaults, schema) == defaults
    filled = fill_defaults(document, schema)
    assert fill_defaults(filled, schema) == filled


def test_builtin_defaults_as_a_settings_view() -> None:
    assert RuntimeSettings.from_document(DEFAULTS) == RuntimeSettings.defaults()
