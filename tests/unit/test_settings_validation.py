"""Validation errors (every one, with its JSON path) and reading ConfigMap text."""

from __future__ import annotations

from typing import Any

import pytest

from caravan.settings import (
    SettingsError,
    defaults_from_schema,
    fill_defaults,
    json_path,
    load_builtin_schema,
    parse_settings_configmap_value,
    validate_settings,
)

pytestmark = pytest.mark.unit

SCHEMA = load_builtin_schema()


def _paths(document: object, schema: dict[str, Any] = SCHEMA) -> list[tuple[str, str]]:
    return [(e.path, e.keyword) for e in validate_settings(document, schema)]


def test_defaults_are_valid() -> None:
    assert validate_settings(defaults_from_schema(SCHEMA), SCHEMA) == []


def test_every_error_is_reported_with_its_path_in_a_stable_order() -> None:
    document = fill_defaults(
        {
            "zzz": 1,
            "info": {"name": "", "nick": "x"},
            "jobs": {"longPoll": {"defaultWaitSeconds": 0, "maxWaitSeconds": "long"}},
            "events": {"resultsIdleTimeoutSeconds": 0, "maxResultsMessages": 2.5},
            "logs": {"maxReadBytes": True, "followIdleTimeoutSeconds": 10**9},
            "app": [],
        },
        SCHEMA,
    )
    assert _paths(document) == [
        ("$", "additionalProperties"),
        ("$.app", "type"),
        ("$.events.maxResultsMessages", "type"),
        ("$.events.resultsIdleTimeoutSeconds", "exclusiveMinimum"),
        ("$.info", "additionalProperties"),
        ("$.info.name", "minLength"),
        ("$.jobs.longPoll.defaultWaitSeconds", "minimum"),
        ("$.jobs.longPoll.maxWaitSeconds", "type"),
        ("$.logs.followIdleTimeoutSeconds", "maximum"),
        ("$.logs.maxReadBytes", "type"),
    ]


def test_messages_are_clear_and_render_values_as_json() -> None:
    document = fill_defaults(
        {
            "zzz": 1,
            "jobs": {"longPoll": {"maxWaitSeconds": 3601}},
            "logs": {"maxReadBytes": None},
        },
        SCHEMA,
    )
    messages = {e.path: e.message for e in validate_settings(document, SCHEMA)}
    assert messages == {
        "$": 'unknown property "zzz" (allowed: "app", "events", "info", "jobs", "logs")',
        "$.jobs.longPoll.maxWaitSeconds": "3601 is greater than the maximum of 3600",
        "$.logs.maxReadBytes": "must be of type integer, got null",
    }


def test_long_values_are_shortened_in_messages() -> None:
    errors = validate_settings(fill_defaults({"info": {"name": "x" * 5000}}, SCHEMA), SCHEMA)
    assert [e.path for e in errors] == ["$.info.name"]
    assert len(errors[0].message) < 200


def test_missing_required_values_point_at_the_missing_value() -> None:
    assert _paths({"jobs": {"longPoll": {}}}) == [
        ("$.app", "required"),
        ("$.events", "required"),
        ("$.info", "required"),
        ("$.jobs.longPoll.defaultWaitSeconds", "required"),
        ("$.jobs.longPoll.maxWaitSeconds", "required"),
        ("$.logs", "required"),
    ]


def test_a_non_object_document_is_one_error_at_the_root() -> None:
    errors = validate_settings([1], SCHEMA)
    assert errors == [SettingsError("$", "must be of type object, got array [1]", "type")]


def test_cross_field_default_wait_must_not_exceed_max_wait() -> None:
    document = fill_defaults({"jobs": {"longPoll": {"maxWaitSeconds": 100}}}, SCHEMA)
    errors = validate_settings(document, SCHEMA)
    assert [e.to_dict() for e in errors] == [
        {
            "path": "$.jobs.longPoll.defaultWaitSeconds",
            "message": "defaultWaitSeconds (300) must not exceed maxWaitSeconds (100)",
        }
    ]
    equal = fill_defaults({"jobs": {"longPoll": {"maxWaitSeconds": 300}}}, SCHEMA)
    assert validate_settings(equal, SCHEMA) == []


