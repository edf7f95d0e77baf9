"""How the client shows a planned change: summaries without Python reprs, unified diffs,
colour only on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from caravan.client.plan_view import (
    Row,
    field_changes,
    path_changes,
    plural,
    print_changes,
    short,
    unified,
)


def test_values_read_as_json_not_python() -> None:
    assert short(True) == "true"
    assert short([]) == "[]"
    assert short(["services"]) == '["services"]'
    assert short("web") == "web"
    assert short(None) == "null"
    before = {"autostart": False, "dependencies": []}
    after = {"autostart": True, "dependencies": ["services"]}
    assert (
        field_changes(before, after, ("autostart", "dependencies"))
        == 'autostart: false → true, dependencies: [] → ["services"]'
    )
    assert plural(1, "key") == "1 key" and plural(2, "key") == "2 keys"


def test_the_summary_names_what_changed() -> None:
    before = {"info": {"name": "caravan", "description": ""}, "app": {}, "old": 1}
    after = {
        "info": {"name": "tutorial", "description": "A tutorial"},
        "app": {"encode": {"input": {"width": 1280}}},
    }
    assert (
        path_changes(before, after).summary()
        == "changed info.description, info.name; added app.encode; removed old"
    )
    assert path_changes(before, before).summary() == ""
    many = path_changes({}, {f"k{i}": i for i in range(9)}).summary()
    assert many.endswith("and 3 more")


def test_unified_diff_of_two_documents() -> None:
    lines = unified({"a": 1, "b": [1]}, {"a": 2, "b": [1]}, "settings")
    assert lines[:2] == ["--- settings (now)", "+++ settings (after)"]
    assert "-a: 1" in lines and "+a: 2" in lines
    assert unified({"a": 1}, {"a": 1}, "same") == []
    created = unified(None, {"a": 1}, "new")
    assert created[0] == "--- /dev/null" and "+a: 1" in created


def _render(terminal: bool, rows: list[Row]) -> str:
    out = io.StringIO()
    if terminal:
        console = Console(file=out, force_terminal=True, color_system="standard", width=200)
    else:
        console = Console(file=out, width=200)
    print_changes(console, rows)
    return out.getvalue()


def test_rows_align_and_colour_only_on_a_terminal() -> None:
    rows = [
        Row("replace", "settings", "settings", "changed info.name", ("--- a", "+++ b", "-x", "+y")),
        Row("create", "log", "front", "web/front/front stdout"),
        Row("unchanged", "job", "web"),
    ]
    plain = _render(False, rows)
    assert "\x1b[" not in plain
    assert plain.splitlines() == [
        "~ settings  settings  replace  changed info.name",
        "    --- a",
        "    +++ b",
        "    -x",
        "    +y",
        "+ log       front     create   web/front/front stdout",
        "= job       web       unchanged",
    ]
    coloured = _render(True, rows)
    assert "\x1b[31m    -x" in coloured and "\x1b[32m    +y" in coloured
