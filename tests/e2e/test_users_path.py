"""The users' path, end to end: the chart's Caravan pod on a node that runs processes,
driven over HTTP, with the example task program running in Caravan Jobs.

Every effect on a process is read from the process itself (what it prints), never
inferred from a pod spec.
"""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any

import httpx
import pytest

from caravan.kube.client import JOBS, PODS, SECRETS, KubeClient
from tests.cluster.kubeutil import cri_log, eventually, group, job_body, pod_template, serve_pod_log
from tests.e2e.conftest import Installed, RealNode, task_job, unique
from tests.e2e.logreader import FollowedLog
from tests.samples import votes_only

ROOT = pathlib.Path(__file__).resolve().parents[2]


async def running_pods(
    installed: Installed, kube: KubeClient, job: str, counts: dict[str, int] | None = None
) -> list[str]:
    """Waits until `job` runs these ready allocations per group (per the API; default one
    in each group); the names of its pods."""

    def running(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        groups = {g["name"]: g["summary"]["running"] for g in response.json()["taskGroups"]}
        return groups == counts if counts is not None else set(groups.values()) == {1}

    await eventually(
        lambda: installed.api.get(f"/v1/jobs/{job}"), running, timeout=90, what=f"job {job} running"
    )
    pods = await kube.list_items(
        PODS.collection(installed.namespace), labelSelector=f"caravan.dev/job={job}"
    )
    return sorted(
        p["metadata"]["name"] for p in pods["items"] if not p["metadata"].get("deletionTimestamp")
    )


async def start_task(
    installed: Installed, kube: KubeClient, env: dict[str, str], name: str = ""
) -> str:
    """One allocation of the example task with these variables; its pod name."""
    job = name or unique("task")
    await kube.create(JOBS.collection(installed.namespace), task_job(job, {"g": env}))
    [pod] = await running_pods(installed, kube, job)
    return pod


async def test_the_chart_runs_caravan_as_a_ready_pod_on_the_real_node(
    installed: Installed, kube: KubeClient, real_node: RealNode
) -> None:
    pods = await kube.list_items(
        PODS.collection(installed.namespace), labelSelector="app.kubernetes.io/name=caravan"
    )
    [pod] = pods["items"]
    spec, status = pod["spec"], pod["status"]
    assert spec["nodeName"] == real_node.name
    assert spec["serviceAccountName"] == "caravan"
    [container] = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["containerStatuses"][0]["restartCount"] == 0
    # The Service named `caravan` exists, and Caravan started anyway (CARAVAN_PORT).
    await kube.get(f"/api/v1/namespaces/{installed.namespace}/services/caravan")
    assert (await installed.api.get("/v1/jobs")).json() == []
    anonymous = await installed.api.get("/v1/jobs", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    logs = installed.kubectl("logs", pod["metadata"]["name"])
    assert "caravan" in logs.lower()


async def test_the_readme_example_runs_real_processes_with_readable_logs(
    installed: Installed, kube: KubeClient
) -> None:
    installed.kubectl("apply", "-f", str(ROOT / "examples" / "web.yaml"))
    pods = await running_pods(installed, kube, "web", {"front": 2, "worker": 1})
    fronts = [p for p in pods if "-front-" in p]
    assert len(fronts) == 2
    for pod in fronts:
        path = f"/v1/log/fs/{pod}/front/stdout"
        # Ready as soon as the process starts, which prints its first line a moment later.
        response = await eventually(
            functools.partial(installed.api.get, path),
            lambda r: r.status_code == 200 and "levels " in r.text,
            what=f"the first lines of {pod}",
        )
        assert "started logger_id=front loggers=http,render" in response.text
        # kubectl logs interleaves both streams; every stdout line is among its lines.
        combined = installed.kubectl("logs", pod, "-c", "front").splitlines()
        assert set(response.text.splitlines()) <= set(combined)
        assert "http warning tick=0" in combined  # and stderr's, which stdout lacks
        assert "http warning tick=0" not in response.text


async def test_levels_from_the_api_change_what_the_process_prints(
    installed: Installed, kube: KubeClient
) -> None:
    env = {"CARAVAN_LOGGER_ID": "lvl", "TASK_LOGGERS": "app,net", "TASK_TICK_SECONDS": "0.3"}
    pod = await start_task(installed, kube, env)
    api = installed.api
    async with (
        FollowedLog(api, pod, "task", "stdout") as out,
        FollowedLog(api, pod, "task", "stderr") as err,
    ):
        await out.wait_for(r"^app info tick=\d+$")
        assert "app debug" not in out.text

        # Defaults (the loggers ConfigMap): the process sees them without a restart.
        assert (await api.post("/v1/log/defaults/lvl", json={"app": "debug"})).status_code == 200
        changed = await out.wait_for(r'^levels \{"app": "debug"\}$')
        await out.wait_for(r"^app debug tick=\d+$", changed.end())
        # The operator's nudge of the pod (its config revision). A young pod's own syncs
        # may refresh the file before the nudge lands, so it is awaited, not assumed.
        await eventually(
            lambda: kube.get(PODS.item(installed.namespace, pod)),
            lambda p: bool(p["metadata"]["annotations"].get("caravan.dev/config-revision")),
            timeout=10,
            what="the config revision on the pod",
        )

        # This allocation's override wins over the default, per logger.
        response = await api.post(f"/v1/log/allocs/{pod}/lvl", json={"app": "error"})
        assert response.status_code == 200
        changed = await out.wait_for(r'^levels \{"app": "error"\}$', changed.end())
        after = (await out.wait_for(r"^net info tick=(\d+)$", changed.end())).end()
        await out.wait_for(r"^net info tick=\d+$", after)  # a whole tick later
        quiet = out.text[changed.end() :]
        assert "app debug" not in quiet and "app info" not in quiet
        mark = len(err.text)
        await err.wait_for(r"^app error tick=\d+$", mark)
        await err.wait_for(r"^net warning tick=\d+$", mark)
        assert (
            "app warning" not in err.text[err.text.index("app error", mark) :].split("\n", 50)[-1]
        )

        # Back to the defaults.
        assert (await api.delete(f"/v1/log/allocs/{pod}/lvl")).status_code in (200, 204)
        await out.wait_for(r'^levels \{"app": "debug"\}$', changed.end())


async def test_a_settings_post_reaches_the_process_file(
    installed: Installed, kube: KubeClient
) -> None:
    pod = await start_task(installed, kube, {"TASK_LOGGERS": ""})
    async with FollowedLog(installed.api, pod, "task", "stdout") as out:
        await out.wait_for(r"^settings ")
        response = await installed.api.post("/v1/settings", json={"app": {"greeting": "hello e2e"}})
        assert response.status_code == 200, response.text
        line = await out.wait_for(r'^settings (\{.*"greeting": "hello e2e".*\})$')
        assert json.loads(line.group(1))["app"] == {"greeting": "hello e2e"}


async def test_log_reads_return_the_bytes_kubectl_logs_returns_at_every_edge(
    installed: Installed, kube: KubeClient
) -> None:
    pod = await start_task(installed, kube, {"TASK_LOGGERS": "", "TASK_BURST_BYTES": "3000"})
    path = f"/v1/log/fs/{pod}/task/stdout"
    # The process prints its burst and three lines, then nothing: wait until still.
    full = await eventually(
        lambda: installed.api.get(path),
        lambda r: (
            r.text.count("\n") >= 33 and r.text.rstrip().split("\n")[-1].startswith("settings ")
        ),
        what="the quiet task's whole output",
    )
    expected = installed.kubectl("logs", pod, "-c", "task").encode()
    assert full.content == expected
    size = len(expected)
    for offset in (0, 1, 99, 100, size - 1, size, size + 1, 10 * size):
        start = await installed.api.get(path, params={"origin": "start", "offset": offset})
        assert start.content == expected[offset:], f"origin=start offset={offset}"
        end = await installed.api.get(path, params={"origin": "end", "offset": offset})
        assert end.content == (expected[-offset:] if offset else b""), f"origin=end offset={offset}"
        assert start.headers["x-caravan-log-stream"] == "stdout"
    stderr = await installed.api.get(f"/v1/log/fs/{pod}/task/stderr")
    assert stderr.content == b"" and stderr.headers["x-caravan-log-stream"] == "stderr"


async def test_follow_streams_lines_as_the_process_writes_them(
    installed: Installed, kube: KubeClient
) -> None:
    pod = await start_task(installed, kube, {"TASK_LOGGERS": "app", "TASK_TICK_SECONDS": "0.5"})
    async with FollowedLog(installed.api, pod, "task", "stdout") as out:
        first = await out.wait_for(r"^app info tick=(\d+)$")
        start = int(first.group(1))
        later = await out.wait_for(rf"^app info tick={start + 3}$", first.end())
        assert later.start() > first.end()


async def test_stdout_and_stderr_come_back_apart_and_combined_only_where_not_split(
    installed: Installed, kube: KubeClient, tmp_path: pathlib.Path
) -> None:
    pod = await start_task(installed, kube, {"TASK_LOGGERS": "app", "TASK_TICK_SECONDS": "0.2"})
    api = installed.api
    await eventually(
        lambda: api.get(f"/v1/log/fs/{pod}/task/stderr"),
        lambda r: "app warning" in r.text,
        what="the first warnings on stderr",
    )
    stdout = await api.get(f"/v1/log/fs/{pod}/task/stdout")
    stderr = await api.get(f"/v1/log/fs/{pod}/task/stderr")
    assert stdout.headers["x-caravan-log-stream"] == "stdout"
    assert stderr.headers["x-caravan-log-stream"] == "stderr"
    assert "app info" in stdout.text and "app warning" not in stdout.text
    assert "app warning" in stderr.text and "app info" not in stderr.text
    combined = installed.kubectl("logs", pod, "-c", "task")
    assert "app info" in combined and "app warning" in combined

    # A pod on one of kwok's fake nodes: its kubelet cannot split, and the API says so.
    await kube.create(
        JOBS.collection(installed.namespace),
        job_body("fake", [group("g", template=pod_template())]),
    )
    fakes = await eventually(
        lambda: kube.list_items(
            PODS.collection(installed.namespace), labelSelector="caravan.dev/job=fake"
        ),
        lambda pods: bool(pods["items"]) and bool(pods["items"][0]["spec"].get("nodeName")),
        what="the fake pod scheduled",
    )
    fake = fakes["items"][0]["metadata"]["name"]
    log_file = tmp_path / "fake.log"
    log_file.write_text(cri_log([("stdout", "to stdout"), ("stderr", "to stderr")]))
    await serve_pod_log(kube, installed.namespace, fake, str(log_file))
    read = await eventually(
        lambda: api.get(f"/v1/log/fs/{fake}/main/stdout"),
        lambda r: r.status_code == 200 and "to stderr" in r.text,
        what="the fake pod's log",
    )
    assert read.headers["x-caravan-log-stream"] == "combined"


async def test_secrets_and_events_through_the_installed_api(
    installed: Installed, kube: KubeClient
) -> None:
    api = installed.api
    assert (
        await api.post("/v1/secrets/secret/game", json={"GENVID_KEY": "s3cret"})
    ).status_code == 204
    secret = await kube.get(SECRETS.item(installed.namespace, "game"))
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "caravan"
    assert (await api.get("/v1/secrets/secret/game")).json() == {"GENVID_KEY": "s3cret"}

    assert (await api.post("/v1/events", json={"mapreduce": [votes_only()]})).status_code == 200
    counter = (await api.get("/v1/events/results/0")).json()["counter"]  # collection starts
    votes: dict[str, Any] = {
        "channel": "game",
        "events": [{"key": ["vote"], "value": v} for v in "aab"],
    }
    assert (await api.post("/v1/events/send", json=votes)).json()["accepted"] == 3
    results = await eventually(
        lambda: api.get(f"/v1/events/results/{counter}"),
        lambda r: any(json.loads(m["value"])["results"] for m in r.json()["messages"]),
        what="the period's results",
    )
    value = next(
        json.loads(m["value"])
        for m in results.json()["messages"]
        if json.loads(m["value"])["results"]
    )
    counts = {tuple(r["key"]): r["value"]["count"] for r in value["results"]}
    assert counts == {("a",): 2, ("b",): 1}


pytestmark = pytest.mark.e2e
