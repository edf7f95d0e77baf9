"""What the operator reads of the API's write-through, on managedFields as kube-apiserver
v1.37 wrote them for a JSON patch of a Job's spec and a PATCH of deployments/scale."""

from __future__ import annotations

from typing import Any

from caravan.operator.writethrough import (
    counts_written_through,
    only_replicas_differ,
    replicas_written_through,
)

JOB: dict[str, Any] = {
    "metadata": {
        "managedFields": [
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "fieldsV1": {
                    "f:spec": {
                        "f:taskGroups": {
                            'k:{"name":"g0"}': {"f:count": {}, "f:name": {}},
                            'k:{"name":"g1"}': {"f:name": {}},
                        }
                    }
                },
            },
            {
                "manager": "caravan-api",
                "operation": "Update",
                "fieldsV1": {"f:spec": {"f:taskGroups": {'k:{"name":"g1"}': {"f:count": {}}}}},
            },
        ]
    }
}


def deployment(*managers: tuple[str, list[str]], replicas: int = 3) -> dict[str, Any]:
    return {
        "metadata": {
            "managedFields": [
                {"manager": m, "fieldsV1": {"f:spec": {f: {} for f in fields}}}
                for m, fields in managers
            ]
        },
        "spec": {"replicas": replicas},
    }


def test_only_the_counts_the_api_set_last_are_written_through() -> None:
    assert counts_written_through(JOB) == {"g1"}
    assert counts_written_through({"metadata": {}}) == frozenset()


def test_replicas_are_written_through_while_the_api_owns_them() -> None:
    scaled = deployment(("caravan", ["f:selector", "f:template"]), ("caravan-api", ["f:replicas"]))
    assert replicas_written_through(scaled) == 3
    # An apply of the same value shares the field: still the API's value.
    shared = deployment(("caravan", ["f:replicas", "f:template"]), ("caravan-api", ["f:replicas"]))
    assert replicas_written_through(shared) == 3
    assert replicas_written_through(deployment(("caravan", ["f:replicas"]))) is None
    assert replicas_written_through(deployment(("kubectl", ["f:replicas"]))) is None


def test_only_replicas_differ() -> None:
    applied = {"spec": {"replicas": 1, "template": {"a": 1}}}
    assert only_replicas_differ(applied, {"spec": {"replicas": 2, "template": {"a": 1}}})
    assert not only_replicas_differ(applied, applied)
    assert not only_replicas_differ(applied, {"spec": {"replicas": 2, "template": {"a": 2}}})
