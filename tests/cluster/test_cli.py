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
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from caravan.kube.client import CONFIGMAPS, JOBS, NAMESPACES, PODS, SECRETS, KubeClient, KubeError
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
    assert missing.code == 1 and "has no task group 'nope'" in missing.err
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


async def test_logs_newest_allocation_tail_and_follow(
    server: Caravan, kube: KubeClient, cli_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = cli_namespace
    await create_job(kube, ns, "cli-logs")
    assert server.state is not None
    store = server.state.store
    pods = await eventually(
        lambda: asyncio.sleep(0, [p for p in store.pods_of("cli-logs") if p.bucket == "running"]),
        lambda found: len(found) == 1,
    )
    log_file = tmp_path / "main.log"
    log_file.write_text(cri_log([("stdout", "hello from the game"), ("stdout", "second line")]))
    await serve_pod_log(kube, ns, pods[0].name, str(log_file))
    definition = {
        "id": "game",
        "job": "cli-logs",
        "group": "g",
        "task": "main",
        "fileName": "stdout",
        "logLevel": True,
    }
    async with httpx.AsyncClient(base_url=server.url) as api:
        current = (await api.get("/v1/log/logs")).json()
        assert (await api.post("/v1/log/logs", json=[*current, definition])).status_code == 200

    full = await eventually(
        lambda: run(server, "logs", "game"), lambda r: "second line" in r.out, timeout=30
    )
    assert full.code == 0 and "hello from the game" in full.out
    tail = await ok(server, "logs", "game", "--tail", "12")
    assert tail.out == "second line\n"
    unknown = await run(server, "logs", "nope")
    assert unknown.code == 1 and "nope" in unknown.err

    process = await asyncio.create_subprocess_exec(
        CARAVAN,
        "logs",
        "game",
        "-f",
        "--alloc",
        pods[0].name,
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
    await ok(server, "loglevel", "game", "--alloc", pods[0].name, "leaf=error")
    pod = await kube.get(PODS.item(ns, pods[0].name))
    assert json.loads(pod["metadata"]["annotations"]["caravan.dev/loggers"]) == {
        "game": {"leaf": "error"}
    }
    table = await ok(server, "loglevel", "game", "--alloc", pods[0].name)
    assert re.search(r"leaf\s+error\s+override", table.out)
    assert re.search(r"root\s+info\s+default", table.out)
    await ok(server, "loglevel", "game", "--alloc", pods[0].name, "--reset")
    pod = await kube.get(PODS.item(ns, pods[0].name))
    annotations = pod["metadata"].get("annotations") or {}
    assert "game" not in json.loads(annotations.get("caravan.dev/loggers") or "{}")
    bad = await run(server, "loglevel", "game", "leaf=loud")
    assert bad.code == 2 and "LOGGER=LEVEL" in bad.err


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
    await ok(server, "start", "cli-def")
    refused = await run(server, "jobsdefs", "delete", "cli-def")
    assert refused.code == 1 and "force" in refused.err
    await ok(server, "jobsdefs", "delete", "cli-def", "--force")
    try:
        job = await kube.get(JOBS.item(cli_namespace, "cli-def"))
    except KubeError as exc:
        assert exc.status == 404
    else:
        assert job["metadata"].get("deletionTimestamp")  # going (the operator's finalizer)

    opened = await ok(server, "monitor", env={"PATH": "/nonexistent", "BROWSER": "", "DISPLAY": ""})
    assert f"{server.url}/ui/" in opened.out
    script = await ok(server, "completion", "bash")
    assert "_CARAVAN_COMPLETE" in script.out


async def test_load_a_genvid_project(
    server: Caravan, kube: KubeClient, cli_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = cli_namespace
    await create_job(kube, ns, "services", suspend=True)
    await create_job(kube, ns, "web", suspend=True)
    files = [str(SAMPLE_PROJECT / "services.hcl"), str(SAMPLE_PROJECT / "web.hcl")]

    async def stored_settings() -> str:
        return str(
            (await kube.get(CONFIGMAPS.item(ns, "caravan-settings")))["data"].get(
                "settings.json", ""
            )
        )

    settings_before = await stored_settings()

    planned = await ok(server, "load", "--dry-run", *files)
    assert re.search(r"\+\s+log\s+webErr\s+create", planned.out)
    assert re.search(r"~\s+job\s+web\s+replace\s+dependencies \[\] → \['services'\]", planned.out)
    assert re.search(r"\+\s+secret\s+disco\s+create", planned.out)
    assert "link 'web' is not converted" in planned.out
    assert "dry run" in planned.out
    assert (await spec_of(kube, ns, "web")).get("dependencies") == []
    assert await stored_settings() == settings_before

    applied = await ok(server, "load", *files)
    assert "change(s) applied" in applied.out
    assert (await spec_of(kube, ns, "web"))["dependencies"] == ["services"]
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
    assert logs["webErr"] == {
        "id": "webErr",
        "job": "web",
        "group": "g",
        "task": "web",
        "fileName": "stderr",
        "logLevel": False,
    }

    again = await ok(server, "load", "-o", "json", *files)
    plan = json.loads(again.out)
    assert {c["action"] for c in plan["changes"]} == {"unchanged"}

    # Start All now starts services before web.
    started = json.loads((await ok(server, "start", "-o", "json")).out)
    assert {j["name"] for j in started if j["status"] != "dead"} >= {"services", "web"}

    broken = tmp_path / "broken.hcl"
    broken.write_text('job "ghost" {\n  autostart = true\n}\nconfig {\n  info { name = "x" }\n}\n')
    before = await stored_settings()
    failed = await run(server, "load", str(broken))
    assert failed.code == 1 and "job 'ghost' does not exist" in failed.err
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
