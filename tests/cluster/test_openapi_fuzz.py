"""The OpenAPI document tells the truth: schemathesis fuzzes every route against it.

Generated requests (valid and invalid) must never get a 5xx, and every answer must use a
status code and a body shape the document declares. Streaming routes (SSE, WebSocket)
are left out: a fuzzer cannot wait for them to end. (Log reads stay in: the fuzzer does
not know allocation names, so `follow=true` meets 404s, not endless streams.)
"""

from __future__ import annotations

import asyncio
import pathlib

from caravan.kube.client import JOBS, KubeClient
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import group, job_body

ROOT = pathlib.Path(__file__).resolve().parents[2]
# positive_data_acceptance is left out on purpose: OpenAPI cannot carry every rule (a
# settings document valid JSON but invalid for its JSON Schema answers 422, truthfully).
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)


async def test_no_route_answers_5xx_or_undeclared_statuses(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("web", [group("g", count_max=3)]))
    async with running_caravan(namespace=namespace, kubeconfig=kubeconfig) as caravan:
        process = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "schemathesis"),
            "run",
            f"{caravan.url}/openapi.json",
            "--checks",
            CHECKS,
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
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert " passed" in text
