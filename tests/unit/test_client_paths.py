"""The client's paths: each one is a route the API's OpenAPI document describes, and a
name a user types stays one path segment."""

from __future__ import annotations

import re

from caravan.api.app import create_app
from caravan.client import paths
from tests.unit.test_ui_routes import make_state


def client_paths() -> list[str]:
    return [
        paths.JOBS,
        paths.UPDATE_COUNTS,
        paths.JOBSDEFS,
        paths.job("web"),
        paths.job_allocations("web"),
        paths.job_activity("web"),
        paths.job_restart("web"),
        paths.alloc_restart("web-abc"),
        paths.start_or_stop("start"),
        paths.start_or_stop("stop"),
        paths.start_or_stop("start", "web"),
        paths.start_or_stop("stop", "web"),
        paths.jobsdef("web"),
        paths.job_versions("web"),
        paths.job_version("web", 3),
        paths.job_revert("web"),
        paths.LOG_DEFINITIONS,
        paths.LOG_DEFAULTS,
        paths.log_meta("web"),
        paths.log_read("web-abc", "main", "stdout"),
        paths.log_read("web-abc", "main", "stderr"),
        paths.logger_defaults("front"),
        paths.alloc_levels("web-abc"),
        paths.alloc_logger_levels("web-abc", "front"),
        paths.SETTINGS,
        paths.SETTINGS_SCHEMA,
        paths.SECRETS,
        paths.secret("disco"),
        paths.EVENTS,
        paths.EVENTS_SEND,
        paths.events_results(3),
    ]


def test_every_client_path_is_a_documented_route() -> None:
    documented = create_app(make_state("none")).openapi()["paths"]
    patterns = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in documented]
    missing = [p for p in client_paths() if not any(r.match(p) for r in patterns)]
    assert missing == []


def test_names_stay_one_segment() -> None:
    assert paths.job("a/b c") == "/v1/jobs/a%2Fb%20c"
    assert paths.secret("../x") == "/v1/secrets/secret/..%2Fx"
    assert paths.log_read("p/q", "t?", "stdout") == "/v1/log/fs/p%2Fq/t%3F/stdout"
