"""`caravan logdefs list | set | delete`: the log definitions `caravan logs` reads.

A log definition names a job, one of its task groups and one of that group's tasks (a
container), and which of its files it is (stdout or stderr). `set` checks all three
against the job's definition before writing, so a log never points at nothing.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from caravan.client import paths
from caravan.client.api import ApiFailure, write_if_unchanged
from caravan.client.complete import job_names, log_ids
from caravan.client.logtargets import log_group, log_target_problem
from caravan.client.plan_view import field_changes
from caravan.client.session import Session, client_command, table

FIELDS = ("job", "group", "task", "fileName", "logLevel")


def _table(entries: list[dict[str, Any]]) -> Table:
    rows = [
        [
            e.get("id"),
            e.get("job"),
            e.get("group"),
            e.get("task"),
            e.get("fileName"),
            "yes" if e.get("logLevel") else "no",
        ]
        for e in sorted(entries, key=lambda e: str(e.get("id")))
    ]
    return table(["id", "job", "group", "task", "file", "live levels"], rows)


@click.group()
def logdefs() -> None:
    """Log definitions: which job, group and task `caravan logs ID` reads."""


@logdefs.command("list")
@client_command
def logdefs_list(session: Session) -> None:
    """Every log definition."""
    session.emit(session.api.get(paths.LOG_DEFINITIONS), _table)


@logdefs.command("set")
@click.argument("log_id", metavar="ID")
@click.option("--job", required=True, shell_complete=job_names, help="the job")
@click.option("--group", help="its task group (default: the job's only one, or the group of TASK)")
@click.option("--task", required=True, help="the task (container) whose log it is")
@click.option(
    "--file",
    "file_name",
    type=click.Choice(["stdout", "stderr"]),
    default="stdout",
    show_default=True,
    help="which of the task's streams",
)
@click.option(
    "--levels/--no-levels",
    default=False,
    help="the task follows live levels under loggerID ID (caravan loglevel ID)",
)
@client_command
def logdefs_set(
    session: Session,
    log_id: str,
    job: str,
    group: str | None,
    task: str,
    file_name: str,
    levels: bool,
) -> None:
    """Create or replace log definition ID."""
    jobs = session.api.get(paths.JOBSDEFS)
    attrs = {"job": job, "group": group, "task": task}
    entry = {
        "id": log_id,
        "job": job,
        "group": log_group(attrs, jobs),
        "task": task,
        "fileName": file_name,
        "logLevel": levels,
    }
    problem = log_target_problem(entry, jobs)
    if problem:
        raise ApiFailure(f"log {log_id!r} not stored: {problem}")
    current: list[dict[str, Any]] = session.api.get(paths.LOG_DEFINITIONS)
    before = next((e for e in current if e.get("id") == log_id), None)
    if before == entry:
        session.say(f"log {log_id}: unchanged")
        return
    updated = [entry if e.get("id") == log_id else e for e in current]
    if before is None:
        updated.append(entry)
    write_if_unchanged(session.api, paths.LOG_DEFINITIONS, current, updated, "the log definitions")
    if before is None:
        session.say(f"log {log_id}: created ({job}/{entry['group']}/{task} {file_name})")
    else:
        session.say(f"log {log_id}: replaced ({field_changes(before, entry, FIELDS)})")
    if session.json:
        session.print_json(entry)


@logdefs.command("delete")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, shell_complete=log_ids)
@click.option("--missing-ok", is_flag=True, help="no error for an ID that is not defined")
@client_command
def logdefs_delete(session: Session, ids: tuple[str, ...], missing_ok: bool) -> None:
    """Delete log definitions (their levels stay: caravan loglevel ID --reset)."""
    current: list[dict[str, Any]] = session.api.get(paths.LOG_DEFINITIONS)
    known = {str(e.get("id")) for e in current}
    missing = [i for i in ids if i not in known]
    if missing and not missing_ok:
        raise ApiFailure(
            f"no log {', '.join(repr(m) for m in missing)} (caravan logdefs list); nothing "
            "was deleted",
            404,
        )
    updated = [e for e in current if str(e.get("id")) not in ids]
    if len(updated) != len(current):
        write_if_unchanged(
            session.api, paths.LOG_DEFINITIONS, current, updated, "the log definitions"
        )
    for log_id in ids:
        session.say(f"log {log_id}: {'deleted' if log_id in known else 'not defined'}")
