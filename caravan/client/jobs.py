"""`caravan status | start | stop | scale | jobsdefs`: jobs over /v1/jobs and /v1/jobsdefs."""

from __future__ import annotations

import time
from typing import IO, Any, Literal

import click
from rich.table import Table

from caravan.client import paths
from caravan.client.api import ApiFailure, flags_named
from caravan.client.documents import read_document
from caravan.client.session import Session, client_command, table
from caravan.jobs.shapes import BUCKETS, Bucket, JobView, Problem, TaskGroupView

LONG_POLL_SECONDS = 60.0


def jobs_table(jobs: list[JobView]) -> Table:
    rows: list[list[Any]] = []
    for job in jobs:
        head = [job["name"], job["status"], "yes" if job.get("autostart", True) else "no"]
        groups = job.get("taskGroups") or []
        if not groups:
            rows.append([*head, "", "", "", *("" for _ in BUCKETS), ""])
        for i, g in enumerate(groups):
            summary = g.get("summary")
            rows.append(
                [
                    *(head if i == 0 else ["", "", ""]),
                    g["name"],
                    f"{g['count']}/{g['countMax']}",
                    g["countInit"],
                    *((summary or {}).get(b, "") for b in BUCKETS),
                    problems_cell(g.get("problems") or []),
                ]
            )
    columns = ["job", "status", "autostart", "group", "count/max", "init", *BUCKETS, "problems"]
    return table(columns, rows)


def problems_cell(problems: list[Problem]) -> str:
    """A failing group's reasons, e.g. `CrashLoopBackOff (2): task main exited with code 3`."""
    return "; ".join(
        f"{p.get('reason')} ({p.get('allocations')}): {_cut(str(p.get('message') or ''))}"
        for p in problems
    )


def problem_reasons(groups: list[TaskGroupView]) -> str:
    """What a progress line adds while groups have problems: ` (front: ErrImagePull)`."""
    reasons = [f"{g['name']}: {p['reason']}" for g in groups for p in g.get("problems") or []]
    return f" ({'; '.join(reasons)})" if reasons else ""