def test_cross_field_rule_leaves_mistyped_values_to_the_schema() -> None:
    document = fill_defaults({"jobs": {"longPoll": {"maxWaitSeconds": "10"}}}, SCHEMA)
    assert _paths(document) == [("$.jobs.longPoll.maxWaitSeconds", "type")]


def test_app_section_is_free_form_in_the_builtin_schema() -> None:
    document = fill_defaults({"app": {"anything": {"goes": [1, None]}}}, SCHEMA)
    assert validate_settings(document, SCHEMA) == []


def test_errors_inside_arrays_and_odd_names_have_exact_paths() -> None:
    schema = {
        "type": "object",
        "properties": {
            "list": {"type": "array", "items": {"type": "integer"}},
            "odd": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    }
    document = {"list": [1, "a", 3, "b"], "odd": {"a b": "x", "it's": "y", "ok": 1}}
    assert _paths(document, schema) == [
        ("$.list[1]", "type"),
        ("$.list[3]", "type"),
        ("$.odd['a b']", "type"),
        ("$.odd['it\\'s']", "type"),
    ]


def test_json_path_formatting() -> None:
    assert json_path([]) == "$"
    assert json_path(["jobs", "longPoll", "maxWaitSeconds"]) == "$.jobs.longPoll.maxWaitSeconds"
    assert json_path(["a", 0, "b-c", "back\\slash"]) == "$.a[0]['b-c']['back\\\\slash']"


def test_formats_are_checked() -> None:
    schema = {"properties": {"mail": {"type": "string", "format": "email"}}}
    assert _paths({"mail": "not-an-email"}, schema) == [("$.mail", "format")]


def test_identical_errors_from_all_of_branches_are_reported_once() -> None:
    schema = {"properties": {"n": {"allOf": [{"maximum": 1}, {"maximum": 1}]}}}
    assert _paths({"n": 5}, schema) == [("$.n", "maximum")]


# --- ConfigMap text ------------------------------------------------------------------------


def test_configmap_text_is_parsed() -> None:
    assert parse_settings_configmap_value('{"app": {"x": 1}}') == ({"app": {"x": 1}}, [])


@pytest.mark.parametrize("text", [None, "", "  \n"])
def test_empty_configmap_text_means_all_defaults(text: str | None) -> None:
    assert parse_settings_configmap_value(text) == ({}, [])
    assert parse_settings_configmap_value(text, SCHEMA) == (defaults_from_schema(SCHEMA), [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{x",
            "invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes",
        ),
        ('{"a": 1,\n "a": 2}', 'invalid JSON: duplicate key "a"'),
        ('{"a": NaN}', "invalid JSON: NaN is not a JSON value"),
        ('{"a": -Infinity}', "invalid JSON: -Infinity is not a JSON value"),
        ("[1]", "the settings document must be a JSON object, not an array"),
        ('"text"', "the settings document must be a JSON object, not a str"),
        ("[" * 100_000, "invalid JSON: nested too deeply"),
    ],
)
def test_bad_configmap_text_is_an_error_not_an_exception(text: str, message: str) -> None:
    document, errors = parse_settings_configmap_value(text)
    assert document is None
    assert [(e.path, e.message) for e in errors] == [("$", message)]


def test_configmap_text_with_a_schema_is_filled_and_validated() -> None:
    document, errors = parse_settings_configmap_value('{"info": {"name": "prod"}}', SCHEMA)
    assert errors == []
    assert document is not None
    assert document["info"] == {"name": "prod", "description": ""}
    assert document["jobs"]["longPoll"]["maxWaitSeconds"] == 600

    document, errors = parse_settings_configmap_value('{"logs": {"maxReadBytes": 0}}', SCHEMA)
    assert document is None
    assert [e.path for e in errors] == ["$.logs.maxReadBytes"]
