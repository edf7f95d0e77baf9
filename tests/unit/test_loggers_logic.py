"""Pure loggers logic: body checks, lenient stored documents, merge, the pod decorator."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from caravan.config import Config, ConfigMapNames
from caravan.jobs.spec import read_job
from caravan.loggers import levels
from caravan.loggers.template import (
    MOUNT_PATH,
    VOLUME_NAME,
    add_loggers_volume,
    loggers_decorator,
)
from caravan.operator.decorators import template_decorators
from caravan.operator.deployments import desired_deployment


def test_levels_are_the_seeds() -> None:
    assert levels.LEVELS == ("debug", "info", "warning", "error", "fatal", "panic")


@pytest.mark.parametrize(
    "body",
    [
        ["leaf"],
        "info",
        {"leaf": "INFO"},
        {"leaf": "verbose"},
        {"leaf": 3},
        {"leaf": None},
        {"leaf": {"nested": "info"}},
        {"": "info"},
    ],
)
def test_bad_bodies_are_refused(body: object) -> None:
    assert levels.config_problems(body) != []


def test_good_bodies_pass() -> None:
    assert levels.config_problems({}) == []
    assert levels.config_problems({lvl: lvl for lvl in levels.LEVELS}) == []


def test_stored_documents_are_read_leniently() -> None:
    assert levels.parse_lenient(None) == {}
    assert levels.parse_lenient("") == {}
    assert levels.parse_lenient("{oops") == {}
    assert levels.parse_lenient("[1]") == {}
    text = json.dumps({"a": {"x": "info", "y": "loud", "z": 1}, "b": "info", "": {"x": "info"}})
    assert levels.parse_lenient(text) == {"a": {"x": "info"}}


def test_partial_updates_refuse_a_broken_document_and_keep_the_rest() -> None:
    with pytest.raises(levels.StoredDocumentError):
        levels.parse_raw("{oops")
    with pytest.raises(levels.StoredDocumentError):
        levels.parse_raw('"text"')
    raw = levels.parse_raw(json.dumps({"a": {"x": "info"}, "weird": 5}))
    updated = levels.with_config(raw, "b", {"y": "debug"})
    assert updated == {"a": {"x": "info"}, "weird": 5, "b": {"y": "debug"}}
    assert levels.with_config(updated, "b", {}) == {"a": {"x": "info"}, "weird": 5}
    assert levels.without_config(updated, "a") == {"weird": 5, "b": {"y": "debug"}}
    assert raw == {"a": {"x": "info"}, "weird": 5}  # inputs untouched


def test_overrides_win_per_logger() -> None:
    defaults = {"web": {"leaf": "info", "root": "warning"}, "db": {"q": "error"}}
    overrides = {"web": {"leaf": "debug", "extra": "panic"}, "cache": {"c": "fatal"}}
    assert levels.effective(defaults, overrides) == {
        "web": {"leaf": "debug", "root": "warning", "extra": "panic"},
        "db": {"q": "error"},
        "cache": {"c": "fatal"},
    }
    assert defaults["web"] == {"leaf": "info", "root": "warning"}


def test_dump_is_canonical() -> None:
    assert levels.dump({"b": {"y": "info"}, "a": {}}) == '{"a":{},"b":{"y":"info"}}'


# The pod-template decorator ------------------------------------------------------------


def template() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "x"}},
        "spec": {
            "containers": [
                {"name": "main", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "side"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


def test_every_container_gets_the_read_only_loggers_directory() -> None:
    t = template()
    add_loggers_volume(t, "my-loggers")
    volumes = {v["name"]: v for v in t["spec"]["volumes"]}
    assert set(volumes) == {"data", VOLUME_NAME}
    sources = volumes[VOLUME_NAME]["projected"]["sources"]
    configmap = sources[0]["configMap"]
    assert configmap == {
        "name": "my-loggers",
        "optional": True,
        "items": [{"key": "loggers.json", "path": "defaults.json"}],
    }
    field = sources[1]["downwardAPI"]["items"][0]
    assert field == {
        "path": "overrides.json",
        "fieldRef": {"fieldPath": "metadata.annotations['caravan.dev/loggers']"},
    }
    for container in t["spec"]["containers"]:
        mount = [m for m in container["volumeMounts"] if m["name"] == VOLUME_NAME]
        assert mount == [{"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": True}]
    assert t["spec"]["containers"][0]["volumeMounts"][0]["name"] == "data"
    assert t["metadata"]["annotations"] == {"caravan.dev/loggers": "{}"}
    assert t["metadata"]["labels"] == {"app": "x"}


def test_the_decorator_is_idempotent_and_keeps_a_jobs_own_overrides() -> None:
    t = template()
    t["metadata"]["annotations"] = {"caravan.dev/loggers": '{"a":{"x":"debug"}}'}
    add_loggers_volume(t, "my-loggers")
    once = copy.deepcopy(t)
    add_loggers_volume(t, "my-loggers")
    assert t == once
    assert t["metadata"]["annotations"]["caravan.dev/loggers"] == '{"a":{"x":"debug"}}'


def test_a_template_without_spec_or_containers_is_handled() -> None:
    t: dict[str, Any] = {}
    add_loggers_volume(t, "cm")
    assert [v["name"] for v in t["spec"]["volumes"]] == [VOLUME_NAME]


def test_the_operator_applies_it_to_every_deployment() -> None:
    body = {
        "metadata": {"name": "web", "uid": "u"},
        "spec": {"taskGroups": [{"name": "g", "template": template()}]},
    }
    spec = read_job(body)
    config = Config(configmaps=ConfigMapNames.with_prefix("blue"))
    decorators = template_decorators(config)
    deployment = desired_deployment(body, spec, spec.task_groups[0], decorators)
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    loggers = next(v for v in volumes if v["name"] == VOLUME_NAME)
    assert loggers["projected"]["sources"][0]["configMap"]["name"] == "blue-loggers"
    # The job's own template is not modified in place.
    assert "annotations" not in spec.task_groups[0].template["metadata"]
    decorate = loggers_decorator("x")
    t = template()
    decorate(t, spec, spec.task_groups[0])
    assert any(v["name"] == VOLUME_NAME for v in t["spec"]["volumes"])
