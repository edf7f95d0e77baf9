"""`caravan history`, `diff`, `revert`, `plan` and `jobsdefs load --dry-run`, run as a
user runs them: a subprocess against a running Caravan."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import yaml

from caravan.kube.client import JOBS, KubeClient
from caravan.runner import Caravan
from tests.cluster.conftest import ROOT
from tests.cluster.kubeutil import eventually, group, pod_template

CARAVAN = str(ROOT / ".venv" / "bin" / "caravan")


@dataclass
class Result:
    code: int
    out: str
    err: str


async def run(server: Caravan, *args: str, stdin: str | None = None) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    env.update(CARAVAN_URL=server.url, COLUMNS="200")
    process = await asyncio.create_subprocess_exec(
        CARAVAN,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), 60
    )
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def ok(server: Caravan, *args: str, stdin: str | None = None) -> Result:
    result = await run(server, *args, stdin=stdin)
    assert result.code == 0, (args, result)
    return result


def definitions_file(tmp_path: pathlib.Path, image: str, count_max: int = 5) -> str:
    template = pod_template()
    template["spec"]["containers"][0]["image"] = image
    document = {
        "web": {"template": {"taskGroups": [group("g", count_max=count_max, template=template)]}}
    }
    path = tmp_path / f"jobs-{image.rsplit(':', 1)[-1]}-{count_max}.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


async def version_of(kube: KubeClient, namespace: str) -> Any:
    job = await kube.get(JOBS.item(namespace, "web"))
    return (job.get("status") or {}).get("version")


async def test_plan_history_diff_revert(
    caravan: Caravan, kube: KubeClient, namespace: str, tmp_path: pathlib.Path
) -> None:
    first = definitions_file(tmp_path, "caravan.test/fake:1")
    second = definitions_file(tmp_path, "caravan.test/fake:2", count_max=7)
    # A plan of a new job: a create, nothing written.
    planned = await ok(caravan, "plan", first)
    assert (
        "job" in planned.out and "web" in planned.out and "create" in planned.out.lower()
    ) or "+" in planned.out
    assert (await kube.list_items(JOBS.collection(namespace)))["items"] == []
    await ok(caravan, "jobsdefs", "load", first)
    await eventually(lambda: version_of(kube, namespace), lambda v: v == 1, what="version 1")
    # jobsdefs load --dry-run: the diff names the changed fields; nothing is written.
    dry = await ok(caravan, "jobsdefs", "load", "--dry-run", second)
    assert "-        - image: caravan.test/fake:1" in dry.out
    assert "+        - image: caravan.test/fake:2" in dry.out
    assert "+    countMax: 7" in dry.out
    as_json = await ok(caravan, "jobsdefs", "load", "--dry-run", "-o", "json", second)
    assert json.loads(as_json.out)["jobs"]["web"]["action"] == "replace"
    assert await version_of(kube, namespace) == 1
    await ok(caravan, "jobsdefs", "load", second)
    await eventually(lambda: version_of(kube, namespace), lambda v: v == 2, what="version 2")

    history = await ok(caravan, "history", "web")
    lines = history.out.splitlines()
    assert lines[0].split()[:3] == ["VERSION", "TIME", "CHANGE"]
    assert lines[1].split()[0] == "2" and "g.countMax 5 -> 7" in lines[1]
    assert lines[2].split()[0] == "1" and "created" in lines[2]
    diff = await ok(caravan, "diff", "web")
    assert "--- web@1" in diff.out and "+++ web@2" in diff.out
    assert "+        - image: caravan.test/fake:2" in diff.out
    same = await ok(caravan, "diff", "web", "2", "2")
    assert "are the same" in same.out + same.err
    # revert asks first; "n" changes nothing, --yes reverts.
    refused = await run(caravan, "revert", "web", "1", stdin="n\n")
    assert refused.code != 0 and await version_of(kube, namespace) == 2
    reverted = await ok(caravan, "revert", "web", "1", "--yes")
    assert "reverted to version 1" in reverted.out + reverted.err
    job = await kube.get(JOBS.item(namespace, "web"))
    assert job["spec"]["taskGroups"][0]["template"]["spec"]["containers"][0]["image"] == (
        "caravan.test/fake:1"
    )
    await eventually(lambda: version_of(kube, namespace), lambda v: v == 3, what="version 3")
    missing = await run(caravan, "revert", "web", "9", "--yes")
    assert missing.code == 1 and "no version 9" in missing.err
