"""What the operator keeps of each Job's status for the rules across jobs: only the
DependenciesResolved condition, judged as the whole status would be."""

from __future__ import annotations

from typing import Any

from caravan.jobs.spec import read_dependencies, read_job
from caravan.operator.status import (
    DEPENDENCIES_CONDITION,
    dependency_condition_of,
    dependency_condition_stale,
)


def status(resolved: str, message: str = "") -> dict[str, Any]:
    return {
        "version": 3,
        "taskGroups": [{"name": "a", "running": 2}],
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": DEPENDENCIES_CONDITION, "status": resolved, "message": message},
        ],
    }


def test_the_kept_condition_is_judged_as_the_whole_status_and_is_a_copy() -> None:
    for full in (status("True"), status("False", "db is missing"), {}, None):
        kept = dependency_condition_of(full)
        assert [c["type"] for c in kept["conditions"]] in ([], [DEPENDENCIES_CONDITION])
        for problem in (None, "db is missing", "a cycle"):
            assert dependency_condition_stale(kept, problem) == dependency_condition_stale(
                full, problem
            )
    full = status("False", "db is missing")
    kept = dependency_condition_of(full)
    full["conditions"][1]["message"] = "changed"
    assert kept["conditions"][0]["message"] == "db is missing"


def test_dependencies_read_alone_match_the_whole_spec_read() -> None:
    for spec in ({"dependencies": ["db", "cache"]}, {"dependencies": "db"}, {}):
        body = {"metadata": {"name": "web"}, "spec": {**spec, "taskGroups": []}}
        assert read_dependencies(spec) == read_job(body).dependencies
