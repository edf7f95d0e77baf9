"""The Cluster UI in a real headless Chromium (Debian's package, driven by Playwright),
against a Caravan on the cluster. Each test proves its effect through the API or
Kubernetes, not only the page; a page that logs a console error fails its test (unless
the test names the error it causes on purpose, e.g. the 422 of an invalid save); every
page visited is saved as a screenshot under .local/ui/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Request, expect

from caravan import labels
from caravan.jobs.spec import deployment_name
from caravan.kube.client import CONFIGMAPS, DEPLOYMENTS, JOBS, SECRETS, KubeClient, KubeError
from caravan.runner import Caravan
from tests.cluster.conftest import KUBECTL, running_caravan
from tests.cluster.kubeutil import (
    cri_log,
    eventually,
    group,
    job_body,
    pod_template,
    serve_pod_log,
    service_account_token,
)
from tests.cluster.uibrowser import SHOTS, UiPage, chromium, chromium_path, ui_page
from tests.samples import votes_only

# Chromium reports every non-2xx fetch as a console error; tests that cause one say so.
NETWORK_401 = r"status of 401"
SAVED = re.compile(r"^Saved at")  # not "Not saved."


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    shutil.rmtree(SHOTS, ignore_errors=True)  # this run's screenshots only
    async with chromium() as instance:
        yield instance


@pytest.fixture
async def ui(
    browser: Browser, caravan: Caravan, request: pytest.FixtureRequest
) -> AsyncIterator[UiPage]:
    async with ui_page(browser, caravan.url, request.node.name) as page:
        yield page


async def replicas(kube: KubeClient, namespace: str, job: str, grp: str) -> int | None:
    try:
        deployment = await kube.get(DEPLOYMENTS.item(namespace, deployment_name(job, grp)))
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    return int(deployment["spec"]["replicas"])


async def running_pods(caravan: Caravan, job: str, count: int) -> list[str]:
    assert caravan.state is not None
    store = caravan.state.store

    async def running() -> list[str]:
        return [p.name for p in store.pods_of(job) if p.bucket == "running"]

    return await eventually(running, lambda pods: len(pods) == count, what=f"{count} running")


async def pods_of(kube: KubeClient, namespace: str, job: str, grp: str) -> dict[str, str]:
    """The group's pods that are not being deleted: name → uid."""
    listed = await kube.list_items(
        f"/api/v1/namespaces/{namespace}/pods",
        labelSelector=f"{labels.JOB_LABEL}={job},{labels.TASK_GROUP_LABEL}={grp}",
    )
    return {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in listed["items"]
        if not p["metadata"].get("deletionTimestamp")
    }


async def one_pod(kube: KubeClient, namespace: str, job: str, grp: str) -> dict[str, str]:
    """The group's one pod (name → uid) once it has exactly one that is not going."""
    return await eventually(
        lambda: pods_of(kube, namespace, job, grp), lambda p: len(p) == 1, what=f"{job}/{grp}"
    )


def kubectl(kubeconfig: str, *args: str) -> str:
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, check=True
    )
    return done.stdout


# Jobs ----------------------------------------------------------------------------------


