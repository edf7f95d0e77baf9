"""The OpenAPI document tells the truth: schemathesis fuzzes every route against it.

Generated requests (valid and invalid data, and the stateful sequences the document's
links allow) run with every check schemathesis has: never a 5xx, only declared statuses,
content types, headers and body shapes, schema-valid input accepted and invalid input
refused, every method of a path in `Allow`. Streaming routes (SSE, WebSocket) are left
out: a fuzzer cannot wait for them to end. (Log reads stay in: the fuzzer does not know
allocation names, so `follow=true` meets 404s, not endless streams.)
"""

from __future__ import annotations

import asyncio
import pathlib

from caravan.kube.client import JOBS, KubeClient
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import group, job_body

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECKS = "all"


async def test_no_route_answers_5xx_or_undeclared_statuses(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("web", [group("g", count_max=3)]))
    async with running_caravan(namespace=namespace, kubeconfig=kubeconfig) as caravan:
        process = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "schemathesis"),
            "--config-file",
            str(ROOT / "schemathesis.toml"),
            "run",
            f"{caravan.url}/openapi.json",
            "--checks",
            CHECKS,
            "--mode",
            "all",
            "--max-examples",
            "12",
            "--seed",
            "20261126",
            "--request-timeout",
            "10",
            "--exclude-path-regex",
            "/stream|/ws",
            "--no-color",
            "--report-dir",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    # Without the checkout's path: a folder name must not read as a finding.
    text = output.decode(errors="replace").replace(str(ROOT), "<checkout>")
    assert process.returncode == 0, text[-6000:]
    assert " passed" in text and "failures" not in text
