"""`caravan settings set PATH=VALUE`: paths typed by the settings schema."""

from __future__ import annotations

import pytest

from caravan.client.settings_paths import (
    Assignment,
    SettingError,
    assign,
    given,
    is_assignment,
    parse_assignment,
)
from caravan.settings.defaults import load_builtin_schema


def test_what_is_an_assignment() -> None:
    assert is_assignment("logs.followIdleTimeoutSeconds=600")
    assert is_assignment("info.name=")
    assert not is_assignment("-")
    assert not is_assignment("settings.yaml")
    assert not is_assignment("./dir/a=b.yaml")


def test_values_are_typed_by_the_schema() -> None:
    schema = load_builtin_schema()
    assert parse_assignment("logs.followIdleTimeoutSeconds=600", schema) == Assignment(
        ("logs", "followIdleTimeoutSeconds"), 600
    )
    assert parse_assignment("info.name=600", schema).value == "600"
    assert parse_assignment("events.resultsIdleTimeoutSeconds=2.5", schema).value == 2.5
    assert parse_assignment("events.resultsIdleTimeoutSeconds=2", schema).value == 2
    # The installation's own part: JSON when it reads as JSON, else text.
    assert parse_assignment("app.encode.width=1280", schema).value == 1280
    assert parse_assignment("app.flags=[1, 2]", schema).value == [1, 2]
    assert parse_assignment("app.greeting=hello", schema).value == "hello"
    with pytest.raises(SettingError, match=r"Seconds: expected a number, got 'soon'"):
        parse_assignment("logs.followIdleTimeoutSeconds=soon", schema)
    with pytest.raises(SettingError, match=r"expected a whole number, got '1.5'"):
        parse_assignment("jobs.longPoll.maxWaitSeconds=1.5", schema)
    with pytest.raises(SettingError, match=r"logs has no setting 'nope' \(it has: "):
        parse_assignment("logs.nope=1", schema)
    with pytest.raises(SettingError, match=r"the settings has no setting 'x'"):
        parse_assignment("x=1", schema)


def test_assign_keeps_everything_else() -> None:
    document = {"info": {"name": "a", "description": "d"}, "app": {}}
    updated = assign(
        document,
        [Assignment(("info", "name"), "b"), Assignment(("app", "encode", "width"), 1)],
    )
    assert updated == {"info": {"name": "b", "description": "d"}, "app": {"encode": {"width": 1}}}
    assert document["info"]["name"] == "a"
    with pytest.raises(SettingError, match=r"info\.name is not an object"):
        assign(document, [Assignment(("info", "name", "x"), 1)])


def test_given() -> None:
    document = {"logs": {"a": 1}, "app": 3}
    assert given(document, ("logs", "a"))
    assert not given(document, ("logs", "b"))
    assert not given(document, ("info", "name"))
    assert given(document, ("app", "x"))  # an enclosing value says it