async def test_jobs_page_scales_with_debounced_clicks_and_follows_kubectl(
    ui: UiPage, kube: KubeClient, namespace: str, kubeconfig: str, caravan: Caravan
) -> None:
    await kube.create(
        JOBS.collection(namespace),
        job_body("web", [group("front", count_init=1, count_max=10), group("back")]),
    )
    await kube.create(JOBS.collection(namespace), job_body("batch", [group("work")]))
    await running_pods(caravan, "web", 2)
    updates: list[Any] = []

    def record(request: Request) -> None:
        if request.url.endswith("/v1/jobs/updatecounts"):
            updates.append(request.post_data_json)

    ui.page.on("request", record)
    await ui.open("/ui/")
    page = ui.page
    front = page.locator('tbody[data-job="web"] tr[data-group="front"]')
    await expect(front.locator(".count")).to_have_text("1")
    await expect(page.locator('tbody[data-job="web"]')).to_have_attribute("data-status", "running")
    # The page must not reload for what follows: a marker on its window survives.
    await page.evaluate("window.caravanMarker = 'same page'")
    await ui.shot("jobs")

    # Five quick clicks: one updatecounts call with +5, the Deployment at 6.
    # Light and dark follow the system's preference.
    await page.emulate_media(color_scheme="dark")
    dark = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    await ui.shot("jobs-dark")
    await page.emulate_media(color_scheme="light")
    light = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (light, dark) == ("rgb(255, 255, 255)", "rgb(18, 22, 28)")

    # Five quick clicks: one updatecounts call with +5, the Deployment at 6.
    plus = front.get_by_role("button", name="web/front plus 1")
    await plus.click(click_count=5)
    await expect(front.locator(".pending")).to_contain_text("+5")
    await eventually(
        lambda: replicas(kube, namespace, "web", "front"), lambda n: n == 6, what="6 replicas"
    )
    assert updates == [{"jobID": "web", "taskGroup": "front", "count": 5}]
    await expect(front.locator(".count")).to_have_text("6")
    # From the keyboard too; rows are updated in place, so the focus stays on the button.
    minus = front.get_by_role("button", name="web/front minus 1")
    await minus.focus()
    await page.keyboard.press("Enter")
    await eventually(
        lambda: replicas(kube, namespace, "web", "front"), lambda n: n == 5, what="5 replicas"
    )
    assert updates[1:] == [{"jobID": "web", "taskGroup": "front", "count": -1}]
    await expect(front.locator(".count")).to_have_text("5")
    focused = await page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "web/front minus 1"

    # A change made elsewhere (kubectl) shows without a reload, through the long poll.
    kubectl(
        kubeconfig,
        "-n",
        namespace,
        "patch",
        "jobs.caravan.dev",
        "web",
        "--type=json",
        "-p",
        '[{"op": "replace", "path": "/spec/taskGroups/0/count", "value": 3}]',
    )
    await expect(front.locator(".count")).to_have_text("3")
    assert await page.evaluate("window.caravanMarker") == "same page"

    # 0, then stop and start the job; each proven on the Deployment.
    await front.get_by_role("button", name="web/front to 0").click()
    await eventually(
        lambda: replicas(kube, namespace, "web", "front"), lambda n: n == 0, what="0 replicas"
    )
    await page.get_by_role("button", name="Stop job web").click()
    await expect(page.locator('tbody[data-job="web"]')).to_have_attribute("data-status", "dead")
    await eventually(
        lambda: replicas(kube, namespace, "web", "back"), lambda n: n == 0, what="back stopped"
    )
    await expect(plus).to_be_disabled()
    await page.get_by_role("button", name="Start job web").click()
    await eventually(
        lambda: replicas(kube, namespace, "web", "front"), lambda n: n == 1, what="countInit"
    )
    await expect(front.locator(".count")).to_have_text("1")

    # Stop All, then Start All: every job, proven on the API.
    async with httpx.AsyncClient(base_url=caravan.url, timeout=30) as api:

        async def statuses() -> set[str]:
            return {j["status"] for j in (await api.get("/v1/jobs")).json()}

        await page.get_by_role("button", name="Stop All").click()
        await eventually(statuses, lambda s: s == {"dead"}, what="every job stopped")
        await expect(page.locator('tbody[data-job="batch"]')).to_have_attribute(
            "data-status", "dead"
        )
        await page.get_by_role("button", name="Start All").click()
        await eventually(statuses, lambda s: "dead" not in s, what="every job started")
    await eventually(
        lambda: replicas(kube, namespace, "batch", "work"), lambda n: n == 1, what="batch back"
    )

    # The filter keeps only matching jobs.
    await page.get_by_label("Filter").fill("bat")
    await expect(page.locator('tbody[data-job="web"]')).to_be_hidden()
    await expect(page.locator('tbody[data-job="batch"]')).to_be_visible()
    await page.get_by_label("Filter").fill("")

    # The job's detail: its allocations, then a deep link and back/forward.
    await page.get_by_role("link", name="web", exact=True).click()
    await expect(page).to_have_url(f"{caravan.url}/ui/jobs/web")
    allocations = page.locator("table.allocs tbody tr")
    await expect(allocations).to_have_count(2)
    # (From the apiserver: after the stop and start, the old pods may still be going.)
    for grp in ("front", "back"):
        (pod,) = await one_pod(kube, namespace, "web", grp)
        row = page.locator(f'tr[data-alloc="{pod}"]')
        await expect(row.locator(".badge")).to_have_text("running")
        node = (await kube.get(f"/api/v1/namespaces/{namespace}/pods/{pod}"))["spec"]["nodeName"]
        await expect(row.locator("td").nth(2)).to_have_text(node)
    await ui.shot("job-detail")
    await page.go_back()
    await expect(page).to_have_url(f"{caravan.url}/ui/")
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    await page.go_forward()
    await expect(page.get_by_role("heading", name="Allocations")).to_be_visible()
    assert await page.evaluate("window.caravanMarker") == "same page"


# The tab hidden or shown, as the browser says it when the user switches tabs.
HIDE_TAB = """() => {
    Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
    document.dispatchEvent(new Event('visibilitychange'));
}"""
SHOW_TAB = HIDE_TAB.replace("() => true", "() => false")


