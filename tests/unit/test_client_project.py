"""`caravan load`'s pure half: Genvid HCL → project → plan."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from caravan.client.project import (
    Current,
    ProjectError,
    deep_merge,
    make_plan,
    parse_hcl,
    read_project,
    settings_document,
)
from caravan.settings.defaults import fill_defaults, load_builtin_schema

SAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "genvid-project"


def sample_project() -> Any:
    files = [(p.name, p.read_text()) for p in sorted(SAMPLES.glob("*.hcl"))]
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
            "web": jobsdef("web", ["web"]),
            "services": jobsdef("services", ["api", "db"]),
        },
    }
    base.update(overrides)
    return Current(**base)


def test_blocks_become_plain_data() -> None:
    parsed = parse_hcl('config {\n a { b = 1 }\n a { c = "x" }\n l = [1, 2]\n}\n', "f.hcl")
    assert parsed == {"config": {"a": {"b": 1, "c": "x"}, "l": [1, 2]}}
    project = sample_project()
    assert project.logs["web"] == {
        "job": "web",
        "task": "web",
        "fileName": "stdout",
        "logLevel": True,
    }
    assert project.config["encode"]["input"] == {"width": 1280, "height": 720}
    assert project.secrets["disco"] == {"GENVID_DISCO_SECRET": "discosecret"}
    assert project.jobs == {
        "services": {"autostart": True},
        "web": {"autostart": True, "dependencies": ["services"]},
    }
    assert any("link 'web' is not converted" in n for n in project.notes)


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
    plan = make_plan(sample_project(), current())
    assert plan.errors == []
    actions = {(c.kind, c.name): c.action for c in plan.changes}
    assert actions == {
        ("settings", "settings"): "replace",
        ("log", "services"): "create",
        ("log", "web"): "create",
        ("log", "webErr"): "create",
        ("job", "services"): "unchanged",
        ("job", "web"): "replace",
        ("secret", "command"): "create",
        ("secret", "disco"): "create",
    }
    assert plan.settings is not None
    assert plan.settings["info"]["name"] == "tutorial"
    assert plan.settings["app"]["encode"]["output"] == {"framerate": 30}
    assert plan.logs is not None
    groups = {entry["id"]: entry["group"] for entry in plan.logs}
    # the job's only group; else the group with a container named like the task
    assert groups == {"services": "api", "web": "web", "webErr": "web"}
    assert plan.jobs["web"]["dependencies"] == ["services"]
    assert plan.secrets["command"] == {"GENVID_COMMAND_SECRET": "commandsecret", "akey": "avalue"}
    assert any("config 'encode'" in n for n in plan.notes)


def test_a_second_load_changes_nothing() -> None:
    first = make_plan(sample_project(), current())
    jobsdefs = {**current().jobsdefs, **first.jobs}
    assert first.settings is not None and first.logs is not None
    again = make_plan(
        sample_project(),
        current(
            logs=first.logs,
            settings=fill_defaults(first.settings, load_builtin_schema()),
            secrets=first.secrets,
            jobsdefs=jobsdefs,
        ),
    )
    assert again.errors == []
    assert {c.action for c in again.changes} == {"unchanged"}
    assert again.writes == 0 and again.settings is None and again.logs is None


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
