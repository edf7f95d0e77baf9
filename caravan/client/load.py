"""`caravan load PROJECT.hcl...`: bring a Genvid project's logs, config, secrets and job
attributes over. Everything is validated and planned first; nothing is written on error."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import click

from caravan.client import paths
from caravan.client.api import ApiFailure
from caravan.client.session import Session, client_command, table

if TYPE_CHECKING:
    from caravan.client.project import Current, Plan

_SYMBOLS = {"create": "+", "replace": "~", "unchanged": "="}


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
    rows = [[_SYMBOLS[c.action], c.kind, c.name, c.action, c.detail] for c in plan.changes]
    session.console.print(table(["", "kind", "name", "action", "detail"], rows))
    for note in plan.notes:
        click.echo(f"note: {note}")


def _apply(session: Session, plan: Plan) -> None:
    """Most likely refusals first (settings), the secrets last."""
    api = session.api
    if plan.settings is not None:
        api.post(paths.SETTINGS, plan.settings)
    if plan.logs is not None:
        api.post(paths.LOG_DEFINITIONS, plan.logs)
    for name, definition in sorted(plan.jobs.items()):
        api.post(paths.jobsdef(name), definition)
    for secret_id, values in sorted(plan.secrets.items()):
        api.post(paths.secret(secret_id), values)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.File("r"), metavar="PROJECT.hcl...")
@click.option("--dry-run", is_flag=True, help="stop after the plan")
@client_command
def load(session: Session, files: tuple[IO[str], ...], dry_run: bool) -> None:
    """Load Genvid project files: log blocks → log definitions, config → settings (merged),
    secrets → managed secrets, job attributes → the jobs' autostart and dependencies.
    Nomad job templates are not converted."""
    # Imported here: the HCL parser and the settings validator are only for this command.
    from caravan.client.project import ProjectError, make_plan, read_project

    try:
        project = read_project((getattr(f, "name", "-"), f.read()) for f in files)
    except ProjectError as exc:
        raise click.BadParameter(str(exc), param_hint="PROJECT.hcl") from None
    plan = make_plan(project, _current(session, sorted(project.secrets)))
    _show(session, plan)
    if plan.errors:
        for error in plan.errors:
            click.echo(f"error: {error}", err=True)
        raise ApiFailure(f"nothing was changed: {len(plan.errors)} error(s) in the project")
    if dry_run:
        session.say(f"dry run: {plan.writes} change(s) planned, nothing written")
        return
    _apply(session, plan)
    session.say(f"{plan.writes} change(s) applied")