async def test_jobs_page_pauses_while_hidden_and_stays_usable_with_200_jobs(
    browser: Browser, kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    # The jobs view is the store's: no operator needed (nor 200 Deployments on 2 cores).
    bodies = [job_body(f"job-{i:03d}", [group("g")], suspend=True) for i in range(200)]
    for start in range(0, 200, 50):
        await asyncio.gather(
            *(kube.create(JOBS.collection(namespace), b) for b in bodies[start : start + 50])
        )
    async with (
        running_caravan(namespace=namespace, kubeconfig=kubeconfig, run_operator=False) as c,
        ui_page(browser, c.url, "200-jobs") as ui,
    ):
        await two_hundred_jobs(ui, kube, namespace, c)


async def two_hundred_jobs(ui: UiPage, kube: KubeClient, namespace: str, caravan: Caravan) -> None:
    assert caravan.state is not None
    store = caravan.state.store
    await eventually(
        lambda: asyncio.sleep(0, len(store.jobs)),  # (sleep(0, x) is an awaitable of x)
        lambda n: n == 200,
        what="200 jobs stored",
    )
    polls: list[str] = []
    ui.page.on("request", lambda r: polls.append(r.url) if "/v1/jobs" in r.url else None)
    await ui.open("/ui/")
    page = ui.page
    await expect(page.locator("table.jobs tbody")).to_have_count(200)
    await expect(page.locator('tbody[data-job="job-199"]')).to_have_attribute("data-status", "dead")
    await page.get_by_label("Filter").fill("job-19")
    await expect(page.locator("table.jobs tbody:visible")).to_have_count(10)
    await ui.shot("200-jobs-filtered")

    # Hidden tab: the pending poll is dropped and no new one starts until visible again.
    await page.evaluate(HIDE_TAB)
    await expect(page.locator(".live")).to_contain_text("paused")
    seen = len(polls)
    await kube.merge_patch(JOBS.item(namespace, "job-000"), {"spec": {"suspend": False}})
    await eventually(
        lambda: asyncio.sleep(0, store.jobs["job-000"].suspend),
        lambda s: s is False,
        what="job-000 started",
    )
    await asyncio.sleep(1.0)  # a poll would have been answered by now
    assert len(polls) == seen, polls[seen:]
    await expect(page.locator('tbody[data-job="job-000"]')).to_have_attribute("data-status", "dead")
    await page.evaluate(SHOW_TAB)
    await expect(page.locator('tbody[data-job="job-000"]')).not_to_have_attribute(
        "data-status", "dead"
    )


# Failures, restart and activity -------------------------------------------------------


def crash_looping(pod: dict[str, Any], exit_code: int = 3) -> dict[str, Any]:
    """The status the kubelet writes for a container that keeps exiting with `exit_code`:
    waiting in CrashLoopBackOff, its last run terminated. (kwok's pods run nothing, so the
    test writes it; the failure facts read the same fields either way.)"""
    now = pod["status"].get("startTime") or pod["metadata"]["creationTimestamp"]
    statuses = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 4,
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 40s restarting failed container={c['name']}",
                }
            },
            "lastState": {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Error",
                    "startedAt": now,
                    "finishedAt": now,
                }
            },
        }
        for c in pod["spec"]["containers"]
    ]
    return {"status": {"containerStatuses": statuses}}


async def test_crash_looping_group_is_flagged_explained_and_restarted(
    ui: UiPage, kube: KubeClient, namespace: str, caravan: Caravan
) -> None:
    starting = pod_template(annotations={"kwok.caravan.dev/outcome": "starting"})
    await kube.create(
        JOBS.collection(namespace),
        job_body("crashy", [group("web"), group("loop", template=starting)]),
    )
    (looping,) = (await one_pod(kube, namespace, "crashy", "loop")).items()
    pod_path = f"/api/v1/namespaces/{namespace}/pods/{looping[0]}"
    pod = await eventually(
        lambda: kube.get(pod_path), lambda p: p["status"].get("phase") == "Running", what="Running"
    )
    await kube.merge_patch(pod_path + "/status", crash_looping(pod))
    async with httpx.AsyncClient(base_url=caravan.url, timeout=30) as api:
        view = await eventually(
            lambda: api.get("/v1/jobs/crashy"),
            lambda r: bool(r.json()["taskGroups"][1]["problems"]),
            what="the loop group's problem",
        )
        problems = {g["name"]: g["problems"] for g in view.json()["taskGroups"]}
        assert [p["reason"] for p in problems["loop"]] == ["CrashLoopBackOff"]
        assert problems["web"] == []

        # The jobs page flags the group, and only it.
        page = ui.page
        await ui.open("/ui/")
        loop_row = page.locator('tbody[data-job="crashy"] tr[data-group="loop"]')
        await expect(loop_row).to_have_attribute("data-problems", "CrashLoopBackOff")
        await expect(loop_row.locator(".badge.problem")).to_have_text("CrashLoopBackOff")
        web_row = page.locator('tbody[data-job="crashy"] tr[data-group="web"]')
        await expect(web_row.locator(".badge.problem")).to_have_count(0)
        await ui.shot("jobs-problem")

        # The job page says why: the reason, the exit code, the group's message.
        await page.get_by_role("link", name="crashy", exact=True).click()
        await ui.ready()
        row = page.locator(f'tr[data-alloc="{looping[0]}"]')
        await expect(row).to_have_attribute("data-reason", "CrashLoopBackOff")
        await expect(row.locator("td.why")).to_contain_text("CrashLoopBackOff")
        await expect(row.locator("td.why")).to_contain_text("exit code 3")
        message = problems["loop"][0]["message"]
        await expect(
            page.locator('table.groups tr[data-group="loop"] td.problems')
        ).to_contain_text(message)
        await ui.shot("job-why")

        # Restart the allocation: nothing before the confirmation, then a new pod (uid).
        restart = row.get_by_role("button", name=f"Restart allocation {looping[0]}")
        await restart.click()
        await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
        assert (await kube.get(pod_path))["metadata"]["uid"] == looping[1]
        await restart.click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_contain_text(f"Restart allocation {looping[0]}?")
        await ui.shot("restart-confirm")
        await dialog.get_by_role("button", name="Restart").click()
        replaced = await eventually(
            lambda: pods_of(kube, namespace, "crashy", "loop"),
            lambda p: len(p) == 1 and looping[1] not in p.values(),
            what="the allocation replaced",
        )
        (new_pod,) = replaced
        await expect(page.locator(f'tr[data-alloc="{new_pod}"]')).to_have_count(1)
        await expect(page.locator(f'tr[data-alloc="{looping[0]}"]')).to_have_count(0)

        # The activity timeline follows: the restart's Event shows without a reload, as
        # the API lists it.
        restarted = page.locator('table.activity tr[data-reason="Restarted"]')
        await expect(restarted).to_have_count(1)
        await expect(restarted).to_contain_text(looping[0])
        items = (await api.get("/v1/jobs/crashy/activity")).json()["items"]
        assert any(i["reason"] == "Restarted" and looping[0] in i["message"] for i in items)

        # Restart a group (rolling), then the whole job: new pods each time.
        (web_before,) = (await pods_of(kube, namespace, "crashy", "web")).values()
        await page.get_by_role("button", name="Restart task group web").click()
        await page.get_by_role("dialog").get_by_role("button", name="Restart").click()
        web_after = await eventually(
            lambda: pods_of(kube, namespace, "crashy", "web"),
            lambda p: len(p) == 1 and web_before not in p.values(),
            what="the web group restarted",
        )
        await page.get_by_role("button", name="Restart job crashy").click()
        await page.get_by_role("dialog").get_by_role("button", name="Restart").click()
        await eventually(
            lambda: pods_of(kube, namespace, "crashy", "web"),
            lambda p: len(p) == 1 and not set(p.values()) & set(web_after.values()),
            what="the job restarted",
        )
        # Three Restarted Events (the allocation, the group, the job), on the page as in
        # the API.
        await eventually(
            lambda: api.get("/v1/jobs/crashy/activity"),
            lambda r: [i["reason"] for i in r.json()["items"]].count("Restarted") == 3,
            what="three Restarted Events",
        )
        await expect(restarted).to_have_count(3)
        await ui.shot("job-restarted")


