"""The `caravan` client as a user runs it: a subprocess against a running Caravan.

One Caravan serves the whole module (its own namespace); each test uses its own jobs,
logs and secrets. Output, exit codes (0 / 1 API error / 2 usage) and the effect in
Kubernetes are checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from caravan.kube.client import (
    CONFIGMAPS,
    JOBS,
    NAMESPACES,
    PODS,
    SECRETS,
    KubeClient,
    KubeError,
)
from caravan.operator.leader import LEASES
from caravan.runner import Caravan
from tests.cluster import kubeutil
from tests.cluster.conftest import ROOT, running_caravan
from tests.cluster.kubeutil import cri_log, eventually, group, job_body, serve_pod_log

CARAVAN = str(ROOT / ".venv" / "bin" / "caravan")
SAMPLE_PROJECT = ROOT / "examples" / "genvid-project"
EVENTS_DOCUMENT = ROOT / "examples" / "events" / "vote-cheer.json"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
async def cli_namespace(kube: KubeClient) -> AsyncIterator[str]:
    name = f"t-cli-{uuid.uuid4().hex[:6]}"
    await kube.create(NAMESPACES.collection(None), {"metadata": {"name": name}})
    await kubeutil.wait_for_default_service_account(kube, name)
    yield name
    with contextlib.suppress(KubeError):
        await kube.delete(NAMESPACES.item(None, name))


@pytest.fixture(scope="module")
async def server(kubeconfig: str, cli_namespace: str) -> AsyncIterator[Caravan]:
    async with running_caravan(namespace=cli_namespace, kubeconfig=kubeconfig) as instance:
        yield instance


def _env(server: Caravan, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    env.update(CARAVAN_URL=server.url, COLUMNS="200", **(extra or {}))
    return env


async def run(
    server: Caravan,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> Result:
    """The CLI in a subprocess; never blocks the loop the in-process Caravan serves on."""
    process = await asyncio.create_subprocess_exec(
        CARAVAN,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(server, env),
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), timeout
    )
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def ok(server: Caravan, *args: str, **kwargs: Any) -> Result:
    result = await run(server, *args, **kwargs)
    assert result.code == 0, (args, result)
    assert "Traceback" not in result.err
    return result


async def create_job(kube: KubeClient, ns: str, name: str, **spec: Any) -> None:
    body = job_body(name, [group("g", count_init=1, count_max=4)], **spec)
    await kube.create(JOBS.collection(ns), body)


async def spec_of(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    return dict((await kube.get(JOBS.item(ns, name)))["spec"])


async def test_status_scale_start_stop_and_exit_codes(
    server: Caravan, kube: KubeClient, cli_namespace: str
) -> None:
    ns = cli_namespace
    await create_job(kube, ns, "cli-web")
    result = await ok(server, "status", "cli-web")
    header, *rows = result.out.splitlines()
    assert header.split()[:4] == ["JOB", "STATUS", "AUTOSTART", "GROUP"]
    assert rows[0].split()[:5] == ["cli-web", rows[0].split()[1], "yes", "g", "1/4"]

    scaled = await ok(server, "scale", "cli-web", "g", "+2", "-o", "json")
    assert json.loads(scaled.out)["taskGroups"][0]["count"] == 3
    assert (await spec_of(kube, ns, "cli-web"))["taskGroups"][0]["count"] == 3
    await ok(server, "scale", "cli-web", "g", "-1")
    assert (await spec_of(kube, ns, "cli-web"))["taskGroups"][0]["count"] == 2

    missing = await run(server, "scale", "cli-web", "nope", "+1")
    assert missing.code == 1 and re.search(r"has no task group .nope.", missing.err)
    usage = await run(server, "scale", "cli-web", "g", "lots")
    assert usage.code == 2 and "not +N, -N or 0" in usage.err
    away = await run(server, "status", "--url", "http://127.0.0.1:9")
    assert away.code == 1 and "cannot reach Caravan" in away.err

    stopped = await ok(server, "stop", "cli-web", "--wait", "--timeout", "60")
    assert "cli-web: dead" in stopped.out + stopped.err
    assert (await spec_of(kube, ns, "cli-web"))["suspend"] is True
    started = await ok(server, "start", "--wait", "--timeout", "60")  # Start All
    assert re.search(r"cli-web: running \(g 1/1 running\)", started.out + started.err)
    assert (await spec_of(kube, ns, "cli-web"))["suspend"] is False


async def test_status_watch_redraws_and_ctrl_c_exits_cleanly(
    server: Caravan, kube: KubeClient, cli_namespace: str
) -> None:
    await create_job(kube, cli_namespace, "cli-watch")
    await ok(server, "start", "cli-watch", "--wait")
    process = await asyncio.create_subprocess_exec(
        CARAVAN,
        "status",
        "cli-watch",
        "--watch",
        "-o",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(server, None),
    )
    assert process.stdout is not None

    async def next_document() -> dict[str, Any]:
        lines = []
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
            lines.append(line)
            if line.rstrip() == "}":
                return dict(json.loads("".join(lines)))

    first = await next_document()
    assert first["taskGroups"][0]["count"] == 1
    await ok(server, "scale", "cli-watch", "g", "+1")
    second = await eventually(next_document, lambda d: d["taskGroups"][0]["count"] == 2)
    assert second["name"] == "cli-watch"
    process.send_signal(signal.SIGINT)
    code = await asyncio.wait_for(process.wait(), 10)
    err = (await process.stderr.read()).decode()  # type: ignore[union-attr]
    assert code == 0 and "Traceback" not in err


async def running_pods(server: Caravan, job: str, count: int) -> list[str]:
    assert server.state is not None
    store = server.state.store
    pods = await eventually(
        lambda: asyncio.sleep(0, [p for p in store.pods_of(job) if p.bucket == "running"]),
        lambda found: len(found) == count,
    )
    return [p.name for p in pods]


async def test_logdefs_logs_and_levels(
    server: Caravan, kube: KubeClient, cli_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = cli_namespace
    await create_job(kube, ns, "cli-logs")
    [pod] = await running_pods(server, "cli-logs", 1)
    log_file = tmp_path / "main.log"
    log_file.write_text(cri_log([("stdout", "hello from the game"), ("stdout", "second line")]))
    await serve_pod_log(kube, ns, pod, str(log_file))

    # An unknown log says how to go on.
    unknown = await run(server, "logs", "game")
    assert unknown.code == 1
    assert "no log 'game'" in unknown.err and "caravan logdefs list" in unknown.err
    assert "caravan logs --alloc" in unknown.err

    # Log definitions from the CLI, checked against the job's groups and tasks.
    created = await ok(server, "logdefs", "set", "game", "--job", "cli-logs", "--task", "main")
    assert "log game: created (cli-logs/g/main stdout)" in created.out
    again = await ok(server, "logdefs", "set", "game", "--job", "cli-logs", "--task", "main")
    assert "log game: unchanged" in again.out
    levels = await ok(
        server, "logdefs", "set", "game", "--job", "cli-logs", "--task", "main", "--levels"
    )
    assert "log game: replaced (logLevel: false → true)" in levels.out
    for args, said in (
        (["--job", "cli-logs", "--task", "nope"], "task group cli-logs/g has no task 'nope'"),
        (["--job", "cli-logs", "--group", "x", "--task", "main"], "has no task group 'x'"),
        (["--job", "ghost", "--task", "main"], "no job 'ghost'"),
    ):
        refused = await run(server, "logdefs", "set", "bad", *args)
        assert refused.code == 1 and said in refused.err, (args, refused)
    listed = await ok(server, "logdefs", "list")
    assert re.search(r"game\s+cli-logs\s+g\s+main\s+stdout\s+yes", listed.out)
    stored = json.loads((await kube.get(CONFIGMAPS.item(ns, "caravan-logs")))["data"]["logs.json"])
    assert [e for e in stored if e["id"] == "game"] == [
        {
            "id": "game",
            "job": "cli-logs",
            "group": "g",
            "task": "main",
            "fileName": "stdout",
            "logLevel": True,
        }
    ]
    assert "bad" not in {e["id"] for e in stored}

    full = await eventually(
        lambda: run(server, "logs", "game"), lambda r: "second line" in r.out, timeout=30
    )
    assert full.code == 0 and "hello from the game" in full.out
    assert f"allocation {pod} (running" in full.err  # which one it chose, on stderr
    tail = await ok(server, "logs", "game", "--tail", "12")
    assert tail.out == "second line\n"
    meta = json.loads((await ok(server, "logs", "game", "-o", "json")).out)
    assert meta["allocID"] == pod and meta["status"] == "running"
    assert meta["taskName"] == "main" and meta["jobName"] == "cli-logs"

    # An allocation's task, read directly: no log definition needed.
    direct = await ok(server, "logs", "--alloc", pod)
    assert "hello from the game" in direct.out
    direct_json = json.loads((await ok(server, "logs", "--alloc", pod, "-o", "json")).out)
    assert direct_json["taskName"] == "main" and direct_json["taskGroup"] == "g"
    no_task = await run(server, "logs", "--alloc", pod, "--task", "nope")
    assert no_task.code == 1 and "has no task 'nope' (tasks: main)" in no_task.err
    no_alloc = await run(server, "logs", "--alloc", "cli-logs-g-nope")
    assert no_alloc.code == 1 and "no allocation 'cli-logs-g-nope'" in no_alloc.err
    neither = await run(server, "logs")
    assert neither.code == 2 and "--alloc" in neither.err

    process = await asyncio.create_subprocess_exec(
        CARAVAN,
        "logs",
        "game",
        "-f",
        "--alloc",
        pod,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(server, None),
    )
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), 30)
    assert first == b"hello from the game\n"
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), 10) == 0

    # Levels: the defaults, then one allocation's overrides (a pod annotation).
    await ok(server, "loglevel", "game", "leaf=debug", "root=info")
    shown = json.loads((await ok(server, "loglevel", "game", "-o", "json")).out)
    assert shown == {"leaf": "debug", "root": "info"}
    await ok(server, "loglevel", "game", "--alloc", pod, "leaf=error")
    annotated = await kube.get(PODS.item(ns, pod))
    assert json.loads(annotated["metadata"]["annotations"]["caravan.dev/loggers"]) == {
        "game": {"leaf": "error"}
    }
    table = await ok(server, "loglevel", "game", "--alloc", pod)
    assert re.search(r"leaf\s+error\s+override", table.out)
    assert re.search(r"root\s+info\s+default", table.out)
    reset = await ok(server, "loglevel", "game", "--alloc", pod, "--reset")
    assert f"game: the overrides of allocation {pod} removed (leaf)" in reset.out
    annotated = await kube.get(PODS.item(ns, pod))
    annotations = annotated["metadata"].get("annotations") or {}
    assert "game" not in json.loads(annotations.get("caravan.dev/loggers") or "{}")
    nothing = await ok(server, "loglevel", "game", "--alloc", pod, "--reset")
    assert f"allocation {pod} had no overrides; nothing changed" in nothing.out
    dropped = await ok(server, "loglevel", "game", "--reset")
    assert "game: default levels removed (leaf, root)" in dropped.out
    assert json.loads((await ok(server, "loglevel", "game", "-o", "json")).out) == {}
    bad = await run(server, "loglevel", "game", "leaf=loud")
    assert bad.code == 2 and "LOGGER=LEVEL" in bad.err

    deleted = await ok(server, "logdefs", "delete", "game")
    assert "log game: deleted" in deleted.out
    assert "game" not in (await ok(server, "logdefs", "list")).out
    gone = await run(server, "logdefs", "delete", "game")
    assert gone.code == 1 and "no log 'game'" in gone.err
    await ok(server, "logdefs", "delete", "game", "--missing-ok")


async def test_logs_prefer_the_running_allocation_during_a_bad_rollout(
    server: Caravan, kube: KubeClient, cli_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = cli_namespace
    await create_job(kube, ns, "cli-roll")
    [working] = await running_pods(server, "cli-roll", 1)
    log_file = tmp_path / "working.log"
    log_file.write_text(cri_log([("stdout", "the working allocation")]))
    await serve_pod_log(kube, ns, working, str(log_file))
    await ok(server, "logdefs", "set", "roll", "--job", "cli-roll", "--task", "main")
    # A new version that can never run: its allocation is newer, and pending for good.
    job = await kube.get(JOBS.item(ns, "cli-roll"))
    job["spec"]["taskGroups"][0]["template"] = kubeutil.pod_template(
        node_selector={"caravan.test/no-such-node": "true"}
    )
    await kube.replace(JOBS.item(ns, "cli-roll"), job)
    metas = await eventually(
        lambda: run(server, "logs", "roll", "-o", "json"),
        lambda r: r.code == 0 and "1 other" in r.err,
        what="the new, pending allocation",
    )
    assert json.loads(metas.out)["allocID"] == working
    assert f"log roll: allocation {working} (running" in metas.err
    shown = await ok(server, "logs", "roll")
    assert "the working allocation" in shown.out


async def test_settings_get_set_and_edit(
    server: Caravan, kube: KubeClient, cli_namespace: str, tmp_path: pathlib.Path
) -> None:
    current = json.loads((await ok(server, "settings", "get")).out)
    assert current["info"]["name"] == "caravan"
    document = tmp_path / "settings.yaml"
    document.write_text("info:\n  name: from-a-file\n")
    await ok(server, "settings", "set", str(document))
    stored = await kube.get(CONFIGMAPS.item(cli_namespace, "caravan-settings"))
    assert json.loads(stored["data"]["settings.json"])["info"]["name"] == "from-a-file"
    invalid = await run(server, "settings", "set", "-", stdin='{"info": {"name": 7}}')
    assert invalid.code == 1 and "$.info.name" in invalid.err

    async def stored_settings() -> dict[str, Any]:
        configmap = await kube.get(CONFIGMAPS.item(cli_namespace, "caravan-settings"))
        return dict(json.loads(configmap["data"]["settings.json"]))

    # One value changed, typed by the schema; every other value kept.
    one = await ok(server, "settings", "set", "logs.followIdleTimeoutSeconds=600", "app.tier=2")
    assert "logs.followIdleTimeoutSeconds: 300 → 600" in one.out
    after = await stored_settings()
    assert after["logs"]["followIdleTimeoutSeconds"] == 600
    assert after["app"]["tier"] == 2
    assert after["info"]["name"] == "from-a-file"
    unknown = await run(server, "settings", "set", "logs.nope=1")
    assert unknown.code == 2 and "logs has no setting 'nope'" in unknown.err
    untyped = await run(server, "settings", "set", "logs.followIdleTimeoutSeconds=soon")
    assert untyped.code == 2 and "expected a number, got 'soon'" in untyped.err
    assert await stored_settings() == after

    # A partial document resets what it omits: the command says so first.
    partial = await ok(
        server, "settings", "set", "-", stdin='{"logs": {"followIdleTimeoutSeconds": 900}}'
    )
    assert "warning: the document omits" in partial.err
    assert "info.name" in partial.err and "app.tier" in partial.err
    assert "caravan settings set PATH=VALUE" in partial.err
    assert (await stored_settings())["info"]["name"] == "caravan"
    quiet = await ok(server, "settings", "set", "--yes", "-", stdin='{"info": {"name": "q"}}')
    assert "warning" not in quiet.err
    await ok(server, "settings", "set", "info.name=from-a-file")

    # The precondition: a write that lands while `settings edit` is open is not lost.
    intruder = tmp_path / "intruder.py"
    intruder.write_text(
        "import json, pathlib, sys, httpx\n"
        "path = pathlib.Path(sys.argv[1])\n"
        f"httpx.post({server.url + '/v1/settings'!r}, json={{'info': {{'name': 'meanwhile'}}}})\n"
        "body = json.loads(path.read_text())\n"
        "body['info']['description'] = 'from the editor'\n"
        "path.write_text(json.dumps(body))\n"
    )
    raced = await run(
        server, "settings", "edit", env={"EDITOR": f"{sys.executable} {intruder}", "VISUAL": ""}
    )
    assert raced.code == 1
    assert "the settings changed since this command read them" in raced.err
    assert (await stored_settings())["info"]["name"] == "meanwhile"
    await ok(server, "settings", "set", "info.name=from-a-file")

    # An editor that first writes an invalid document, then fixes it; it keeps what it saw.
    seen = tmp_path / "seen"
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import json, pathlib, sys\n"
        f"seen = pathlib.Path({str(seen)!r})\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "text = path.read_text()\n"
        "calls = len(list(seen.parent.glob('seen.*')))\n"
        "(seen.parent / f'seen.{calls}').write_text(text)\n"
        "body = json.loads('\\n'.join(l for l in text.splitlines() if not l.startswith('#')))\n"
        "body['info']['name'] = 12 if calls == 0 else 'edited'\n"
        "path.write_text(json.dumps(body))\n"
    )
    env = {"EDITOR": f"{sys.executable} {editor}", "VISUAL": ""}
    edited = await ok(server, "settings", "edit", env=env)
    assert "settings stored" in edited.out
    second_view = (tmp_path / "seen.1").read_text()
    assert second_view.startswith("# The settings were refused")
    assert "$.info.name" in second_view
    stored = await kube.get(CONFIGMAPS.item(cli_namespace, "caravan-settings"))
    assert json.loads(stored["data"]["settings.json"])["info"]["name"] == "edited"
    unchanged = await ok(server, "settings", "edit", env={"EDITOR": "true", "VISUAL": ""})
    assert "edit cancelled" in unchanged.out


async def test_secrets_never_print_values_unless_asked(
    server: Caravan, kube: KubeClient, cli_namespace: str
) -> None:
    await ok(server, "secrets", "set", "cli-api", "TOKEN=s3cr3t-value", "USER=me")
    await ok(server, "secrets", "set", "cli-api", "USER=you")  # merged over the others
    secret = await kube.get(SECRETS.item(cli_namespace, "cli-api"))
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "caravan"
    assert set(secret["data"]) == {"TOKEN", "USER"}
    assert "cli-api" in (await ok(server, "secrets", "list")).out
    hidden = await ok(server, "secrets", "get", "cli-api")
    assert "s3cr3t-value" not in hidden.out and "TOKEN" in hidden.out
    assert "<hidden: --show prints it>" in hidden.out
    assert "12" not in hidden.out and "chars" not in hidden.out  # not even the length
    bad_id = await run(server, "secrets", "get", "Bad_Id")
    assert bad_id.code == 2
    assert bad_id.err.count("must be a Kubernetes name") == 1
    assert "[a-z0-9]" not in bad_id.err  # a sentence, not the pattern
    hidden_json = json.loads((await ok(server, "secrets", "get", "cli-api", "-o", "json")).out)
    assert hidden_json == {"id": "cli-api", "keys": ["TOKEN", "USER"]}
    shown = json.loads((await ok(server, "secrets", "get", "cli-api", "--show", "-o", "json")).out)
    assert shown == {"TOKEN": "s3cr3t-value", "USER": "you"}
    assert (await run(server, "secrets", "set", "cli-api", "novalue")).code == 2
    await ok(server, "secrets", "delete", "cli-api")
    left = (await kube.get(SECRETS.collection(cli_namespace)))["items"]
    assert "cli-api" not in [item["metadata"]["name"] for item in left]


async def test_events_load_send_results(server: Caravan) -> None:
    await ok(server, "events", "load", str(EVENTS_DOCUMENT))
    view = json.loads((await ok(server, "events", "get")).out)
    assert view["errors"] == "" and len(view["mapreduce"]) == 1
    # `results -f` keeps the collection alive (it is dropped after 5 s without a read).
    follower = await asyncio.create_subprocess_exec(
        CARAVAN,
        "events",
        "results",
        "-f",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(server, None),
    )
    assert follower.stdout is not None
    await asyncio.sleep(1.5)  # its first read has started the collection
    batch = "\n".join(json.dumps({"key": ["vote"], "value": "e4"}) for _ in range(3))
    sent = json.loads(
        (await ok(server, "events", "send", "game", "-", "-o", "json", stdin=batch)).out
    )
    assert sent["accepted"] == 3
    while True:
        line = (await asyncio.wait_for(follower.stdout.readline(), 20)).decode()
        if "vote-count" in line:
            break
    value = json.loads(line)
    assert value["id"] == "vote-count" and value["channel"] == "game"
    assert value["results"] == [{"key": ["e4"], "value": value["results"][0]["value"]}]
    assert value["results"][0]["value"]["count"] == 3
    follower.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(follower.wait(), 10) == 0
    broken = await run(server, "events", "load", "-", stdin='{"version": "1.7.0", "event": 3}')
    assert broken.code == 1


async def test_jobsdefs_and_monitor(
    server: Caravan, kube: KubeClient, cli_namespace: str, tmp_path: pathlib.Path
) -> None:
    definitions = tmp_path / "defs.yaml"
    definitions.write_text(
        json.dumps(
            {
                "cli-def": {
                    "autostart": False,
                    "template": {"taskGroups": [group("g", count_max=2)]},
                }
            }
        )
    )
    loaded = await ok(server, "jobsdefs", "load", str(definitions))
    assert "job cli-def: created" in loaded.out
    assert (await spec_of(kube, cli_namespace, "cli-def"))["autostart"] is False
    again = await ok(server, "jobsdefs", "load", str(definitions))
    assert "job cli-def: unchanged" in again.out
    table = await ok(server, "jobsdefs", "get", "cli-def")
    assert re.search(r"cli-def\s+no\s+-\s+g \(1/2\)", table.out)
    # Round trip: what get prints, load takes back as it is.
    printed = await ok(server, "jobsdefs", "get", "cli-def", "-o", "json")
    assert list(json.loads(printed.out)) == ["cli-def"]
    round_trip = tmp_path / "cli-def.json"
    round_trip.write_text(printed.out)
    reloaded = await ok(server, "jobsdefs", "load", str(round_trip))
    assert "job cli-def: unchanged" in reloaded.out
    await ok(server, "start", "cli-def")
    changed = json.loads(printed.out)
    changed["cli-def"]["template"]["taskGroups"][0]["countMax"] = 3
    round_trip.write_text(json.dumps(changed))
    running = await run(server, "jobsdefs", "load", str(round_trip))
    assert running.code == 1 and "use --force" in running.err
    assert "force=true" not in running.err
    refused = await run(server, "jobsdefs", "delete", "cli-def")
    assert refused.code == 1 and "use --force" in refused.err
    assert "force=true" not in refused.err
    await ok(server, "jobsdefs", "delete", "cli-def", "--force")
    try:
        job = await kube.get(JOBS.item(cli_namespace, "cli-def"))
    except KubeError as exc:
        assert exc.status == 404
    else:
        assert job["metadata"].get("deletionTimestamp")  # still going

    opened = await ok(server, "monitor", env={"PATH": "/nonexistent", "BROWSER": "", "DISPLAY": ""})
    assert f"{server.url}/ui/" in opened.out
    script = await ok(server, "completion", "bash")
    assert "_CARAVAN_COMPLETE" in script.out


async def test_load_a_genvid_project(
    server: Caravan, kube: KubeClient, cli_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = cli_namespace
    # As the README's walkthrough has it: examples/web.yaml applied first (stopped here:
    # its tasks need the real node, and this test is about what load writes).
    web = yaml.safe_load((ROOT / "examples" / "web.yaml").read_text())
    web["spec"]["suspend"] = True
    await kube.create(JOBS.collection(ns), web)
    files = [str(f) for f in sorted(SAMPLE_PROJECT.iterdir())]

    async def stored_settings() -> str:
        return str(
            (await kube.get(CONFIGMAPS.item(ns, "caravan-settings")))["data"].get(
                "settings.json", ""
            )
        )

    settings_before = await stored_settings()

    planned = await ok(server, "load", "--dry-run", *files)
    lines = planned.out.splitlines()
    assert re.search(
        r"^~ settings\s+settings\s+replace\s+changed info.description, info.name; "
        r"added app.encode$",
        planned.out,
        re.M,
    )
    assert "    +  name: tutorial" in lines  # the diff under the settings line
    assert any(line.startswith("    -  name: ") for line in lines)
    assert re.search(
        r"^\+ job\s+services\s+create\s+groups \(init/max\) api \(1/2\)", planned.out, re.M
    )
    assert re.search(
        r'^~ job\s+web\s+replace\s+dependencies: \[\] → \["services"\]$', planned.out, re.M
    )
    assert re.search(r"^\+ log\s+frontErr\s+create\s+web/front/front stderr$", planned.out, re.M)
    assert re.search(
        r"^\+ secret\s+command\s+create\s+2 keys: GENVID_COMMAND_SECRET, akey$", planned.out, re.M
    )
    assert "commandsecret" not in planned.out  # values never shown
    assert "['" not in planned.out and "1 keys" not in planned.out  # no Python reprs
    assert "link 'web' is not converted" in planned.out
    assert "dry run" in planned.out
    assert (await spec_of(kube, ns, "web")).get("dependencies") in (None, [])
    assert await stored_settings() == settings_before
    with pytest.raises(KubeError):
        await kube.get(JOBS.item(ns, "services"))

    applied = await ok(server, "load", *files)
    assert "change(s) applied" in applied.out
    assert (await spec_of(kube, ns, "web"))["dependencies"] == ["services"]
    services = await spec_of(kube, ns, "services")
    assert services["suspend"] is True  # created stopped, as a loaded definition is
    assert services["taskGroups"][0]["template"]["spec"]["containers"][0]["image"] == (
        "caravan-example-task:0.1.0"
    )
    secret = await kube.get(SECRETS.item(ns, "disco"))
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "caravan"
    settings = json.loads(await stored_settings())
    assert settings["info"]["name"] == "tutorial"
    assert settings["app"]["encode"]["input"] == {"width": 1280, "height": 720}
    logs = {
        entry["id"]: entry
        for entry in json.loads(
            (await kube.get(CONFIGMAPS.item(ns, "caravan-logs")))["data"]["logs.json"]
        )
    }
    assert logs["frontErr"] == {
        "id": "frontErr",
        "job": "web",
        "group": "front",
        "task": "front",
        "fileName": "stderr",
        "logLevel": False,
    }
    live = {i: (e["job"], e["group"], e["task"]) for i, e in logs.items() if e["logLevel"]}
    assert live == {
        "api": ("services", "api", "api"),
        "front": ("web", "front", "front"),
        "worker": ("web", "worker", "worker"),
    }

    again = await ok(server, "load", "-o", "json", *files)
    plan = json.loads(again.out)
    assert {c["action"] for c in plan["changes"]} == {"unchanged"}

    broken = tmp_path / "broken.hcl"
    broken.write_text(
        'job "ghost" {\n  autostart = true\n}\nconfig {\n  info { name = "x" }\n}\n'
        'log "web" {\n  job = "web"\n  group = "web"\n  task = "web"\n}\n'
    )
    before = await stored_settings()
    failed = await run(server, "load", str(broken))
    assert failed.code == 1 and "job 'ghost' does not exist" in failed.err
    assert "log 'web': job 'web' has no task group 'web' (groups: front, worker)" in failed.err
    assert "nothing was changed" in failed.err
    assert await stored_settings() == before
    syntax = tmp_path / "syntax.hcl"
    syntax.write_text('log "x" { job = }')
    bad = await run(server, "load", str(syntax))
    assert bad.code == 2 and "not valid HCL" in bad.err


async def test_tokens_from_the_flag_and_the_kubeconfig(
    kubeconfig: str, kube: KubeClient, cli_namespace: str, tmp_path: pathlib.Path
) -> None:
    reader = await kubeutil.service_account_token(
        kube,
        cli_namespace,
        "cli-reader",
        [{"apiGroups": ["caravan.dev"], "resources": ["jobs"], "verbs": ["get", "list"]}],
    )
    config = kubeutil.token_kubeconfig(kubeconfig, reader, str(tmp_path / "reader.kubeconfig"))
    async with running_caravan(
        namespace=cli_namespace, kubeconfig=kubeconfig, auth_mode="kubernetes", run_operator=False
    ) as secured:
        denied = await run(secured, "status")
        assert denied.code == 1 and "missing bearer token" in denied.err
        await ok(secured, "status", "--token", reader)
        await ok(secured, "status", "--token-from-kubeconfig", env={"KUBECONFIG": config})
        forbidden = await run(secured, "stop", env={"CARAVAN_TOKEN": reader})
        assert forbidden.code == 1 and "may not patch jobs.caravan.dev" in forbidden.err


async def test_caravan_run_gives_the_lease_up_at_sigterm(
    kubeconfig: str, kube: KubeClient, namespace: str
) -> None:
    """`helm uninstall` stops the pod and deletes its RBAC at once: the Lease is left
    first thing on SIGTERM, so it names no holder afterwards."""
    process = subprocess.Popen(  # noqa: ASYNC220 - its pipes are read off the loop
        [
            *(CARAVAN, "run", "--port", "0", "--namespace", namespace),
            *("--kubeconfig", kubeconfig, "--leader-elect", "--lease-seconds", "30"),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lease = await eventually(
            lambda: kube.get(LEASES.item(namespace, "caravan-operator")),
            lambda found: bool(found["spec"].get("holderIdentity")),
            what="the Lease held",
            timeout=60,
        )
        assert lease["spec"]["leaseDurationSeconds"] == 30
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 30)
        assert process.stderr is not None
        said = process.stderr.read()
        assert code == 0, said[-4000:]
        released = await kube.get(LEASES.item(namespace, "caravan-operator"))
        assert released["spec"]["holderIdentity"] == ""
        assert "is no longer the leader" in said
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
