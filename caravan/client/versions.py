"""Versions and plans in the CLI: `caravan history`, `diff`, `revert` and `plan`.

`history JOB` lists a job's versions, `diff JOB [V1 [V2]]` shows what changed between
two of them, `revert JOB V` makes version V current again (as a new version; the running
counts are kept), and `plan FILE` shows what loading a job definitions file would change,
as the API's dry run says, writing nothing.
"""

from __future__ import annotations

from typing import IO, Any

import click

from caravan.client import paths
from caravan.client.api import ApiFailure
from caravan.client.documents import read_document
from caravan.client.plan_view import Row, print_changes, print_diff, unified
from caravan.client.session import Session, client_command, table


def plan_rows(answer: dict[str, Any]) -> list[Row]:
    """A dry run's answer as the rows `load` prints: action, job, a note, the diff."""
    rows = []
    for name, plan in sorted((answer.get("jobs") or {}).items()):
        note = "replaces running allocations" if plan.get("restartsAllocations") else ""
        diff = tuple(str(plan.get("diff") or "").splitlines())
        rows.append(Row(str(plan.get("action")), "job", name, note, diff))
    return rows


def dry_run(session: Session, document: dict[str, Any], force: bool, prune: bool) -> dict[str, Any]:
    """The API's dry run of loading `document` (every job at once with `prune`)."""
    params = {"dryRun": "true", **({"force": "true"} if force else {})}
    if prune:
        return dict(session.api.post(paths.JOBSDEFS, document, params=params))
    jobs: dict[str, Any] = {}
    for name, definition in sorted(document.items()):
        answer = session.api.post(paths.jobsdef(name), definition, params=params)
        jobs.update(answer.get("jobs") or {})
    return {"jobs": jobs}


def show_plan(session: Session, answer: dict[str, Any]) -> None:
    if session.json:
        session.print_json(answer)
    else:
        print_changes(session.console, plan_rows(answer))


def read_definitions(file: IO[str]) -> dict[str, Any]:
    document = read_document(file)
    if not isinstance(document, dict) or not all(isinstance(v, dict) for v in document.values()):
        raise click.BadParameter("expected a map of job name to definition", param_hint="FILE")
    return document


@click.command()
@click.argument("job")
@client_command
def history(session: Session, job: str) -> None:
    """JOB's versions, newest (current) first: each change of its definition."""
    versions = session.api.get(paths.job_versions(job))
    session.emit(
        versions,
        lambda vs: table(
            ["version", "time", "change"], [[v["version"], v["time"], v["change"]] for v in vs]
        ),
    )


def _definition(session: Session, job: str, version: int) -> Any:
    return session.api.get(paths.job_version(job, version))["definition"]


@click.command()
@click.argument("job")
@click.argument("v1", type=int, required=False)
@click.argument("v2", type=int, required=False)
@client_command
def diff(session: Session, job: str, v1: int | None, v2: int | None) -> None:
    """What changed in JOB's definition: from the previous version to the current one;
    from V1 to the current one; or from V1 to V2."""
    numbers = [v["version"] for v in session.api.get(paths.job_versions(job))]
    if not numbers:
        raise ApiFailure(f"job {job!r} has no versions yet")
    if v1 is None:
        if len(numbers) < 2:
            session.say(f"job {job} has only one version ({numbers[0]})")
            return
        v1, v2 = numbers[1], numbers[0]
    elif v2 is None:
        v2 = numbers[0]
    lines = unified(_definition(session, job, v1), _definition(session, job, v2), job)
    lines = [
        line.replace(f"{job} (now)", f"{job}@{v1}").replace(f"{job} (after)", f"{job}@{v2}")
        for line in lines
    ]
    if session.json:
        session.print_json({"from": v1, "to": v2, "diff": "\n".join(lines)})
    elif lines:
        print_diff(session.console, lines, indent="")
    else:
        session.say(f"versions {v1} and {v2} of job {job} are the same")


@click.command()
@click.argument("job")
@click.argument("version", type=int)
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@client_command
def revert(session: Session, job: str, version: int, yes: bool) -> None:
    """Make VERSION of JOB's definition current again (a new version; running counts
    are kept, clamped to its countMax). Shows the change and asks first, unless --yes."""
    if not yes:
        current = session.api.get(paths.job_versions(job))
        if current:
            lines = unified(
                _definition(session, job, current[0]["version"]),
                _definition(session, job, version),
                job,
            )
            if lines:
                print_diff(session.console, lines, indent="")
            else:
                session.say("the definition would not change")
        click.confirm(f"revert job {job} to version {version}?", abort=True, err=True)
    answer = session.api.post(paths.job_revert(job), {"version": version})
    if session.json:
        session.print_json(answer)
    else:
        session.say(f"job {job}: reverted to version {version} (a new version)")


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.File("r"), metavar="PROJECT.hcl|JOBS.yaml..."
)
@click.option("--force", is_flag=True, help="plan replacing started jobs too")
@client_command
def plan(session: Session, files: tuple[IO[str], ...], force: bool) -> None:
    """What `caravan load FILES` would change, with the diff of each job's definition:
    `load --dry-run`. Nothing is written."""
    from caravan.client.load import load_files

    load_files(session, files, True, force)