# Versions ------------------------------------------------------------------------------


async def test_versions_tab_shows_the_diff_and_reverts(
    ui: UiPage, kube: KubeClient, namespace: str, kubeconfig: str, caravan: Caravan
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("web", [group("front")]))
    async with httpx.AsyncClient(base_url=caravan.url, timeout=30) as api:
        await eventually(
            lambda: api.get("/v1/jobs/web/versions"),
            lambda r: r.status_code == 200 and len(r.json()) == 1,
            what="version 1",
        )
        # A new image, made with kubectl: version 2.
        kubectl(
            kubeconfig,
            "-n",
            namespace,
            "patch",
            "jobs.caravan.dev",
            "web",
            "--type=json",
            "-p",
            '[{"op": "replace", "path": "/spec/taskGroups/0/template/spec/containers/0/image",'
            ' "value": "caravan.test/fake:2"}]',
        )
        listed = await eventually(
            lambda: api.get("/v1/jobs/web/versions"),
            lambda r: len(r.json()) == 2,
            what="version 2",
        )
        newest, oldest = (v["version"] for v in listed.json())

        page = ui.page
        await ui.open("/ui/jobs/web")
        await page.get_by_role("link", name="Versions").click()
        await expect(page).to_have_url(f"{caravan.url}/ui/jobs/web/versions")
        await ui.ready()
        await expect(page.locator("table.versions tbody tr")).to_have_count(2)
        diff = page.locator("pre.diff")
        await expect(diff).to_have_attribute("data-from", str(oldest))
        await expect(diff).to_have_attribute("data-to", str(newest))
        await expect(diff.locator(".del")).to_contain_text('"caravan.test/fake:1"')
        await expect(diff.locator(".add")).to_contain_text('"caravan.test/fake:2"')
        await ui.shot("versions-diff")
        # The same version on both sides: nothing differs.
        await page.get_by_label("From version").select_option(str(newest))
        await expect(page.locator("[data-same]")).to_be_visible()
        current = page.get_by_role("button", name=f"Revert to version {newest}")
        await expect(current).to_be_disabled()

        # Revert to the first version: cancelled first, then confirmed; proven on the Job.
        revert = page.get_by_role("button", name=f"Revert to version {oldest}")
        await revert.click()
        await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
        assert (await api.get("/v1/jobs/web/versions")).json() == listed.json()
        await revert.click()
        await page.get_by_role("dialog").get_by_role("button", name="Revert").click()

        async def image() -> str:
            job = await kube.get(JOBS.item(namespace, "web"))
            return str(job["spec"]["taskGroups"][0]["template"]["spec"]["containers"][0]["image"])

        await eventually(image, lambda i: i == "caravan.test/fake:1", what="the old image back")
        # The revert is a new version, shown as current, and compared with the one before.
        await expect(page.locator("table.versions tbody tr")).to_have_count(3)
        top = (await api.get("/v1/jobs/web/versions")).json()[0]["version"]
        await expect(page.locator(f'tr[data-version="{top}"] .badge')).to_have_text("current")
        await expect(diff).to_have_attribute("data-to", str(top))
        await ui.shot("versions-reverted")


# Logs ----------------------------------------------------------------------------------


