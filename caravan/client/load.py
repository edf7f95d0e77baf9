"""`caravan load PROJECT.hcl... [JOBS.yaml...]`: bring a Genvid project's logs, config,
secrets and jobs over. Everything is validated and planned first; nothing is written on
error."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import click

from caravan.client import paths
from caravan.client.api import ApiFailure, flags_named
from caravan.client.plan_view import print_changes
from caravan.client.session import Session, client_command
from caravan.jobs.order import start_order

if TYPE_CHECKING:
    from caravan.client.project import Current, Plan


def _current(session: Session, secret_ids: list[str]) -> Current:
    from caravan.client.project import Current

    api = session.api
    secrets: dict[str, dict[str, str] | None] = {}
    for secret_id in secret_ids:
        try:
            secrets[secret_id] = api.get(paths.secret(secret_id))
        except ApiFailure as exc:
            if exc.status not in (400, 404):
                raise
            secrets[secret_id] = None
    return Current(
        logs=api.get(paths.LOG_DEFINITIONS),
        settings=api.get(paths.SETTINGS),
        schema=api.get(paths.SETTINGS_SCHEMA),
        secrets=secrets,
        jobsdefs=api.get(paths.JOBSDEFS),
    )


def _show(session: Session, plan: Plan) -> None:
    if session.json:
        session.print_json(plan.to_json())
        return
    print_changes(session.console, [c.row() for c in plan.changes])
    for note in plan.notes:
        click.echo(f"note: {note}")


def _apply(session: Session, plan: Plan, force: bool) -> None:
    """Most likely refusals first (settings, then the jobs), the secrets last; the log
    definitions after the jobs they name."""
    api = session.api
    if plan.settings is not None:
        api.post(paths.SETTINGS, plan.settings)
    params = {"force": "true"} if force else {}
    with flags_named():
        # A job after the jobs it depends on: each must exist when its dependent is written.
        graph = {n: list(d.get("dependencies") or []) for n, d in plan.jobs.items()}
        for name in start_order(graph):
            api.post(paths.jobsdef(name), plan.jobs[name], params=params)
    if plan.logs is not None:
        api.post(paths.LOG_DEFINITIONS, plan.logs)
    for secret_id, values in sorted(plan.secrets.items()):
        api.post(paths.secret(secret_id), values)


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.File("r"), metavar="PROJECT.hcl|JOBS.yaml..."
)
@click.option("--dry-run", is_flag=True, help="stop after the plan")
@click.option("--force", is_flag=True, help="replace started jobs too")
@client_command
def load(session: Session, files: tuple[IO[str], ...], dry_run: bool, force: bool) -> None:
    """Load Genvid project files: log blocks → log definitions, config → settings (merged),
    secrets → managed secrets, job blocks → the jobs' autostart and dependencies, and
    YAML/JSON job definitions files ({job: definition}) → jobs created or replaced.
    Nomad job templates are not converted."""
    load_files(session, files, dry_run, force)


def load_files(session: Session, files: tuple[IO[str], ...], dry_run: bool, force: bool) -> None:
    """`load`, and `plan` (its dry run)."""
    # Imported here: the HCL parser and the settings validator are only for this command.
    from caravan.client.project import ProjectError, make_plan, read_project

    try:
        project = read_project((getattr(f, "name", "-"), f.read()) for f in files)
    except ProjectError as exc:
        raise click.BadParameter(str(exc), param_hint="FILES") from None
    plan = make_plan(project, _current(session, sorted(project.secrets)))
    _show(session, plan)
    if plan.errors:
        for error in plan.errors:
            click.echo(f"error: {error}", err=True)
        raise ApiFailure(f"nothing was changed: {len(plan.errors)} error(s) in the project")
    if dry_run:
        # The apiserver checks the jobs as the writes would (admission, pod templates, the
        # rules across jobs): every job as it would be after the load, in one dry run.
        if plan.jobs:
            every = {**session.api.get(paths.JOBSDEFS), **plan.jobs}
            with flags_named():
                session.api.post(paths.JOBSDEFS, every, params={"dryRun": "true"})
        session.say(f"dry run: {plan.writes} change(s) planned, nothing written")
        return
    _apply(session, plan, force)
    session.say(f"{plan.writes} change(s) applied")
