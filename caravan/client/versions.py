"""Versions and plans in the CLI: `caravan history`, `diff`, `revert` and `plan`.

`history JOB` lists a job's versions, `diff JOB [V1 [V2]]` shows what changed between
two of them, `revert JOB V` makes version V current again (as a new version; the running
counts are kept), and `plan FILE` shows what loading FILE would change, writing nothing.
"""

from __future__ import annotations

from typing import IO, Any
from urllib.parse import quote

import click

from caravan.client.api import ApiFailure
from caravan.client.documents import read_document
from caravan.client.session import Session, client_command, table
from caravan.jobs.versions import unified_diff

_STYLES = {"+": "green", "-": "red", "@": "cyan"}


def _path(job: str) -> str:
    return quote(job, safe="")


def print_diff(text: str) -> None:
    """A unified diff, coloured as `diff --color` does (on a terminal only)."""
    for line in text.splitlines():
        if line.startswith(("---", "+++")):
            click.secho(line, bold=True)
        else:
            click.secho(line, fg=_STYLES.get(line[:1]))


def show_plan(session: Session, answer: dict[str, Any]) -> None:
    """A dry run's answer: each job's action, then its diff."""
    if session.json:
        session.print_json(answer)
        return
    for name, plan in sorted((answer.get("jobs") or {}).items()):
        note = " (replaces running allocations)" if plan.get("restartsAllocations") else ""
        click.echo(f"job {name}: {plan.get('action')}{note}")
        if plan.get("diff"):
            print_diff(str(plan["diff"]))


def plan_definitions(
    session: Session, document: dict[str, Any], force: bool, prune: bool
) -> dict[str, Any]:
    """The API's dry run of loading `document` (every job at once with `prune`)."""
    params = {"dryRun": "true", **({"force": "true"} if force else {})}
    if prune:
        return dict(session.api.post("/v1/jobsdefs", document, params=params))
    jobs: dict[str, Any] = {}
    for name, definition in sorted(document.items()):
        answer = session.api.post(f"/v1/jobsdef/{_path(name)}", definition, params=params)
        jobs.update(answer.get("jobs") or {})
    return {"jobs": jobs}


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
    versions = session.api.get(f"/v1/jobs/{_path(job)}/versions")
    session.emit(
        versions,
        lambda vs: table(
            ["version", "time", "change"], [[v["version"], v["time"], v["change"]] for v in vs]
        ),
    )


def _definition(session: Session, job: str, version: int) -> dict[str, Any]:
    answer = session.api.get(f"/v1/jobs/{_path(job)}/versions/{version}")
    return dict(answer["definition"])


@click.command()
@click.argument("job")
@click.argument("v1", type=int, required=False)
@click.argument("v2", type=int, required=False)
@client_command
def diff(session: Session, job: str, v1: int | None, v2: int | None) -> None:
    """What changed in JOB's definition: from the previous version to the current one;
    from V1 to the current one; or from V1 to V2."""
    numbers = [v["version"] for v in session.api.get(f"/v1/jobs/{_path(job)}/versions")]
    if not numbers:
        raise ApiFailure(f"job {job!r} has no versions yet")
    if v1 is None:
        if len(numbers) < 2:
            session.say(f"job {job} has only one version ({numbers[0]})")
            return
        v1, v2 = numbers[1], numbers[0]
    elif v2 is None:
        v2 = numbers[0]
    text = unified_diff(
        _definition(session, job, v1), _definition(session, job, v2), f"{job}@{v1}", f"{job}@{v2}"
    )
    if session.json:
        session.print_json({"from": v1, "to": v2, "diff": text})
    elif text:
        print_diff(text)
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
    current = session.api.get(f"/v1/jobs/{_path(job)}/versions")
    if not yes:
        if current:
            now = current[0]["version"]
            text = unified_diff(
                _definition(session, job, now),
                _definition(session, job, version),
                f"{job}@{now} (current)",
                f"{job}@{version}",
            )
            print_diff(text) if text else session.say("no change in the definition")
        click.confirm(f"revert job {job} to version {version}?", abort=True)
    answer = session.api.post(f"/v1/jobs/{_path(job)}/revert", {"version": version})
    if session.json:
        session.print_json(answer)
    else:
        session.say(f"job {job}: reverted to version {version}")


@click.command()
@click.argument("file", type=click.File("r"))
@click.option("--force", is_flag=True, help="as `jobsdefs load --force` would")
@click.option("--prune", is_flag=True, help="also plan deleting the jobs FILE does not name")
@client_command
def plan(session: Session, file: IO[str], force: bool, prune: bool) -> None:
    """What loading FILE (a map {job: definition}, JSON or YAML) would change: each job's
    action and the diff of its definition. Nothing is written (`jobsdefs load --dry-run`)."""
    show_plan(session, plan_definitions(session, read_definitions(file), force, prune))
