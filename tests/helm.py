"""The helm binary that hack/build-binaries.sh builds, for the chart tests of both tiers."""

from __future__ import annotations

import functools
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@functools.cache
def versions() -> dict[str, str]:
    """HELM_BIN_DIR and K8S_VERSION as hack/versions.env computes them."""
    out = subprocess.run(
        ["bash", "-c", 'source hack/versions.env && echo "$HELM_BIN_DIR" && echo "$K8S_VERSION"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return {"helm_dir": out[0], "k8s_version": out[1]}


def helm_bin() -> str:
    path = os.environ.get("HELM") or os.path.join(versions()["helm_dir"], "helm")
    if not os.access(path, os.X_OK):
        pytest.fail(f"helm not found at {path}: run `hack/build-binaries.sh helm` (make test does)")
    return path


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm_bin(), *args], capture_output=True, text=True, cwd=ROOT)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result
