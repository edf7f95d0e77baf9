"""`caravan load`'s pure half: Genvid HCL → project → plan."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
import yaml

from caravan.client.project import (
    Current,
    ProjectError,
    deep_merge,
    make_plan,
    normalized_definition,
    parse_hcl,
    read_project,
    settings_document,
)
from caravan.jobs.definitions import definition_of
from caravan.settings.defaults import fill_defaults, load_builtin_schema

SAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "genvid-project"


def sample_project(pattern: str = "*") -> Any:
    files = [(p.name, p.read_text()) for p in sorted(SAMPLES.glob(pattern))]
    return read_project(files)


def jobsdef(name: str, groups: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "autostart": True,
        "byCluster": False,
        "clusterCategories": [],
        "dependencies": [],
        "template": {
            "taskGroups": [
                {
                    "name": g,
                    "countInit": 1,
                    "countMax": 2,
                    "template": {"spec": {"containers": [{"name": g, "image": "x"}]}},
                }
                for g in groups
            ]
        },
        **extra,
    }


def current(**overrides: Any) -> Current:
    schema = load_builtin_schema()
    base: dict[str, Any] = {
        "logs": [],
        "settings": fill_defaults({}, schema),
        "schema": schema,
        "secrets": {"command": None, "disco": None},
        "jobsdefs": {
            "web": jobsdef("web", ["front", "worker"]),
            "services": jobsdef("services", ["api", "db"]),
        },
    }
    base.update(overrides)
    return Current(**base)


def test_blocks_become_plain_data() -> None:
    parsed = parse_hcl('config {\n a { b = 1 }\n a { c = "x" }\n l = [1, 2]\n}\n', "f.hcl")
    assert parsed == {"config": {"a": {"b": 1, "c": "x"}, "l": [1, 2]}}
    project = sample_project()
    assert project.logs["front"] == {
        "job": "web",
        "group": "front",
        "task": "front",
        "fileName": "stdout",
        "logLevel": True,
    }
    assert project.config["encode"]["input"] == {"width": 1280, "height": 720}
    assert project.secrets["disco"] == {"GENVID_DISCO_SECRET": "discosecret"}
    assert project.jobs == {
        "services": {"autostart": True},
        "web": {"autostart": True, "dependencies": ["services"]},
    }
    assert sorted(project.definitions) == ["services", "web"]
    assert any("link 'web' is not converted" in n for n in project.notes)


def test_the_sample_project_is_one_story() -> None:
    """Its jobs run the example task; its `web` is examples/web.yaml's job; each log
    names a real job, group and task, and a log with live levels is named like the
    loggerID its task uses."""
    project = sample_project()
    web_yaml = yaml.safe_load((SAMPLES.parent / "web.yaml").read_text())
    assert normalized_definition("web", project.definitions["web"]) == definition_of(web_yaml)
    plan = make_plan(project, current(jobsdefs={}))
    assert plan.errors == []
    for log_id, attrs in project.logs.items():
        definition = project.definitions[attrs["job"]]
        [group] = [g for g in definition["template"]["taskGroups"] if g["name"] == attrs["group"]]
        [container] = [c for c in group["template"]["spec"]["containers"]]
        assert container["name"] == attrs["task"]
        assert container["image"] == "caravan-example-task:0.1.0"
        env = {e["name"]: e["value"] for e in container["env"]}
        if attrs.get("logLevel"):
            assert env["CARAVAN_LOGGER_ID"] == log_id


def test_later_files_win_and_bad_files_are_named() -> None:
    project = read_project(
        [("a.hcl", 'job "x" { autostart = true }'), ("b.hcl", 'job "x" { autostart = false }')]
    )
    assert project.jobs["x"] == {"autostart": False}
    with pytest.raises(ProjectError, match=r"^bad\.hcl: not valid HCL"):
        read_project([("bad.hcl", 'log "x" { job = }')])
    with pytest.raises(ProjectError, match="must be a block"):
        read_project([("c.hcl", "config = 3")])
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4}) == {
        "a": {"b": 1, "c": 3},
        "d": 4,
    }


def test_the_sample_plan() -> None:
    plan = make_plan(sample_project("*.hcl"), current())
    assert plan.errors == []
    actions = {(c.kind, c.name): c.action for c in plan.changes}
    assert actions == {
        ("settings", "settings"): "replace",
        ("log", "api"): "create",
        ("log", "front"): "create",
        ("log", "frontErr"): "create",
        ("log", "worker"): "create",
        ("job", "services"): "unchanged",
        ("job", "web"): "replace",
        ("secret", "command"): "create",
        ("secret", "disco"): "create",
    }
    details = {(c.kind, c.name): c.detail for c in plan.changes}
    assert details[("job", "web")] == 'dependencies: [] → ["services"]'
    assert details[("settings", "settings")] == (
        "changed info.description, info.name; added app.encode"
    )
    assert details[("secret", "command")] == "2 keys: GENVID_COMMAND_SECRET, akey"
    assert details[("log", "frontErr")] == "web/front/front stderr"
    settings_change = next(c for c in plan.changes if c.kind == "settings")
    assert "-  name: caravan" in settings_change.diff
    assert "+  name: tutorial" in settings_change.diff
    assert plan.settings is not None
    assert plan.settings["info"]["name"] == "tutorial"
    assert plan.settings["app"]["encode"]["output"] == {"framerate": 30}
    assert plan.logs is not None
    assert {entry["id"]: entry["group"] for entry in plan.logs} == {
        "api": "api",
        "front": "front",
        "frontErr": "front",
        "worker": "worker",
    }
    assert plan.jobs["web"]["dependencies"] == ["services"]
    assert plan.secrets["command"] == {"GENVID_COMMAND_SECRET": "commandsecret", "akey": "avalue"}
    assert any("config 'encode'" in n for n in plan.notes)


def test_a_second_load_changes_nothing() -> None:
    first = make_plan(sample_project(), current(jobsdefs={}))
    assert first.settings is not None and first.logs is not None
    assert {c.action for c in first.changes if c.kind == "job"} == {"create"}
    web = next(c for c in first.changes if c.name == "web")
    assert web.detail == (
        "groups (init/max) front (2/5), worker (1/3); after services; stopped until started"
    )
    again = make_plan(
        sample_project(),
        current(
            logs=first.logs,
            settings=fill_defaults(first.settings, load_builtin_schema()),
            secrets=first.secrets,
            jobsdefs=first.jobs,
        ),
    )
    assert again.errors == []
    assert {c.action for c in again.changes} == {"unchanged"}
    assert again.writes == 0 and again.settings is None and again.logs is None


def test_log_blocks_must_name_a_real_job_group_and_task() -> None:
    project = read_project(
        [
            (
                "logs.hcl",
                """
                log "a" { job = "nojob" task = "x" }
                log "b" {
                  job = "services"
                  group = "nogroup"
                  task = "api"
                }
                log "c" {
                  job = "services"
                  group = "api"
                  task = "notask"
                }
                log "d" {
                  job = "services"
                  task = "notask"
                }
                log "e" { job = "web" task = "worker" }
                """,
            )
        ]
    )
    plan = make_plan(project, current())
    assert plan.errors == [
        "log 'a': no job 'nojob' in the project or in Caravan (jobs: services, web); define it "
        "first (caravan jobsdefs load, or a job definitions file given to load)",
        "log 'b': job 'services' has no task group 'nogroup' (groups: api, db)",
        "log 'c': task group services/api has no task 'notask' (tasks: api)",
        "log 'd': job 'services' has several task groups and none has a task 'notask': say "
        "which with `group` (groups: api, db)",
    ]


def test_job_definitions_files() -> None:
    definitions = {
        "new": jobsdef("new", ["g"]),
        "web": jobsdef("web", ["front", "worker", "extra"]),
    }
    project = read_project([("jobs.json", json.dumps(definitions))])
    plan = make_plan(project, current())
    changes = {c.name: c for c in plan.changes}
    assert changes["new"].action == "create"
    assert changes["new"].detail == "groups (init/max) g (1/2); stopped until started"
    assert changes["web"].action == "replace"
    assert changes["web"].detail == "group extra added"
    assert "+    name: extra" in changes["web"].diff
    with pytest.raises(ProjectError, match="expected a map of job name to definition"):
        read_project([("jobs.yaml", "- a\n- b\n")])
    broken = read_project([("jobs.yaml", "x:\n  template: {}\n")])
    assert make_plan(broken, current()).errors == [
        "job definition 'x': needs template.taskGroups, a list of task groups"
    ]


def test_every_error_is_found_before_anything_is_written() -> None:
    project = read_project(
        [
            (
                "bad.hcl",
                """
                job "ghost" { autostart = true }
                job "web" { dependencies = ["services"] }
                job "services" {
                  dependencies = ["web"]
                  autostart = "yes"
                }
                log "x" { job = "web" }
                config {
                  info { name = "" }
                }
                secrets {
                  Bad_Id { k = "v" }
                  ok { nested = { a = 1 } }
                }
                """,
            )
        ]
    )
    plan = make_plan(project, current(secrets={"Bad_Id": None, "ok": None}))
    text = "\n".join(plan.errors)
    assert "job 'ghost' does not exist" in text
    assert "autostart must be true or false" in text
    assert "job dependency cycle" in text
    assert "log definitions [0].task: is required" in text
    assert "settings $.info.name" in text
    assert "secret 'Bad_Id'" in text
    assert "secret 'ok' key 'nested': must be a string" in text


def test_settings_sections_outside_the_schema_go_to_app() -> None:
    document, notes = settings_document(
        {"info": {"name": "n"}, "encode": {"w": 1}}, load_builtin_schema()
    )
    assert document == {"info": {"name": "n"}, "app": {"encode": {"w": 1}}}
    assert len(notes) == 1
