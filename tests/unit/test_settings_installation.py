"""Installation schemas (merge rule, compatibility checks) and the typed runtime view."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from caravan.settings import (
    RuntimeSettings,
    SettingsDocumentError,
    build_installation_schema,
    check_custom_schema,
    defaults_from_schema,
    fill_defaults,
    load_builtin_schema,
    merge_installation_schema,
    validate_settings,
)

pytestmark = pytest.mark.unit

BUILTIN = load_builtin_schema()

APP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Our game's settings.",
    "additionalProperties": False,
    "properties": {
        "region": {"type": "string", "enum": ["eu", "us"], "default": "eu"},
        "bitrate": {"type": "integer", "minimum": 1, "default": 6000},
    },
}


def _builtin_section(name: str) -> dict[str, Any]:
    section: dict[str, Any] = copy.deepcopy(BUILTIN["properties"][name])
    return section


# --- merge ---------------------------------------------------------------------------------


def test_no_custom_schema_means_the_builtin_one() -> None:
    assert merge_installation_schema(BUILTIN, None) == BUILTIN
    assert merge_installation_schema(BUILTIN, {}) == BUILTIN


def test_custom_app_replaces_caravans_app_and_validates() -> None:
    merged = merge_installation_schema(BUILTIN, {"properties": {"app": APP_SCHEMA}})
    assert check_custom_schema(merged) == []
    assert merged["properties"]["app"] == APP_SCHEMA
    assert defaults_from_schema(merged)["app"] == {"region": "eu", "bitrate": 6000}
    document = fill_defaults({"app": {"region": "mars", "colour": 1}}, merged)
    assert [e.path for e in validate_settings(document, merged)] == ["$.app", "$.app.region"]


def test_custom_top_level_properties_are_added_and_caravans_kept() -> None:
    custom = {
        "$id": "https://games.example/settings.json",
        "title": "Our settings",
        "required": ["studio"],
        "$defs": {"name": {"type": "string", "minLength": 1}},
        "properties": {"studio": {"$ref": "#/$defs/name", "default": "acme"}},
    }
    merged = merge_installation_schema(BUILTIN, custom)
    assert check_custom_schema(merged) == []
    assert merged["$id"] == "https://games.example/settings.json"
    assert merged["title"] == "Our settings"
    assert merged["required"] == [*BUILTIN["required"], "studio"]
    assert set(merged["properties"]) == {*BUILTIN["properties"], "studio"}
    assert defaults_from_schema(merged)["studio"] == "acme"
    errors = validate_settings(fill_defaults({"studio": ""}, merged), merged)
    assert [e.path for e in errors] == ["$.studio"]


def test_merge_mutates_neither_input() -> None:
    builtin = load_builtin_schema()
    custom = {"properties": {"app": copy.deepcopy(APP_SCHEMA)}, "required": ["app"]}
    before = (copy.deepcopy(builtin), copy.deepcopy(custom))
    merged = merge_installation_schema(builtin, custom)
    merged["properties"]["app"]["properties"].clear()
    merged["required"].append("x")
    assert (builtin, custom) == before


def test_custom_section_may_change_defaults_and_tighten_bounds() -> None:
    jobs = _builtin_section("jobs")
    long_poll = jobs["properties"]["longPoll"]
    long_poll["properties"]["maxWaitSeconds"].update(maximum=120, default=120)
    long_poll["properties"]["defaultWaitSeconds"].update(default=60)
    # The section-level defaults are what a missing section gets: keep them in step.
    jobs["default"] = {"longPoll": {"defaultWaitSeconds": 60, "maxWaitSeconds": 120}}
    long_poll["default"] = jobs["default"]["longPoll"]
    merged, problems = build_installation_schema({"properties": {"jobs": jobs}})
    assert problems == []
    settings = RuntimeSettings.from_document(defaults_from_schema(merged))
    assert (settings.long_poll_default_wait_seconds, settings.long_poll_max_wait_seconds) == (
        60,
        120,
    )


def test_a_whole_replacement_schema_is_accepted_when_compatible() -> None:
    replacement = load_builtin_schema()
    replacement["properties"]["app"] = APP_SCHEMA
    replacement["$id"] = "https://games.example/settings.json"
    assert check_custom_schema(replacement) == []
    assert merge_installation_schema(BUILTIN, replacement) == replacement


# --- check ---------------------------------------------------------------------------------


def test_builtin_schema_passes_its_own_check() -> None:
    assert check_custom_schema(BUILTIN) == []


def test_not_an_object() -> None:
    assert check_custom_schema([]) == ["the settings schema must be a JSON object"]


def test_invalid_json_schema_reports_every_metaschema_error() -> None:
    problems = check_custom_schema({"type": 5, "properties": {"a": {"minimum": "x"}}})
    assert problems == [
        "schema at $.properties.a.minimum: 'x' is not of type 'number'",
        "schema at $.type: 5 is not valid under any of the given schemas",
    ]


def test_other_drafts_are_refused() -> None:
    schema = {**BUILTIN, "$schema": "http://json-schema.org/draft-07/schema#"}
    assert check_custom_schema(schema) == [
        "$schema must be 'https://json-schema.org/draft/2020-12/schema' (JSON Schema 2020-12), "
        "not 'http://json-schema.org/draft-07/schema#'"
    ]


def test_dangling_references_are_reported() -> None:
    custom = {
        "properties": {
            "app": {
                "type": "object",
                "default": {"$ref": "data, not a reference"},
                "properties": {"a": {"$ref": "#/$defs/nope"}, "b": {"$ref": "https://x.example/s"}},
            }
        }
    }
    assert check_custom_schema(merge_installation_schema(BUILTIN, custom)) == [
        "schema at $.properties.app.properties.a['$ref']: $ref '#/$defs/nope' does not resolve",
        "schema at $.properties.app.properties.b['$ref']: $ref 'https://x.example/s' does not "
        "resolve",
    ]


def test_a_replacement_missing_caravans_knobs_is_reported() -> None:
    replacement = load_builtin_schema()
    del replacement["properties"]["logs"]
    del replacement["properties"]["jobs"]["properties"]["longPoll"]["properties"]["maxWaitSeconds"]
    replacement["required"].remove("logs")
    problems = check_custom_schema(replacement)
    assert "$.logs: missing; Caravan reads it (object)" in problems
    assert "$.jobs.longPoll.maxWaitSeconds: missing; Caravan reads it (integer)" in problems
    assert "$.logs.maxReadBytes: has no default; Caravan needs one" in problems


def test_incompatible_types_are_reported() -> None:
    custom = {
        "properties": {
            "logs": {"type": "string", "default": "x"},
            "info": {"type": "object", "properties": {"name": {}, "description": {}}},
            "app": {"type": ["object", "null"], "default": {}},
        }
    }
    problems = check_custom_schema(merge_installation_schema(BUILTIN, custom))
    assert "$.logs: type must be object, the schema allows string" in problems
    assert "$.info.name: must declare its type (string)" in problems
    assert "$.app: type must be object, the schema allows null or object" in problems


def test_narrowing_number_to_integer_is_compatible() -> None:
    events = _builtin_section("events")
    events["properties"]["resultsIdleTimeoutSeconds"]["type"] = "integer"
    events["properties"]["resultsIdleTimeoutSeconds"]["exclusiveMinimum"] = 0
    assert build_installation_schema({"properties": {"events": events}})[1] == []
    settings = RuntimeSettings.defaults()
    assert isinstance(settings.events_results_idle_timeout_seconds, float)


def test_number_where_caravan_reads_an_integer_is_refused() -> None:
    logs = _builtin_section("logs")
    logs["properties"]["maxReadBytes"]["type"] = "number"
    assert build_installation_schema({"properties": {"logs": logs}})[1] == [
        "$.logs.maxReadBytes: type must be integer, the schema allows number"
    ]


@pytest.mark.parametrize(
    ("knob_changes", "problem"),
    [
        ({"maximum": 7200}, "maximum must be no looser than Caravan's <= 3600"),
        ({"minimum": 0}, "minimum must be no looser than Caravan's >= 1"),
        ({"maximum": None}, "maximum must be no looser than Caravan's <= 3600"),
    ],
)
def test_looser_bounds_are_refused(knob_changes: dict[str, Any], problem: str) -> None:
    jobs = _builtin_section("jobs")
    knob = jobs["properties"]["longPoll"]["properties"]["maxWaitSeconds"]
    for keyword, value in knob_changes.items():
        if value is None:
            del knob[keyword]
        else:
            knob[keyword] = value
    problems = build_installation_schema({"properties": {"jobs": jobs}})[1]
    assert problems == [f"$.jobs.longPoll.maxWaitSeconds: {problem}"]


def test_equivalent_and_tighter_bounds_are_accepted() -> None:
    jobs = _builtin_section("jobs")
    knob = jobs["properties"]["longPoll"]["properties"]["maxWaitSeconds"]
    del knob["minimum"]
    knob["exclusiveMinimum"] = 0  # for an integer, "> 0" is ">= 1"
    knob["exclusiveMaximum"] = 1000
    events = _builtin_section("events")
    events["properties"]["resultsIdleTimeoutSeconds"]["minimum"] = 0.5
    events["properties"]["resultsIdleTimeoutSeconds"]["maximum"] = 100
    events["properties"]["resultsIdleTimeoutSeconds"]["exclusiveMaximum"] = 5000
    info = _builtin_section("info")
    info["properties"]["name"]["maxLength"] = 63
    custom = {"properties": {"jobs": jobs, "events": events, "info": info}}
    assert build_installation_schema(custom)[1] == []


def test_string_length_bounds_must_not_loosen() -> None:
    info = _builtin_section("info")
    info["properties"]["name"]["maxLength"] = 10_000
    assert build_installation_schema({"properties": {"info": info}})[1] == [
        "$.info.name: maxLength must be no looser than Caravan's 253"
    ]


def test_defaults_caravan_cannot_use_are_reported() -> None:
    jobs = _builtin_section("jobs")
    jobs["properties"]["longPoll"]["properties"]["defaultWaitSeconds"]["maximum"] = 3000
    jobs["default"] = {"longPoll": {"defaultWaitSeconds": 3000, "maxWaitSeconds": 600}}
    jobs["properties"]["longPoll"]["default"] = jobs["default"]["longPoll"]
    problems = build_installation_schema({"properties": {"jobs": jobs}})[1]
    assert problems == [
        "default $.jobs.longPoll.defaultWaitSeconds: "
        "defaultWaitSeconds (3000) must not exceed maxWaitSeconds (600)"
    ]


def test_app_without_any_default_is_reported() -> None:
    custom = {"properties": {"app": {"type": "object", "properties": {"x": {"type": "string"}}}}}
    assert build_installation_schema(custom)[1] == ["$.app: has no default; Caravan needs one"]


def test_knobs_reached_through_refs_and_all_of_are_found() -> None:
    custom = {
        "$defs": {
            "wait": {"type": "integer", "minimum": 5, "maximum": 60},
            "longPoll": {
                "type": "object",
                "properties": {
                    "defaultWaitSeconds": {"$ref": "#/$defs/wait", "default": 30},
                    "maxWaitSeconds": {"allOf": [{"$ref": "#/$defs/wait"}, {"default": 60}]},
                },
            },
        },
        "properties": {
            "jobs": {"type": "object", "properties": {"longPoll": {"$ref": "#/$defs/longPoll"}}}
        },
    }
    merged, problems = build_installation_schema(custom)
    assert problems == []
    assert defaults_from_schema(merged)["jobs"] == {
        "longPoll": {"defaultWaitSeconds": 30, "maxWaitSeconds": 60}
    }


# --- RuntimeSettings -----------------------------------------------------------------------


def test_runtime_settings_from_the_defaults() -> None:
    assert RuntimeSettings.defaults() == RuntimeSettings(
        cluster_name="caravan",
        cluster_description="",
        long_poll_default_wait_seconds=300,
        long_poll_max_wait_seconds=600,
        events_results_idle_timeout_seconds=5.0,
        events_max_results_messages=10000,
        events_max_keys_per_reduction=100000,
        logs_max_read_bytes=16 * 1024 * 1024,
        logs_follow_idle_timeout_seconds=300.0,
    )


def test_runtime_settings_reads_a_document_and_is_frozen() -> None:
    document = fill_defaults(
        {"info": {"name": "prod"}, "events": {"resultsIdleTimeoutSeconds": 0.5}}, BUILTIN
    )
    settings = RuntimeSettings.from_document(document)
    assert settings.cluster_name == "prod"
    assert settings.events_results_idle_timeout_seconds == 0.5
    with pytest.raises(AttributeError):
        settings.cluster_name = "x"  # type: ignore[misc]


def test_runtime_settings_accepts_integral_floats_as_integers() -> None:
    document = fill_defaults({"logs": {"maxReadBytes": 1024.0}}, BUILTIN)
    assert validate_settings(document, BUILTIN) == []
    assert RuntimeSettings.from_document(document).logs_max_read_bytes == 1024


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, r"\$\.info\.name is missing"),
        ({"jobs": {"longPoll": {"maxWaitSeconds": True}}}, r"maxWaitSeconds must be an integer"),
        ({"events": {"resultsIdleTimeoutSeconds": "5"}}, r"resultsIdleTimeoutSeconds must be"),
        ({"info": {"name": 5}}, r"\$\.info\.name must be a string"),
    ],
)
def test_runtime_settings_rejects_an_invalid_document(
    document: dict[str, Any], message: str
) -> None:
    filled = fill_defaults(document, BUILTIN) if document else document
    with pytest.raises(SettingsDocumentError, match=message):
        RuntimeSettings.from_document(filled)
