"""The client's small pure helpers: argument parsing, error rendering, picking allocations."""

from __future__ import annotations

import pathlib

import click
import httpx
import pytest
import yaml

from caravan.client.api import ApiFailure, failure_of, flags_named, kubeconfig_token
from caravan.client.areas import parse_pairs, viewer_events
from caravan.client.jobs import _progress, parse_delta
from caravan.client.logs import chosen_allocation, newest_allocation, parse_levels
from caravan.client.settings import strip_comments, with_error_comments


def test_deltas() -> None:
    assert [parse_delta(t) for t in ("+2", "-1", "0", "3")] == [2, -1, 0, 3]
    with pytest.raises(click.BadParameter):
        parse_delta("lots")


def test_levels_and_pairs() -> None:
    assert parse_levels(("leaf=debug", "a.b=panic")) == {"leaf": "debug", "a.b": "panic"}
    for bad in ("leaf", "=info", "leaf=loud"):
        with pytest.raises(click.BadParameter):
            parse_levels((bad,))
    assert parse_pairs(("K=v=w", "E=")) == {"K": "v=w", "E": ""}
    with pytest.raises(click.BadParameter) as raised:
        parse_pairs(("secretvalue",))
    assert "secretvalue" in str(raised.value.message)  # the text is the key: no value


def test_newest_allocation() -> None:
    metas = [
        {"allocID": "a", "createTime": "2026-01-01T00:00:00Z"},
        {"allocID": "c", "createTime": "2026-01-02T00:00:00Z"},
        {"allocID": "b", "createTime": "2026-01-02T00:00:00Z"},
    ]
    assert newest_allocation(metas) == metas[1]
    assert newest_allocation([]) is None


def test_api_errors_keep_the_sentence_and_details() -> None:
    response = httpx.Response(
        422, json={"error": "invalid", "details": [{"path": "$.a", "message": "bad"}]}
    )
    failure = failure_of(response)
    assert failure.status == 422 and failure.exit_code == 1
    assert failure.format_message() == "invalid\n  $.a: bad"
    plain = failure_of(httpx.Response(502, text="<html>gateway</html>"))
    assert plain.message.startswith("502 Bad Gateway")


def test_edit_comments_round_trip() -> None:
    failure = ApiFailure("refused", 422, [{"path": "$.info.name", "message": "too short"}])
    text = with_error_comments('# old note\n{"info": {}}\n', failure)
    assert text.splitlines()[0].startswith("# The settings were refused")
    assert "#   $.info.name: too short" in text
    assert strip_comments(text).strip() == '{"info": {}}'


def test_viewer_event_files() -> None:
    one = {"key": ["vote"], "value": "e4"}
    assert viewer_events('[{"key": ["vote"], "value": "e4"}]', "f") == [one]
    assert viewer_events('{"key": ["vote"], "value": "e4"}', "f") == [one]
    assert viewer_events(
        '{"key": ["vote"], "value": "e4"}\n\n{"key": ["vote"], "value": "e4"}\n', "f"
    ) == [one, one]
    assert viewer_events("  ", "f") == []
    with pytest.raises(click.BadParameter):
        viewer_events("not json", "f")


def test_kubeconfig_token(tmp_path: pathlib.Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    config = {
        "current-context": "a",
        "contexts": [
            {"name": "a", "context": {"user": "ua"}},
            {"name": "b", "context": {"user": "ub"}},
            {"name": "c", "context": {"user": "uc"}},
        ],
        "users": [
            {"name": "ua", "user": {"token": "tok-a"}},
            {"name": "ub", "user": {"tokenFile": str(token_file)}},
            {"name": "uc", "user": {"client-certificate-data": "x"}},
        ],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    assert kubeconfig_token(str(path)) == "tok-a"
    assert kubeconfig_token(str(path), "b") == "from-a-file"
    with pytest.raises(click.ClickException, match="has no token"):
        kubeconfig_token(str(path), "c")
    with pytest.raises(click.ClickException, match="no context"):
        kubeconfig_token(str(path), "zz")


def test_logs_prefer_a_running_allocation() -> None:
    metas = [
        {"allocID": "old", "status": "running", "createTime": "2026-01-01T00:00:00Z"},
        {"allocID": "new", "status": "pending", "createTime": "2026-01-03T00:00:00Z"},
        {"allocID": "dead", "status": "failed", "createTime": "2026-01-04T00:00:00Z"},
    ]
    assert chosen_allocation(metas) == metas[0]
    assert chosen_allocation(metas[1:]) == metas[1]
    assert chosen_allocation(metas[2:]) == metas[2]
    assert chosen_allocation([]) is None


def test_refusals_name_the_cli_flag_and_say_things_once() -> None:
    with pytest.raises(ApiFailure) as raised, flags_named():
        raise ApiFailure("would replace started job 'web': stop them first, or send force=true")
    assert (
        raised.value.message == "would replace started job 'web': stop them first, or use --force"
    )
    twice = ApiFailure(
        "malformed request: id: must match ^[a-z]$",
        400,
        [{"field": "id", "message": "must match ^[a-z]$"}],
    )
    assert twice.format_message() == "malformed request: id: must match ^[a-z]$"


def test_a_pattern_refusal_is_said_in_words() -> None:
    pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    said = f"String should match pattern '{pattern}'"
    response = httpx.Response(
        400,
        json={
            "error": f"malformed request: path.job_id: {said}",
            "details": [{"field": "path.job_id", "message": said}],
        },
    )
    text = failure_of(response).format_message()
    assert text == (
        "malformed request: path.job_id: must be a Kubernetes name: lowercase letters, digits,"
        " '-' and '.', starting and ending with a letter or digit"
    )


def test_a_wait_says_why_a_group_is_not_running_yet() -> None:
    group = {
        "name": "g",
        "count": 1,
        "summary": {"running": 0, "starting": 1},
        "problems": [{"reason": "ErrImagePull", "allocations": 1, "message": "no such host"}],
    }
    job = {"name": "broken", "status": "pending", "taskGroups": [group]}
    line = _progress(job, "running")  # type: ignore[arg-type]
    assert line == "broken: pending (g 0/1 running) (g: ErrImagePull)"
    job["taskGroups"] = [{**group, "problems": []}]
    assert _progress(job, "running") == "broken: pending (g 0/1 running)"  # type: ignore[arg-type]