def _cut(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fetch(
    session: Session, job: str | None, index: int | None, wait: float = LONG_POLL_SECONDS
) -> tuple[list[JobView], int]:
    """The jobs (or one), and the waitIndex; with `index`, blocks (≤ `wait` s) until it moves."""
    headers = {"waitIndex": str(index)} if index is not None else {}
    params = {"wait": f"{max(wait, 0.1):.1f}s"} if index is not None else {}
    response = session.api.send(
        "GET", paths.JOBS, headers=headers, params=params, timeout=wait + 30
    )
    jobs: list[JobView] = response.json()
    new_index = int(response.headers.get("waitIndex", "0"))
    if job is not None:
        jobs = [j for j in jobs if j["name"] == job]
        if not jobs:
            raise ApiFailure(f"no job {job!r}", 404)
    return jobs, new_index


@click.command()
@click.argument("job", required=False)
@click.option("-w", "--watch", is_flag=True, help="redraw on every change (long poll)")
@client_command
def status(session: Session, job: str | None, watch: bool) -> None:
    """Jobs and their task groups: counts and allocation summaries."""
    if not watch:
        if job is None:
            session.emit(session.api.get(paths.JOBS), jobs_table)
        else:
            session.emit(session.api.get(paths.job(job)), lambda j: jobs_table([j]))
        return
    index: int | None = None
    try:
        while True:
            jobs, index = _fetch(session, job, index)
            if session.json:
                session.print_json(jobs if job is None else jobs[0])
            else:
                if session.console.is_terminal:
                    session.console.clear()
                session.console.print(jobs_table(jobs))
                session.console.print(f"[dim]waitIndex {index}; Ctrl-C to stop[/dim]")
    except KeyboardInterrupt:
        return


# The buckets of allocations that are not over yet: what a stop waits for.
_ALIVE: tuple[Bucket, ...] = ("queued", "starting", "running")


def _count(group: TaskGroupView, bucket: Bucket) -> int:
    return int((group.get("summary") or {}).get(bucket, 0))


def _progress(job: JobView, target: str) -> str:
    parts = []
    for g in job.get("taskGroups") or []:
        if target == "dead":
            left = sum(_count(g, b) for b in _ALIVE)
            parts.append(f"{g['name']} {left} allocation{'s' if left != 1 else ''} left")
        else:
            parts.append(f"{g['name']} {_count(g, 'running')}/{g.get('count', 0)} running")
    line = f"{job['name']}: {job['status']} ({', '.join(parts) or 'no task groups'})"
    return line + problem_reasons(job.get("taskGroups") or [])


def _arrived(job: JobView, target: str) -> bool:
    groups = job.get("taskGroups") or []
    if target == "dead":
        return job["status"] == "dead" and all(
            sum(_count(g, b) for b in _ALIVE) == 0 for g in groups
        )
    return job["status"] == "running" and all(
        _count(g, "running") >= g.get("count", 0) for g in groups
    )


def _wait(session: Session, names: list[str], target: str, timeout: float) -> None:
    """Long-polls until every job in `names` is fully running (or dead), or times out."""
    deadline = time.monotonic() + timeout
    index: int | None = None
    shown: dict[str, str] = {}
    while True:
        remaining = deadline - time.monotonic()
        jobs, index = _fetch(session, None, index, min(LONG_POLL_SECONDS, remaining))
        by_name = {j["name"]: j for j in jobs}
        waiting = []
        for name in names:
            job = by_name.get(name)
            if job is None:
                raise ApiFailure(f"job {name!r} disappeared while waiting", 404)
            line = _progress(job, target)
            if shown.get(name) != line:
                session.say(line)
                shown[name] = line
            if not _arrived(job, target):
                waiting.append(name)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise ApiFailure(
                f"timed out after {timeout:g}s waiting for {', '.join(waiting)} to be {target}"
                f"; why: `caravan activity {waiting[0]}`"
            )


def _start_or_stop(
    session: Session,
    verb: Literal["start", "stop"],
    jobs: tuple[str, ...],
    wait: bool,
    timeout: float,
) -> None:
    if jobs:
        results = [session.api.post(paths.start_or_stop(verb, j)) for j in jobs]
        names = list(jobs)
    else:
        results = session.api.post(paths.start_or_stop(verb))
        # Start All starts the autostart jobs only; Stop All stops them all.
        names = [j["name"] for j in results if verb == "stop" or j.get("autostart", True)]
    session.emit(results, jobs_table)
    if wait:
        _wait(session, names, "running" if verb == "start" else "dead", timeout)


_WAIT = click.option("--wait", is_flag=True, help="show progress until done")
_TIMEOUT = click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="seconds --wait waits",
)


@click.command()
@click.argument("jobs", nargs=-1)
@_WAIT
@_TIMEOUT
@client_command
def start(session: Session, jobs: tuple[str, ...], wait: bool, timeout: float) -> None:
    """Start JOBs (each group at countInit); no JOB: Start All (the autostart jobs,
    dependencies first). --wait: until every allocation runs."""
    _start_or_stop(session, "start", jobs, wait, timeout)


@click.command()
@click.argument("jobs", nargs=-1)
@_WAIT
@_TIMEOUT
@client_command
def stop(session: Session, jobs: tuple[str, ...], wait: bool, timeout: float) -> None:
    """Stop JOBs (every group to 0); no JOB: Stop All. --wait: until no allocation is left."""
    _start_or_stop(session, "stop", jobs, wait, timeout)


