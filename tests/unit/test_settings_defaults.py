"""The built-in schema, the defaults document and defaults filling."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from caravan.settings import (
    defaults_from_schema,
    fill_defaults,
    load_builtin_schema,
    validate_settings,
)

pytestmark = pytest.mark.unit

BUILTIN_DEFAULTS = {
    "info": {"name": "caravan", "description": ""},
    "jobs": {"longPoll": {"defaultWaitSeconds": 300, "maxWaitSeconds": 600}},
    "events": {
        "resultsIdleTimeoutSeconds": 5,
        "maxResultsMessages": 10000,
        "maxKeysPerReduction": 100000,
    },
    "logs": {"maxReadBytes": 16 * 1024 * 1024, "followIdleTimeoutSeconds": 300},
    "app": {},
}


def _properties(node: Mapping[str, Any], path: str = "$") -> Iterator[tuple[str, Any]]:
    for name, sub in node.get("properties", {}).items():
        yield f"{path}.{name}", sub
        yield from _properties(sub, f"{path}.{name}")


# --- the built-in schema ------------------------------------------------------------------


def test_builtin_schema_is_a_valid_2020_12_schema_with_an_id() -> None:
    schema = load_builtin_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://")


def test_load_builtin_schema_returns_a_fresh_copy() -> None:
    first = load_builtin_schema()
    first["properties"].clear()
    assert load_builtin_schema()["properties"]


def test_every_builtin_property_has_type_description_and_default() -> None:
    for path, sub in _properties(load_builtin_schema()):
        assert {"type", "description", "default"} <= sub.keys(), path


def test_numbers_have_bounds_and_caravan_objects_are_closed() -> None:
    schema = load_builtin_schema()
    assert schema["additionalProperties"] is False
    for path, sub in _properties(schema):
        if sub["type"] in ("integer", "number"):
            assert "maximum" in sub, path
            assert "minimum" in sub or "exclusiveMinimum" in sub, path
        if sub["type"] == "object" and path != "$.app":
            assert sub["additionalProperties"] is False, path
    assert schema["properties"]["app"]["additionalProperties"] is True


def test_object_defaults_in_the_schema_agree_with_their_children() -> None:
    # The schema spells out full defaults on each section (generic tools use those);
    # they must say the same as the leaves, or the two readings of the schema diverge.
    for path, sub in _properties(load_builtin_schema()):
        if "properties" in sub:
            assert sub["default"] == defaults_from_schema(sub), path


# --- defaults ------------------------------------------------------------------------------


def test_builtin_defaults_document() -> None:
    schema = load_builtin_schema()
    assert defaults_from_schema(schema) == BUILTIN_DEFAULTS
    assert validate_settings(BUILTIN_DEFAULTS, schema) == []


def test_object_without_default_gets_its_defaulted_children_at_every_depth() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {
                "type": "object",
                "properties": {
                    "b": {"type": "object", "properties": {"c": {"type": "integer", "default": 1}}},
                    "d": {"type": "string"},
                },
            },
            "e": {"type": "object", "properties": {"f": {"type": "string"}}},
        },
    }
    # `d` and the whole of `e` have no default anywhere: they stay absent.
    assert defaults_from_schema(schema) == {"a": {"b": {"c": 1}}}


def test_explicit_parent_default_wins_and_children_fill_what_it_lacks() -> None:
    schema = {
        "properties": {
            "a": {
                "type": "object",
                "default": {"x": 10, "extra": True},
                "properties": {"x": {"default": 1}, "y": {"default": 2}},
            }
        }
    }
    assert defaults_from_schema(schema) == {"a": {"x": 10, "extra": True, "y": 2}}


def test_non_object_defaults_and_falsy_defaults_are_kept() -> None:
    schema = {
        "properties": {
            "none": {"default": None},
            "zero": {"default": 0},
            "empty": {"default": ""},
            "list": {"type": "array", "default": [1, 2]},
            "nullable": {"type": ["object", "null"], "default": None, "properties": {"x": {}}},
        }
    }
    assert defaults_from_schema(schema) == {
        "none": None,
        "zero": 0,
        "empty": "",
        "list": [1, 2],
        "nullable": None,
    }


def test_root_default_is_ignored() -> None:
    schema = {"default": {"ignored": 1}, "properties": {"a": {"default": 2}}}
    assert defaults_from_schema(schema) == {"a": 2}


def test_ref_to_defs_is_followed_and_own_default_beats_the_referenced_one() -> None:
    schema = {
        "$defs": {
            "seconds": {"type": "integer", "minimum": 1, "default": 30},
            "timeouts": {"type": "object", "properties": {"read": {"$ref": "#/$defs/seconds"}}},
        },
        "properties": {
            "t": {"$ref": "#/$defs/timeouts"},
            "w": {"$ref": "#/$defs/seconds", "default": 5},
        },
    }
    assert defaults_from_schema(schema) == {"t": {"read": 30}, "w": 5}


def test_ref_with_root_id_and_escaped_pointer() -> None:
    schema = {
        "$id": "https://example.com/s.json",
        "$defs": {"a/b": {"default": "slash"}, "c~d": {"default": "tilde"}},
        "properties": {
            "x": {"$ref": "https://example.com/s.json#/$defs/a~1b"},
            "y": {"$ref": "#/$defs/c~0d"},
            "z": {"$ref": "https://elsewhere.example/s.json#/$defs/a~1b"},
            "u": {"$ref": "#/$defs/missing"},
        },
    }
    assert defaults_from_schema(schema) == {"x": "slash", "y": "tilde"}


def test_recursive_schema_terminates() -> None:
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"value": {"default": 0}, "child": {"$ref": "#/$defs/node"}},
            }
        },
        "properties": {"tree": {"$ref": "#/$defs/node"}},
    }
    assert defaults_from_schema(schema) == {"tree": {"value": 0}}


def test_all_of_members_are_merged() -> None:
    schema = {
        "properties": {
            "a": {
                "allOf": [
                    {"type": "object", "properties": {"x": {"default": 1}}},
                    {"properties": {"y": {"default": 2}, "x": {"minimum": 0}}},
                ]
            }
        }
    }
    assert defaults_from_schema(schema) == {"a": {"x": 1, "y": 2}}


def test_properties_of_a_non_object_type_are_ignored() -> None:
    schema = {"properties": {"s": {"type": "string", "properties": {"x": {"default": 1}}}}}
    assert defaults_from_schema(schema) == {}


def test_boolean_subschemas_have_no_defaults() -> None:
    schema = {"properties": {"t": True, "f": False, "d": {"default": 1}}}
    assert defaults_from_schema(schema) == {"d": 1}


# --- filling -------------------------------------------------------------------------------


def test_fill_keeps_present_values_even_wrong_ones() -> None:
    schema = load_builtin_schema()
    document = {
        "info": {"name": 42},
        "jobs": {"longPoll": "nonsense"},
        "events": None,
        "app": {"mine": [1]},
    }
    filled = fill_defaults(document, schema)
    assert filled["info"] == {"name": 42, "description": ""}
    assert filled["jobs"] == {"longPoll": "nonsense"}
    assert filled["events"] is None
    assert filled["logs"] == BUILTIN_DEFAULTS["logs"]
    assert filled["app"] == {"mine": [1]}


def test_fill_fills_at_every_depth() -> None:
    filled = fill_defaults({"jobs": {"longPoll": {"maxWaitSeconds": 900}}}, load_builtin_schema())
    assert filled["jobs"] == {"longPoll": {"defaultWaitSeconds": 300, "maxWaitSeconds": 900}}
    assert filled["info"] == BUILTIN_DEFAULTS["info"]


def test_fill_does_not_mutate_its_input_nor_share_objects_with_it() -> None:
    schema = load_builtin_schema()
    document = {"jobs": {"longPoll": {}}, "app": {"nested": {"list": [1]}}}
    before = copy.deepcopy(document)
    filled = fill_defaults(document, schema)
    assert document == before
    filled["app"]["nested"]["list"].append(2)
    filled["jobs"]["longPoll"]["x"] = 1
    assert document == before


def test_filled_defaults_are_not_shared_with_the_schema() -> None:
    schema = load_builtin_schema()
    filled = fill_defaults({}, schema)
    filled["jobs"]["longPoll"]["maxWaitSeconds"] = 1
    assert schema["properties"]["jobs"]["default"]["longPoll"]["maxWaitSeconds"] == 600
    assert defaults_from_schema(schema)["jobs"]["longPoll"]["maxWaitSeconds"] == 600


def test_arrays_are_not_merged_nor_entered() -> None:
    schema = {
        "properties": {
            "tags": {"type": "array", "default": ["a", "b"]},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"x": {"default": 1}}},
            },
        }
    }
    filled = fill_defaults({"tags": ["c"], "items": [{}]}, schema)
    assert filled == {"tags": ["c"], "items": [{}]}


def test_fill_enters_values_described_by_pattern_or_additional_properties() -> None:
    schema = {
        "properties": {
            "pools": {
                "type": "object",
                "patternProperties": {"^gpu-": {"properties": {"gpus": {"default": 1}}}},
                "additionalProperties": {"properties": {"size": {"default": 3}}},
            }
        }
    }
    filled = fill_defaults({"pools": {"gpu-a": {}, "cpu": {"size": 9}, "web": {}}}, schema)
    assert filled == {"pools": {"gpu-a": {"gpus": 1}, "cpu": {"size": 9}, "web": {"size": 3}}}


def test_fill_returns_non_object_documents_unchanged() -> None:
    schema = load_builtin_schema()
    assert fill_defaults([1, 2], schema) == [1, 2]
    assert fill_defaults(None, schema) is None
