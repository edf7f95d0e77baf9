"""`caravan alloc | activity | restart`: why allocations fail, what happened, start afresh."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from caravan.client import paths
from caravan.client.api import ApiFailure
from caravan.client.jobs import problem_reasons
from caravan.client.session import Session, client_command, table
from caravan.jobs.shapes import ActivityItem, AllocationView

LONG_POLL_SECONDS = 60.0


def age(timestamp: str, now: datetime | None = None) -> str:
    """kubectl's short ages: 45s, 3m, 2h, 5d."""
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _exit_codes(alloc: AllocationView) -> str:
    codes = []
    for task in alloc.get("tasks") or []:
        code = task.get("exitCode")
        last = task.get("lastTermination")
        if code is None and last:
            code = last.get("exitCode")
        if code is not None:
            codes.append(str(code))
    return ",".join(codes)


# A reason cell longer than this is cut, so the table keeps every column on a line
# (`-o json` has the whole message).
REASON_CELL = 72


def _reason(alloc: AllocationView) -> str:
    reason = alloc.get("reason") or ""
    message = alloc.get("message") or ""
    text = f"{reason}: {message}" if reason and message else reason
    return text if len(text) <= REASON_CELL else text[: REASON_CELL - 1] + "…"


def allocations_table(allocs: list[AllocationView]) -> Table:
    rows = [
        [
            a.get("allocID"),
            a.get("taskGroup"),
            a.get("status"),
            _reason(a),
            _exit_codes(a),
            a.get("restarts"),
            a.get("node"),
            age(str(a.get("createTime") or "")),
        ]
        for a in allocs
    ]
    columns = ["alloc", "group", "status", "reason", "exit code", "restarts", "node", "age"]
    return table(columns, rows)


@click.command("alloc")
@click.argument("job")
@client_command
def alloc(session: Session, job: str) -> None:
    """A job's allocations: status, why not running, exit code, restarts, node, age."""
    session.emit(session.api.get(paths.job_allocations(job)), allocations_table)


def _activity_line(item: ActivityItem) -> str:
    count = item.get("count") or 1
    times = f" (x{count})" if count > 1 else ""
    return (
        f"{item.get('time')}  {item.get('type', ''):<7}  {item.get('reason', ''):<16}  "
        f"{item.get('object', ''):<28}  {item.get('message', '')}{times}"
    )


def _fetch_activity(
    session: Session, job: str, index: int | None, wait: float = LONG_POLL_SECONDS
) -> tuple[list[ActivityItem], int]:
    headers = {"waitIndex": str(index)} if index is not None else {}
    params = {"wait": f"{max(wait, 0.1):.1f}s"} if index is not None else {}
    response = session.api.send(
        "GET", paths.job_activity(job), headers=headers, params=params, timeout=wait + 30
    )
    items: list[ActivityItem] = response.json().get("items") or []
    return items, int(response.headers.get("waitIndex", "0"))


def _key(item: ActivityItem) -> tuple[Any, ...]:
    return (item.get("time"), item.get("reason"), item.get("object"), item.get("message"))


@click.command()
@click.argument("job")
@click.option("-f", "--follow", is_flag=True, help="keep printing new activity (long poll)")
@client_command
def activity(session: Session, job: str, follow: bool) -> None:
    """A job's recent activity, oldest first: Caravan's and Kubernetes' Events about the
    job, its task groups and its allocations."""
    items, index = _fetch_activity(session, job, None)
    if not follow:
        if session.json:
            session.print_json({"items": items})
        else:
            for item in items:
                click.echo(_activity_line(item))
        return
    shown: dict[tuple[Any, ...], int] = {}
    try:
        while True:
            for item in items:
                key = _key(item)
                if shown.get(key) != item.get("count"):
                    shown[key] = int(item.get("count") or 1)
                    if session.json:
                        session.print_json(item)
                    else:
                        click.echo(_activity_line(item))
            items, index = _fetch_activity(session, job, index)
    except KeyboardInterrupt:
        return


def _allocs(session: Session, job: str) -> list[AllocationView]:
    allocs: list[AllocationView] = session.api.get(paths.job_allocations(job))
    return allocs


def _replaced(
    session: Session,
    job: str,
    group: str | None,
    old: set[str],
    timeout: float,
) -> None:
    """Prints progress until none of the `old` allocations is left and the groups run
    their count again (or `timeout`)."""
    deadline = time.monotonic() + timeout
    shown = ""
    index: int | None = None
    while True:
        # Woken by any change of the jobs view (allocations starting, running, going).
        headers = {"waitIndex": str(index)} if index is not None else {}
        response = session.api.send(
            "GET", paths.JOBS, headers=headers, params={"wait": "5s"}, timeout=35
        )
        index = int(response.headers.get("waitIndex", "0"))
        view = next((j for j in response.json() if j["name"] == job), None)
        if view is None:
            raise ApiFailure(f"job {job!r} disappeared while waiting", 404)
        allocs = [a for a in _allocs(session, job) if group is None or a["taskGroup"] == group]
        groups = [g for g in view.get("taskGroups") or [] if group is None or g["name"] == group]
        left = sorted(a["allocID"] for a in allocs if a["allocID"] in old)
        running = sum(g["summary"]["running"] for g in groups)
        wanted = sum(g["count"] for g in groups)
        line = f"{job}: {len(old) - len(left)}/{len(old)} replaced, {running}/{wanted} running"
        line += problem_reasons(groups)
        if line != shown:
            session.say(line)
            shown = line
        if not left and running >= wanted:
            return
        if time.monotonic() > deadline:
            raise ApiFailure(f"timed out after {timeout:g}s waiting for {job} to be replaced")


@click.command()
@click.argument("job")
@click.argument("group", required=False)
@click.option("--alloc", "alloc_id", default=None, help="replace only this allocation")
@click.option("--wait", is_flag=True, help="show progress until every allocation is replaced")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="seconds --wait waits",
)
@client_command
def restart(
    session: Session,
    job: str,
    group: str | None,
    alloc_id: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Replace every allocation of JOB (or of its GROUP) one by one, as `kubectl rollout
    restart` does; --alloc ID: only that allocation."""
    if alloc_id is not None and group is not None:
        raise click.UsageError("give GROUP or --alloc, not both")
    before = _allocs(session, job) if wait else []
    if alloc_id is not None:
        if wait and alloc_id not in {a["allocID"] for a in before}:
            raise ApiFailure(f"job {job!r} has no allocation {alloc_id!r}", 404)
        result = session.api.post(paths.alloc_restart(alloc_id))
        old = {alloc_id}
        group = next((a["taskGroup"] for a in before if a["allocID"] == alloc_id), None)
    else:
        body = {"taskGroup": group} if group is not None else None
        result = session.api.post(paths.job_restart(job), body)
        old = {a["allocID"] for a in before if group is None or a["taskGroup"] == group}
    if session.json:
        session.print_json(result)
    else:
        what = f"allocation {alloc_id}" if alloc_id else (f"group {group}" if group else "job")
        session.say(f"{job}: restarting {what}")
    if wait:
        _replaced(session, job, group, old, timeout)


COMMANDS = (alloc, activity, restart)
