"""`caravan logs | loglevel`: a log's allocation (or any allocation's task), and levels."""

from __future__ import annotations

import sys
from typing import Any, Literal

import click
from rich.table import Table

from caravan.client import paths
from caravan.client.api import ApiFailure
from caravan.client.complete import log_ids
from caravan.client.session import Session, client_command, table
from caravan.jobs.shapes import AllocationView, JobView

LEVELS = ("debug", "info", "warning", "error", "fatal", "panic")
# Which allocation `caravan logs LOG` reads when none is named: a running one first (the
# service as it is), then one that is starting, then whatever ended last.
_PREFERENCE = {"running": 0, "pending": 1}


def _created(meta: dict[str, Any]) -> tuple[str, str]:
    return (str(meta.get("createTime", "")), str(meta.get("allocID", "")))


def newest_allocation(metas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The allocation created last (ties: the greater id), as `genvid-sdk log` picks."""
    if not metas:
        return None
    return max(metas, key=_created)


def chosen_allocation(metas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest running allocation; else the newest pending one; else the newest.

    During a bad rollout the newest allocation is the broken one: the running one is the
    log a reader wants."""
    if not metas:
        return None
    best = min(_PREFERENCE.get(str(m.get("status")), 2) for m in metas)
    return newest_allocation([m for m in metas if _PREFERENCE.get(str(m.get("status")), 2) == best])


def unknown_log(log: str) -> ApiFailure:
    return ApiFailure(
        f"no log {log!r}. `caravan logdefs list` lists the logs; `caravan logdefs set {log} "
        "--job JOB --task TASK` defines one; `caravan logs --alloc ALLOC` reads an "
        "allocation without one",
        404,
    )


def _log_allocation(session: Session, log: str, alloc: str | None) -> dict[str, Any]:
    try:
        metas: list[dict[str, Any]] = session.api.get(paths.log_meta(log))
    except ApiFailure as exc:
        if exc.status == 404:
            raise unknown_log(log) from None
        raise
    if alloc is not None:
        for meta in metas:
            if meta["allocID"] == alloc:
                return meta
        raise ApiFailure(f"allocation {alloc!r} is not one of log {log!r}'s", 404)
    found = chosen_allocation(metas)
    if found is None:
        raise ApiFailure(
            f"log {log!r} has no allocation: is its job started? (caravan status)", 404
        )
    others = len(metas) - 1
    click.echo(
        f"caravan: log {log}: allocation {found['allocID']} ({found['status']}, created "
        f"{found['createTime']})"
        + (f"; {others} other{'s' if others != 1 else ''}, --alloc to choose" if others else ""),
        err=True,
    )
    return found


def _find_allocation(session: Session, alloc: str) -> tuple[str, AllocationView]:
    """An allocation's job and view (group, tasks), from its job's allocations."""
    jobs: list[JobView] = session.api.get(paths.JOBS)
    for job in jobs:
        views: list[AllocationView] = session.api.get(paths.job_allocations(job["name"]))
        for view in views:
            if view["allocID"] == alloc:
                return job["name"], view
    raise ApiFailure(f"no allocation {alloc!r} (caravan status lists the jobs)", 404)


def _alloc_task(session: Session, alloc: str, task: str | None) -> dict[str, Any]:
    """The meta of reading ALLOC's TASK directly (no log definition)."""
    job, view = _find_allocation(session, alloc)
    tasks = [t["name"] for t in view["tasks"]]
    if task is None:
        if len(tasks) != 1:
            raise click.UsageError(
                f"allocation {alloc} has {len(tasks)} tasks ({', '.join(tasks)}): choose one "
                "with --task"
            )
        task = tasks[0]
    elif task not in tasks:
        raise ApiFailure(
            f"allocation {alloc} has no task {task!r} (tasks: {', '.join(tasks)})", 404
        )
    return {
        "allocID": alloc,
        "status": view["status"],
        "jobName": job,
        "taskGroup": view["taskGroup"],
        "taskName": task,
        "fileName": "stdout",
        "createTime": view["createTime"],
    }


@click.command()
@click.argument("log", required=False, shell_complete=log_ids)
@click.option("--alloc", help="the allocation (default: a running one, else the newest)")
@click.option("--task", help="with --alloc and no LOG: the task (default: its only one)")
@click.option("--stderr", is_flag=True, help="read stderr (default: the log's file)")
@click.option("-f", "--follow", is_flag=True, help="stream new bytes until Ctrl-C")
@click.option("--tail", type=click.IntRange(min=0), help="only the last BYTES bytes")
@client_command
def logs(
    session: Session,
    log: str | None,
    alloc: str | None,
    task: str | None,
    stderr: bool,
    follow: bool,
    tail: int | None,
) -> None:
    """Print LOG's bytes (a log definition id, as `genvid-sdk log NAME`), from a running
    allocation when there is one (it says which on stderr). Without LOG, --alloc ID
    [--task T] reads that allocation's task. -o json: the allocation's meta instead."""
    if log is None:
        if alloc is None:
            raise click.UsageError("give LOG (caravan logdefs list), or --alloc ID [--task T]")
        meta = _alloc_task(session, alloc, task)
    else:
        if task is not None:
            raise click.UsageError("--task goes with --alloc and no LOG (LOG names its task)")
        meta = _log_allocation(session, log, alloc)
    if session.json:
        session.print_json(meta)
        return
    wants_stderr = stderr or meta.get("fileName") == "stderr"
    fs: Literal["stdout", "stderr"] = "stderr" if wants_stderr else "stdout"
    params: dict[str, str] = {}
    if tail is not None:
        params.update(origin="end", offset=str(tail))
    if follow:
        params["follow"] = "true"
    path = paths.log_read(meta["allocID"], meta["taskName"], fs)
    out = sys.stdout.buffer
    try:
        with session.api.stream(path, params=params) as response:
            if response.headers.get("X-Caravan-Log-Stream") == "combined" and wants_stderr:
                click.echo(
                    "caravan: this cluster does not split streams: the combined log", err=True
                )
            for chunk in response.iter_bytes():
                out.write(chunk)
                out.flush()
    except KeyboardInterrupt:
        return


def _levels_table(levels: dict[str, str], source: str) -> Table:
    return table(["logger", "level", "source"], [[k, v, source] for k, v in sorted(levels.items())])


def parse_levels(pairs: tuple[str, ...]) -> dict[str, str]:
    levels: dict[str, str] = {}
    for pair in pairs:
        logger, sep, level = pair.partition("=")
        if not sep or not logger or level not in LEVELS:
            raise click.BadParameter(
                f"{pair!r}: expected LOGGER=LEVEL with LEVEL one of {', '.join(LEVELS)}",
                param_hint="LOGGER=LEVEL",
            )
        levels[logger] = level
    return levels


def _reset(session: Session, log: str, alloc: str | None) -> None:
    """Drops the defaults (or one allocation's overrides) and says what that did."""
    if alloc is None:
        dropped = session.api.get(paths.LOG_DEFAULTS).get(log, {})
        session.api.post(paths.logger_defaults(log), {})
        said = (
            f"{log}: default levels removed ({', '.join(sorted(dropped))}); its processes "
            "keep the levels they start with, unless an allocation overrides them"
            if dropped
            else f"{log}: had no default levels; nothing changed"
        )
        result: dict[str, Any] = {"defaults": {}}
    else:
        dropped = session.api.get(paths.alloc_levels(alloc)).get(log, {})
        session.api.send("DELETE", paths.alloc_logger_levels(alloc, log))
        said = (
            f"{log}: the overrides of allocation {alloc} removed ({', '.join(sorted(dropped))});"
            " it uses the default levels again"
            if dropped
            else f"{log}: allocation {alloc} had no overrides; nothing changed"
        )
        result = {"overrides": {}}
    session.say(said)
    if session.json:
        session.print_json(result)


@click.command()
@click.argument("log", shell_complete=log_ids)
@click.argument("levels", nargs=-1, metavar="[LOGGER=LEVEL]...")
@click.option("--alloc", help="one allocation's overrides instead of the defaults")
@click.option("--reset", is_flag=True, help="drop the overrides (--alloc) or the defaults")
@client_command
def loglevel(
    session: Session, log: str, levels: tuple[str, ...], alloc: str | None, reset: bool
) -> None:
    """Show or set LOG's logger levels: the defaults, or one allocation's overrides.
    Setting merges over what is there."""
    wanted = parse_levels(levels)
    if reset and wanted:
        raise click.UsageError("--reset takes no LOGGER=LEVEL")
    if reset:
        _reset(session, log, alloc)
        return
    defaults: dict[str, dict[str, str]] = session.api.get(paths.LOG_DEFAULTS)
    if alloc is None:
        if wanted:
            result = session.api.post(
                paths.logger_defaults(log), {**defaults.get(log, {}), **wanted}
            )
        else:
            result = defaults.get(log, {})
        session.emit(result, lambda r: _levels_table(r, "default"))
        return
    path = paths.alloc_levels(alloc)
    if wanted:
        current = session.api.get(path).get(log, {})
        overrides = session.api.post(paths.alloc_logger_levels(alloc, log), {**current, **wanted})
    else:
        overrides = session.api.get(path)
    mine = overrides.get(log, {})
    effective = {**defaults.get(log, {}), **mine}
    if session.json:
        session.print_json({"defaults": defaults.get(log, {}), "overrides": mine})
        return
    rows = [[k, v, "override" if k in mine else "default"] for k, v in sorted(effective.items())]
    session.console.print(table(["logger", "level", "source"], rows))


loggers_commands = (logs, loglevel)
