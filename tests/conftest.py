"""Test tiers: tests/unit (no cluster), tests/cluster (a real kube-apiserver) and
tests/e2e (the users' path: the chart's image on a node that runs real processes).

Cluster tests run against $KUBECONFIG (or --kubeconfig) when given; otherwise the
session starts the local control plane of hack/cluster.sh, and stops it at the end
unless it was already running. There is no skip path: without a cluster, cluster tests
fail loudly.
"""

from __future__ import annotations

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kubeconfig", default=None, help="run cluster tests on this cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The folder decides the tier, so a test can never be in neither.
    for item in items:
        parts = pathlib.Path(str(item.fspath)).relative_to(ROOT).parts
        if "cluster" in parts:
            item.add_marker(pytest.mark.cluster)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
        elif "unit" in parts:
            item.add_marker(pytest.mark.unit)