def parse_delta(text: str) -> int:
    """`+N`, `-N` or `0` (a bare N means +N, as the API's delta does)."""
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not +N, -N or 0", param_hint="DELTA") from None


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("job")
@click.argument("group")
@click.argument("delta")
@client_command
def scale(session: Session, job: str, group: str, delta: str) -> None:
    """Add DELTA (+N, -N) to a task group's count, clamped to [0, countMax]; 0 stops the
    group (POST /v1/jobs/updatecounts)."""
    count = parse_delta(delta)
    result = session.api.post(
        paths.UPDATE_COUNTS, {"jobID": job, "taskGroup": group, "count": count}
    )
    session.emit(result, lambda j: jobs_table([j]))


# -- job definitions ---------------------------------------------------------------------


def _definitions_table(definitions: dict[str, Any]) -> Table:
    rows = []
    for name, d in sorted(definitions.items()):
        groups = (d.get("template") or {}).get("taskGroups") or []
        rows.append(
            [
                name,
                "yes" if d.get("autostart", True) else "no",
                ",".join(d.get("dependencies") or []) or "-",
                ", ".join(
                    f"{g['name']} ({g.get('countInit')}/{g.get('countMax')})" for g in groups
                ),
            ]
        )
    return table(["job", "autostart", "dependencies", "groups (init/max)"], rows)


@click.group()
def jobsdefs() -> None:
    """Job definitions: create, replace and delete jobs without kubectl."""


@jobsdefs.command("get")
@click.argument("job", required=False)
@client_command
def jobsdefs_get(session: Session, job: str | None) -> None:
    """Every job's definition (or JOB's). `-o json` prints {job: definition}, even for one
    JOB: a file `caravan jobsdefs load` (and `caravan load`) takes back as it is."""
    if job is None:
        definitions = session.api.get(paths.JOBSDEFS)
    else:
        definitions = {job: session.api.get(paths.jobsdef(job))}
    session.emit(definitions, _definitions_table)


@jobsdefs.command("load")
@click.argument("file", type=click.File("r"))
@click.option("--force", is_flag=True, help="replace started jobs too")
@click.option("--prune", is_flag=True, help="also delete the jobs FILE does not name")
@click.option("--dry-run", is_flag=True, help="show each job's change and diff; write nothing")
@client_command
def jobsdefs_load(session: Session, file: IO[str], force: bool, prune: bool, dry_run: bool) -> None:
    """Create or replace the jobs of FILE: a JSON or YAML map {job: definition}, as
    `caravan jobsdefs get -o json` prints it."""
    document = read_document(file)
    if not isinstance(document, dict) or not all(isinstance(v, dict) for v in document.values()):
        raise click.BadParameter(
            "expected a map of job name to definition, as `caravan jobsdefs get -o json` prints it",
            param_hint="FILE",
        )
    if dry_run:
        from caravan.client.versions import dry_run as plan_of
        from caravan.client.versions import show_plan

        show_plan(session, plan_of(session, document, force, prune))
        return
    params = {"force": "true"} if force else {}
    before = session.api.get(paths.JOBSDEFS)
    with flags_named():
        if prune:
            after = session.api.post(paths.JOBSDEFS, document, params=params)
        else:
            after = {
                n: session.api.post(paths.jobsdef(n), d, params=params) for n, d in document.items()
            }
    for name in sorted(document):
        state = (
            "created"
            if name not in before
            else ("unchanged" if before[name] == after.get(name) else "replaced")
        )
        session.say(f"job {name}: {state}")
    for name in sorted(set(before) - set(document)) if prune else ():
        session.say(f"job {name}: deleted")
    if session.json:
        session.print_json(after)


@jobsdefs.command("delete")
@click.argument("jobs", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="delete started jobs too")
@client_command
def jobsdefs_delete(session: Session, jobs: tuple[str, ...], force: bool) -> None:
    """Delete JOBs (a started job only with --force)."""
    params = {"force": "true"} if force else {}
    for job in jobs:
        with flags_named():
            session.api.delete(paths.jobsdef(job), params=params)
        session.say(f"job {job}: deleted")