async def test_log_view_follows_downloads_and_sets_levels(
    ui: UiPage,
    kube: KubeClient,
    namespace: str,
    caravan: Caravan,
    tmp_path: pathlib.Path,
) -> None:
    template = pod_template(containers=["main"])
    await kube.create(
        JOBS.collection(namespace), job_body("talk", [group("web", template=template)])
    )
    (pod,) = await running_pods(caravan, "talk", 1)
    log_file = tmp_path / "talk.log"
    lines = [("stdout", f"early line {i}") for i in range(30)] + [("stderr", "an error line")]
    log_file.write_text(cri_log(lines))
    await serve_pod_log(kube, namespace, pod, str(log_file))
    async with httpx.AsyncClient(base_url=caravan.url, timeout=30) as api:
        definition = {
            "id": "talk-main",
            "job": "talk",
            "group": "web",
            "task": "main",
            "fileName": "main.log",
            "logLevel": True,
        }
        assert (await api.post("/v1/log/logs", json=[definition])).status_code == 200
        assert (await api.post("/v1/log/defaults/talk-main", json={"leaf": "info"})).is_success

        page = ui.page
        await ui.open("/ui/logs")
        await page.get_by_role("link", name="talk-main").click()
        await expect(page).to_have_url(f"{caravan.url}/ui/logs/talk-main")
        await page.get_by_role("link", name=pod).click()
        await expect(page).to_have_url(f"{caravan.url}/ui/logs/talk-main/{pod}")
        log = page.locator("pre.log")
        await expect(log).to_contain_text("early line 29")
        await page.get_by_label("Follow").check()
        await expect(page).to_have_url(f"{caravan.url}/ui/logs/talk-main/{pod}?follow=1")
        await expect(page.get_by_role("status").filter(has_text="following")).to_be_visible()
        await expect(log).to_contain_text("early line 29")

        # A line written now appears in the followed view, scrolled into sight.
        with log_file.open("a") as f:
            f.write(cri_log([("stdout", "a brand new line")]).replace("00:00:00", "00:01:00"))
        await expect(log).to_contain_text("a brand new line", timeout=10_000)
        at_bottom = "e => e.scrollTop + e.clientHeight >= e.scrollHeight - 8"
        assert await log.evaluate(at_bottom)
        await ui.shot("log-followed")
        # Scrolled up by the reader: new lines arrive, the view stays where it was.
        await log.evaluate("e => { e.scrollTop = 0; e.dispatchEvent(new Event('scroll')); }")
        await expect(page.get_by_role("button", name="Jump to the end")).to_be_visible()
        with log_file.open("a") as f:
            f.write(cri_log([("stdout", "one more line")]).replace("00:00:00", "00:01:01"))
        await expect(log).to_contain_text("one more line", timeout=10_000)
        assert await log.evaluate("e => e.scrollTop") == 0
        await page.get_by_role("button", name="Jump to the end").click()
        assert await log.evaluate(at_bottom)

        # Hidden, the follow stops; shown again, the tail is read anew: the line written
        # meanwhile appears, and nothing twice.
        await page.evaluate(HIDE_TAB)
        await expect(page.get_by_role("status").filter(has_text="paused")).to_be_visible()
        with log_file.open("a") as f:
            f.write(cri_log([("stdout", "written while hidden")]).replace("00:00:00", "00:01:02"))
        await page.evaluate(SHOW_TAB)
        await expect(log).to_contain_text("written while hidden", timeout=10_000)
        assert (await log.inner_text()).count("a brand new line") == 1

        # Download: the whole log, as the API serves it.
        async with page.expect_download() as download_info:
            await page.get_by_role("button", name="Download whole log").click()
        download = await download_info.value
        saved = tmp_path / "downloaded.log"
        await download.save_as(saved)
        whole = await api.get(f"/v1/log/fs/{pod}/main/stdout")
        assert saved.read_bytes() == whole.content
        assert b"a brand new line\none more line\n" in whole.content

        # stderr: its own deep link; combined clusters say so on the page.
        await page.get_by_label("Stream").select_option("stderr")
        await expect(page).to_have_url(f"{caravan.url}/ui/logs/talk-main/{pod}?fs=stderr&follow=1")
        await expect(log).to_contain_text("an error line")

        # "Log Level" (this allocation's override): proven on the API and on the pod.
        override = page.locator('select[data-logger="leaf"][data-kind="override"]')
        await expect(override).to_have_value("")
        await expect(page.get_by_label("Default Log Level")).to_have_value("info")
        await page.get_by_label("Log Level", exact=True).select_option("debug")
        await eventually(
            lambda: api.get(f"/v1/log/allocs/{pod}"),
            lambda r: r.json() == {"talk-main": {"leaf": "debug"}},
            what="override stored",
        )
        stored = await kube.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")
        annotation = stored["metadata"]["annotations"]["caravan.dev/loggers"]
        assert json.loads(annotation) == {"talk-main": {"leaf": "debug"}}
        # "use default" drops the override again.
        await override.select_option("")
        await eventually(
            lambda: api.get(f"/v1/log/allocs/{pod}"), lambda r: r.json() == {}, what="no override"
        )
        # "Default Log Level" changes the loggerID's defaults.
        await page.get_by_label("Default Log Level").select_option("warning")
        await eventually(
            lambda: api.get("/v1/log/defaults"),
            lambda r: r.json().get("talk-main") == {"leaf": "warning"},
            what="default stored",
        )
        await ui.shot("log-levels")


# Settings ------------------------------------------------------------------------------


