"""The settings service: schema in force, document in force, kubectl edits, runtime knobs."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from caravan.settings import RuntimeSettings, defaults_from_schema, load_builtin_schema
from caravan.settings.mount import (
    SETTINGS_DIR,
    SETTINGS_FILE,
    SETTINGS_FILE_ENV,
    SETTINGS_VOLUME,
    mount_settings_file,
    settings_file_decorator,
)
from caravan.settings.service import SettingsService, schema_from_text, serialize

DEFAULTS = defaults_from_schema(load_builtin_schema())
APP_SCHEMA = {
    "properties": {
        "app": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"region": {"type": "string", "enum": ["eu", "us"], "default": "eu"}},
        }
    }
}


def new_service() -> tuple[SettingsService, list[RuntimeSettings]]:
    seen: list[RuntimeSettings] = []
    return SettingsService("caravan-settings", "caravan-settings-schema", seen.append), seen


def long_poll(default: int, maximum: int) -> str:
    return json.dumps(
        {"jobs": {"longPoll": {"defaultWaitSeconds": default, "maxWaitSeconds": maximum}}}
    )


def test_starts_with_the_defaults() -> None:
    service, seen = new_service()
    assert service.document == DEFAULTS
    assert service.runtime == RuntimeSettings.defaults()
    assert service.all_errors() == {"settings": [], "schema": []} and seen == []


def test_a_valid_edit_is_filled_and_in_force_with_its_runtime_knobs() -> None:
    service, seen = new_service()
    service.on_configmap("caravan-settings", {"settings.json": long_poll(5, 10)})
    assert service.document["jobs"]["longPoll"] == {"defaultWaitSeconds": 5, "maxWaitSeconds": 10}
    assert service.document["info"] == DEFAULTS["info"]
    assert [r.long_poll_max_wait_seconds for r in seen] == [10]


def test_an_invalid_edit_keeps_the_last_valid_document_and_reports_every_error() -> None:
    service, seen = new_service()
    service.on_configmap("caravan-settings", {"settings.json": long_poll(5, 10)})
    good = service.document
    service.on_configmap(
        "caravan-settings",
        {"settings.json": '{"jobs": {"longPoll": {"maxWaitSeconds": 0}}, "x": 1}'},
    )
    assert service.document == good and len(seen) == 1
    paths = [e["path"] for e in service.all_errors()["settings"]]
    assert "$.jobs.longPoll.maxWaitSeconds" in paths and "$" in paths
    assert service.error_count == len(paths)
    service.on_configmap("caravan-settings", {"settings.json": "{not json"})
    assert service.document == good
    assert service.all_errors()["settings"][0]["message"].startswith("invalid JSON")
    # Repaired: errors gone.
    service.on_configmap("caravan-settings", {"settings.json": long_poll(6, 10)})
    assert (
        service.error_count == 0 and service.document["jobs"]["longPoll"]["defaultWaitSeconds"] == 6
    )


def test_no_configmap_or_no_text_means_the_defaults() -> None:
    service, _ = new_service()
    service.on_configmap("caravan-settings", {"settings.json": long_poll(5, 10)})
    service.on_configmap("caravan-settings", None)
    assert service.document == DEFAULTS
    service.on_configmap("caravan-settings", {"settings.json": long_poll(5, 10)})
    service.on_configmap("caravan-settings", {"settings.json": "  "})
    assert service.document == DEFAULTS


def test_other_configmaps_are_ignored() -> None:
    service, seen = new_service()
    service.on_configmap("caravan-logs", {"settings.json": long_poll(5, 10)})
    assert service.document == DEFAULTS and seen == []


def test_an_installation_schema_extends_the_defaults_and_rejudges_the_stored_text() -> None:
    service, _ = new_service()
    service.on_configmap("caravan-settings", {"settings.json": '{"app": {"region": "mars"}}'})
    assert service.document["app"] == {"region": "mars"}  # free-form under Caravan's schema
    service.on_configmap("caravan-settings-schema", {"schema.json": json.dumps(APP_SCHEMA)})
    assert service.schema["properties"]["app"]["properties"]["region"]["enum"] == ["eu", "us"]
    assert service.defaults()["app"] == {"region": "eu"}
    assert service.document["app"] == {"region": "mars"}  # the last valid one stays
    assert [e["path"] for e in service.all_errors()["settings"]] == ["$.app.region"]


def test_an_unusable_installation_schema_is_reported_and_caravans_is_kept() -> None:
    service, _ = new_service()
    broken = {"properties": {"jobs": {"type": "string", "default": "x"}}}
    service.on_configmap("caravan-settings-schema", {"schema.json": json.dumps(broken)})
    assert service.schema == load_builtin_schema()
    assert service.all_errors()["schema"] and service.error_count >= 1
    service.on_configmap("caravan-settings-schema", {"schema.json": "[1"})
    assert service.all_errors()["schema"][0].startswith("schema.json: $: invalid JSON")
    service.on_configmap("caravan-settings-schema", None)
    assert service.all_errors()["schema"] == []


def test_schema_from_text_of_nothing_is_caravans() -> None:
    assert schema_from_text(None) == (load_builtin_schema(), [])
    assert schema_from_text("") == (load_builtin_schema(), [])


def test_check_of_posted_documents() -> None:
    service, _ = new_service()
    assert service.check("{}").document == DEFAULTS
    assert service.check("").malformed and service.check("{").malformed
    assert service.check('{"a": 1, "a": 2}').malformed
    array = service.check("[]")
    assert array.document is None and not array.malformed
    invalid = service.check(long_poll(700, 10))
    assert invalid.document is None and not invalid.malformed
    assert [e.path for e in invalid.errors] == ["$.jobs.longPoll.defaultWaitSeconds"]


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=4)
documents = st.dictionaries(
    st.sampled_from(["info", "jobs", "events", "logs", "app", "other"]),
    st.recursive(
        json_leaf, lambda inner: st.dictionaries(st.text(max_size=4), inner), max_leaves=6
    ),
    max_size=4,
)


@given(documents)
def test_check_accepts_exactly_what_validates_and_stores_a_complete_document(
    document: dict[str, Any],
) -> None:
    service, _ = new_service()
    checked = service.check(json.dumps(document))
    assert not checked.malformed
    if checked.document is None:
        assert checked.errors and all(e.path.startswith("$") for e in checked.errors)
        return
    # A stored document is complete: every knob is there, and storing it again is a no-op.
    RuntimeSettings.from_document(checked.document)
    again = service.check(serialize(checked.document))
    assert again.document == checked.document


def test_mount_adds_the_volume_and_read_only_mounts_everywhere() -> None:
    template: dict[str, Any] = {
        "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [
                {"name": "a"},
                {"name": "b", "env": [{"name": SETTINGS_FILE_ENV, "value": "/mine"}]},
                {"name": "c", "volumeMounts": [{"name": "own", "mountPath": SETTINGS_DIR}]},
            ],
            "volumes": [{"name": "own", "emptyDir": {}}],
        }
    }
    settings_file_decorator("caravan-settings")(template, None, None)
    once = json.loads(json.dumps(template))
    mount_settings_file(template, "caravan-settings")
    assert template == once  # idempotent: the operator applies it on every reconcile
    spec = template["spec"]
    volume = [v for v in spec["volumes"] if v["name"] == SETTINGS_VOLUME]
    assert volume == [
        {
            "name": SETTINGS_VOLUME,
            "configMap": {
                "name": "caravan-settings",
                "items": [{"key": "settings.json", "path": "settings.json"}],
                "optional": True,
            },
        }
    ]
    mount = {"name": SETTINGS_VOLUME, "mountPath": SETTINGS_DIR, "readOnly": True}
    init = spec["initContainers"][0]
    a, b, c = spec["containers"]
    assert init["volumeMounts"] == [mount] and a["volumeMounts"] == [mount]
    assert {"name": SETTINGS_FILE_ENV, "value": SETTINGS_FILE} in a["env"]
    assert b["env"] == [{"name": SETTINGS_FILE_ENV, "value": "/mine"}]  # the user's own wins
    assert c["volumeMounts"] == [{"name": "own", "mountPath": SETTINGS_DIR}]


def test_documents_caravan_could_not_store_or_serve_are_refused_as_malformed() -> None:
    service, _ = new_service()
    for depth in (70, 600, 5000):
        deep = '{"app": {"x": ' + "[" * depth + "]" * depth + "}}"
        checked = service.check(deep)
        assert checked.document is None and checked.malformed, depth
    surrogate = service.check('{"app": {"x": "\\ud800"}}')
    assert surrogate.document is None and surrogate.malformed
    # An error message quoting such a string is still printable (UTF-8 encodable).
    bad = service.check('{"info": {"name": 5, "\\udc00": 1}}')
    assert bad.document is None
    for error in bad.errors:
        (error.path + error.message).encode("utf-8")
    # The same rules apply to a kubectl edit: reported, the last valid document kept.
    service.on_configmap("caravan-settings", {"settings.json": '{"app": {"x": "\\ud800"}}'})
    assert service.document == DEFAULTS and service.error_count == 1


def test_a_partial_stored_text_asks_for_its_filled_form_once() -> None:
    asked: list[tuple[str, str]] = []
    service = SettingsService(
        "caravan-settings", "caravan-settings-schema", on_refill=lambda *a: asked.append(a)
    )
    partial = long_poll(5, 10)
    service.on_configmap("caravan-settings", {"settings.json": partial})
    assert asked == [(partial, serialize(service.document))]
    # Storing the filled form asks nothing more: no write loop.
    service.on_configmap("caravan-settings", {"settings.json": asked[0][1]})
    service.on_configmap("caravan-settings", {"settings.json": "{bad"})
    service.on_configmap("caravan-settings", None)
    assert len(asked) == 1