async def test_settings_form_shows_422_at_the_field_and_stores_nothing(
    ui: UiPage, kube: KubeClient, namespace: str, caravan: Caravan
) -> None:
    settings_map = CONFIGMAPS.item(namespace, caravan.config.configmaps.settings)
    async with httpx.AsyncClient(base_url=caravan.url, timeout=30) as api:
        before = (await api.get("/v1/settings")).json()
        stored = await eventually(
            lambda: kube.get(settings_map), lambda cm: bool(cm), what="settings ConfigMap"
        )
        posts: list[str] = []
        ui.page.on(
            "request",
            lambda r: (
                posts.append(r.url) if r.method == "POST" and "/v1/settings" in r.url else None
            ),
        )
        page = ui.page
        await ui.open("/ui/settings")
        wait = page.locator('input[data-path="$.jobs.longPoll.defaultWaitSeconds"]')
        await expect(wait).to_have_value("300")
        await expect(page.locator('fieldset[data-path="$.jobs"] legend').first).to_have_text("jobs")
        name = page.locator('input[data-path="$.info.name"]')
        await name.fill("ui-test")
        await wait.fill("0")

        ui.console.expect(r"status of 422")
        await page.get_by_role("button", name="Save").click()
        error = page.locator('.field[data-path="$.jobs.longPoll.defaultWaitSeconds"] .field-error')
        await expect(error).to_be_visible()
        await expect(error).to_contain_text("1")  # the minimum the value is below
        await expect(wait).to_have_attribute("aria-invalid", "true")
        await ui.shot("settings-422")
        assert len(posts) == 1
        # Nothing stored: neither the API's view nor the ConfigMap changed.
        assert (await api.get("/v1/settings")).json() == before
        unchanged = await kube.get(settings_map)
        assert unchanged["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]

        # Advanced: the same draft (both edits), errors by JSON path; fixed there, saved once.
        await page.get_by_role("tab", name="Advanced (JSON)").click()
        editor = page.get_by_label("Settings document (JSON)")
        draft = json.loads(await editor.input_value())
        assert draft["info"]["name"] == "ui-test"
        assert draft["jobs"]["longPoll"]["defaultWaitSeconds"] == 0
        await expect(page.locator("ul.paths")).to_contain_text("$.jobs.longPoll.defaultWaitSeconds")
        draft["jobs"]["longPoll"]["defaultWaitSeconds"] = 30
        await editor.fill(json.dumps(draft, indent=2))
        await page.get_by_role("tab", name="Form").click()
        await expect(wait).to_have_value("30")
        await expect(name).to_have_value("ui-test")
        await page.get_by_role("button", name="Save").click()
        await expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
        assert len(posts) == 2
        after = (await api.get("/v1/settings")).json()
        assert after["jobs"]["longPoll"]["defaultWaitSeconds"] == 30
        assert after["info"]["name"] == "ui-test"

        # A broken document stored with kubectl: the page says why it is not in force.
        broken = await kube.get(settings_map)
        broken["data"]["settings.json"] = json.dumps({**after, "jobs": {"longPoll": 5}})
        await kube.replace(settings_map, broken)
        await eventually(
            lambda: api.get("/v1/settings/errors"),
            lambda r: bool(r.json()["settings"]),
            what="errors of the kubectl edit",
        )
        await page.reload()
        await expect(page.locator("#stored-errors")).to_contain_text("$.jobs.longPoll")


# Events --------------------------------------------------------------------------------


async def test_events_document_saves_and_its_results_appear(ui: UiPage, caravan: Caravan) -> None:
    page = ui.page
    await ui.open("/ui/events")
    editor = page.get_by_label("Events documents (JSON)")
    await expect(editor).to_have_value(json.dumps({"mapreduce": []}, indent=2))

    # Invalid first: the error at its path, nothing stored.
    bad = votes_only(period=0)
    ui.console.expect(r"status of 422")
    await editor.fill(json.dumps({"mapreduce": [bad]}))
    await page.get_by_role("button", name="Save documents").click()
    await expect(page.locator("ul.paths li").first).to_contain_text("period")
    async with httpx.AsyncClient(base_url=caravan.url, timeout=30) as api:
        assert (await api.get("/v1/events")).json()["mapreduce"] == []

        document = votes_only(period=300)
        await editor.fill(json.dumps({"mapreduce": [document]}, indent=2))
        await page.get_by_role("button", name="Save documents").click()
        await expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
        assert (await api.get("/v1/events")).json() == {"errors": "", "mapreduce": [document]}

    # A test event through the form; its reduction's table shows it live (SSE).
    await expect(page.get_by_label("Channel")).to_have_value("game")
    await page.get_by_label("Key").fill("vote")
    await page.get_by_label("Value").fill('"e4"')
    for _ in range(3):
        await page.get_by_role("button", name="Send event").click()
        await expect(page.get_by_role("status").filter(has_text="accepted 1")).to_be_visible()
    row = page.locator('section[data-reduction="game/vote-count"] tr[data-key=\'["e4"]\']')
    await expect(row).to_be_visible(timeout=10_000)
    count = await row.locator('td[data-op="count"]').inner_text()
    assert 1 <= int(count) <= 3
    await expect(row.locator("cv-sparkline svg")).to_be_visible()
    await ui.shot("events")


# Secrets -------------------------------------------------------------------------------


async def test_secret_is_created_then_deleted_after_confirmation(
    ui: UiPage, kube: KubeClient, namespace: str
) -> None:
    page = ui.page
    await ui.open("/ui/secrets")
    await page.get_by_label("Id (a Kubernetes name)").fill("api-key")
    await page.get_by_label("Key", exact=True).fill("token")
    await page.get_by_label("Value of token").fill("s3cr3t")
    await page.get_by_role("button", name="Create").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Create secret api-key?")
    await ui.shot("secret-confirm")
    await dialog.get_by_role("button", name="Create").click()
    await expect(page).to_have_url(f"{ui.base}/ui/secrets/api-key")
    secret = await kube.get(SECRETS.item(namespace, "api-key"))
    assert base64.b64decode(secret["data"]["token"]) == b"s3cr3t"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "caravan"

    # Hidden until revealed.
    value = page.locator('tr[data-key="token"] code')
    await expect(value).not_to_contain_text("s3cr3t")
    await page.get_by_role("button", name="Reveal token").click()
    await expect(value).to_have_text("s3cr3t")

    # Delete: cancelled first (still there), then confirmed (gone).
    await page.get_by_role("button", name="Delete…").click()
    await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    assert (await kube.get(SECRETS.item(namespace, "api-key")))["metadata"]["name"] == "api-key"
    await page.get_by_role("button", name="Delete…").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(page).to_have_url(f"{ui.base}/ui/secrets")
    await eventually(
        lambda: secret_status(kube, namespace, "api-key"), lambda s: s == 404, what="deleted"
    )
    await expect(page.get_by_role("link", name="api-key")).to_have_count(0)


async def secret_status(kube: KubeClient, namespace: str, name: str) -> int:
    try:
        await kube.get(SECRETS.item(namespace, name))
    except KubeError as exc:
        return exc.status
    return 200


# Access --------------------------------------------------------------------------------

READ_ONLY = [
    {"apiGroups": ["caravan.dev"], "resources": ["jobs"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods", "configmaps", "secrets"], "verbs": ["get", "list"]},
]


async def test_read_only_token_sees_write_controls_disabled(
    browser: Browser, kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("web", [group("front")]))
    reader = await service_account_token(kube, namespace, "reader", READ_ONLY)
    async with (
        running_caravan(namespace=namespace, kubeconfig=kubeconfig, auth_mode="kubernetes") as c,
        ui_page(browser, c.url, "read-only-token") as ui,
    ):
        ui.console.expect(NETWORK_401)  # the first call, before the token is given
        page = ui.page
        await ui.open("/ui/jobs/web")
        await expect(page).to_have_url(
            re.compile(r".*/ui/access\?next=%2Fui%2Fjobs%2Fweb&why=missing")
        )
        await expect(page.locator(".notice")).to_contain_text("missing bearer token")
        await ui.shot("token-prompt")
        await page.get_by_label("Bearer token").fill(reader)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(f"{c.url}/ui/jobs/web")
        # Kept for the tab's session only.
        assert await page.evaluate("sessionStorage.getItem('caravan.token')") == reader
        assert await page.evaluate("localStorage.length") == 0

        nav = page.get_by_role("navigation", name="Pages")
        await nav.get_by_role("link", name="Jobs").click()
        front = page.locator('tbody[data-job="web"] tr[data-group="front"]')
        await expect(front.locator(".count")).to_have_text("1")
        plus = front.get_by_role("button", name="web/front plus 1")
        await expect(plus).to_be_disabled()
        reason = await plus.get_attribute("title")
        user = f"system:serviceaccount:{namespace}:reader"
        assert reason is not None
        assert reason.startswith(f"{user} may not patch jobs.caravan.dev")
        for name in ("Start All", "Stop All", "Stop job web", "web/front to 0"):
            await expect(page.get_by_role("button", name=name)).to_be_disabled()
        await expect(page.locator(".notice")).to_contain_text("may not patch jobs.caravan.dev")
        await ui.shot("read-only-jobs")
        # The job page: the restarts are disabled too, each saying which permission.
        await page.get_by_role("link", name="web", exact=True).click()
        await ui.ready()
        pods = await one_pod(kube, namespace, "web", "front")
        (pod,) = pods
        await expect(page.get_by_role("button", name="Restart job web")).to_be_disabled()
        await expect(page.get_by_role("button", name="Restart task group front")).to_be_disabled()
        restart = page.get_by_role("button", name=f"Restart allocation {pod}")
        await expect(restart).to_be_disabled()
        await expect(restart).to_have_attribute("title", re.compile(f"{user} may not delete pods"))
        await ui.shot("read-only-job")
        # Versions are ControllerRevisions, which this reader may not get; nor revert.
        await page.get_by_role("link", name="Versions").click()
        await ui.ready()
        await expect(page.locator(".notice")).to_contain_text(
            f"{user} may not get controllerrevisions.apps"
        )
        await expect(page.locator(".notice")).to_contain_text("may not update jobs.caravan.dev")
        await nav.get_by_role("link", name="Settings").click()
        await expect(page.get_by_role("button", name="Save")).to_be_disabled()
        await nav.get_by_role("link", name="Secrets").click()
        await expect(page.get_by_role("button", name="Create")).to_be_disabled()

        # What the page shows is what the API enforces for that token.
        headers = {"Authorization": f"Bearer {reader}"}
        async with httpx.AsyncClient(base_url=c.url, headers=headers, timeout=30) as api:
            access = (await api.get("/v1/access")).json()
            assert access["user"] == user
            assert not access["actions"]["jobs.write"]["allowed"]
            assert access["actions"]["jobs.read"]["allowed"]
            assert not access["actions"]["settings.write"]["allowed"]
            refused = await api.post(
                "/v1/jobs/updatecounts", json={"jobID": "web", "taskGroup": "front", "count": 1}
            )
            assert refused.status_code == 403
            refused = await api.post(f"/v1/allocations/{pod}/restart")
            assert refused.status_code == 403
            assert not access["actions"]["allocations.restart"]["allowed"]
        assert await replicas(kube, namespace, "web", "front") == 1
        assert await pods_of(kube, namespace, "web", "front") == pods

        # Signing out forgets the token: the next page asks again.
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("Bearer token")).to_be_visible()
        assert await page.evaluate("sessionStorage.getItem('caravan.token')") is None


# The API pages -------------------------------------------------------------------------


async def test_api_pages_render_without_internet(ui: UiPage) -> None:
    page = ui.page
    outside: list[str] = []
    blocked: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((ui.base, "data:", "blob:")) else outside.append(r.url),
    )
    page.on(
        "requestfailed",
        # Chromium names the reason "csp": refused by the page's policy, never sent.
        lambda r: blocked.append(r.url) if "csp" in (r.failure or "").lower() else None,
    )
    await ui.open("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Caravan Cluster API")
    await expect(page.locator(".opblock-summary-path").first).to_be_visible()
    await ui.shot("swagger", full_page=False)  # the whole API is a very long page
    assert outside == []
    # ReDoc's bundle hard-codes one image on its CDN (the "API docs by Redocly" logo): the
    # page's Content-Security-Policy makes the browser refuse it before it is sent.
    ui.console.expect(r"Content Security Policy")
    await ui.open("/redoc")
    await expect(page.locator("h1").first).to_contain_text("Caravan Cluster API", timeout=60_000)
    await ui.shot("redoc", full_page=False)
    assert set(outside) == set(blocked), f"sent off the machine: {set(outside) - set(blocked)}"
    await ui.open("/ui/")
    await expect(page.get_by_role("link", name="API")).to_have_attribute("href", "/docs")


# Screenshots ---------------------------------------------------------------------------


async def test_headless_chromium_alone_captures_the_drawn_page(
    kube: KubeClient, namespace: str, caravan: Caravan
) -> None:
    # As docs/ui.md says: `?live=0` and a virtual-time budget, no script.
    await kube.create(JOBS.collection(namespace), job_body("web", [group("front")], suspend=True))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "chromium-cli-jobs.png"
    shot.unlink(missing_ok=True)
    url = f"{caravan.url}/ui/?live=0"
    common = [*CLI_FLAGS, "--window-size=1280,900", "--virtual-time-budget=10000"]
    dom = await chromium_cli(*common, "--dump-dom", url)
    assert 'data-ready="jobs"' in dom
    assert 'data-job="web"' in dom
    assert "Loading…" not in dom
    await chromium_cli(*common, f"--screenshot={shot}", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


CLI_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


async def chromium_cli(*args: str) -> str:
    # Not subprocess.run: Caravan serves from this test's event loop.
    process = await asyncio.create_subprocess_exec(
        chromium_path(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    return out.decode()


# The page's pure modules, run in the browser they are written for --------------------

PURE_MODULES = (pathlib.Path(__file__).parent / "ui_pure_modules.js").read_text()


async def test_pure_modules_behave(ui: UiPage) -> None:
    await ui.open("/ui/access")
    result = await ui.page.evaluate(PURE_MODULES)
    assert result["sent"] == [["a", 5]]
    assert result["paths"] == ["$.a.b", "$.a[0]['odd key']['it\\'s']"]
    assert result["parsed"] == ["a", 0, "odd key", "it's", "b"]
    assert result["set"] == {"a": {"c": 2}}
    assert result["setNew"] == {"x": {"y": 3}}
    assert result["field"] == "$.jobs.longPoll"
    assert result["located"] == '"maxWaitSeconds"'
    assert result["kinds"] == [
        ["$.n", "integer", "min 1"],
        ["$.e", "enum", ""],
        ["$.o", "json", ""],
    ]
    assert result["messages"] == [
        {"event": "message", "data": '{"a":1}'},
        {"event": "dropped", "data": '{"dropped": 2}'},
    ]
    assert result["history"] == [1, None, 3]
    assert result["latest"] == 3

    # The live-data loop: backoff 1, 2, 5, 10 s, or the server's Retry-After; the first
    # view settles at the first failure; hidden pauses it (nothing runs), shown resumes.
    assert result["liveFirst"] == 503
    assert result["liveWaits"] == [1000, 2000, 5000, 10000, 3000]
    assert result["liveErrors"] == [503, 503, 0, 503, 503]
    assert result["liveCausesBeforeHide"] == ["start"] + ["again"] * 6
    assert result["liveSessionsWhileHidden"] == 0
    assert result["liveStatusHidden"] == "paused (tab hidden)"
    assert result["liveCauseAfterShow"] == "visible"
    assert result["liveSessionsAfterStop"] == 0
    assert result["live401"] == [1, True]
    assert result["liveRefresh"] == [1, 3, [5000, 5000]]
    assert result["retryDelays"] == [1000, 2000, 5000, 10000, 10000, 60000]

    # The line diff prints what `diff -u` prints.
    assert result["diff"] == (
        "--- v1\n+++ v2\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n@@ -9 +9,2 @@\n i\n+j\n"
    )
    assert result["diffSame"] == ""
    assert result["diffFromEmpty"] == "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+one\n+two\n"
    assert result["diffOps"] == [" k:1:1", "-x:2:null", "+y:null:2", " k:3:3"]
    definition = {"b": 1, "a": {"d": [2, {"f": 1, "e": 0}], "c": None}}
    assert result["canonical"] == json.dumps(definition, sort_keys=True, indent=2) + "\n"
