"""`caravan settings get | set | edit`: the installation's settings document."""

from __future__ import annotations

import json
from typing import Any

import click

from caravan.client import paths
from caravan.client.api import ApiFailure, write_if_unchanged
from caravan.client.documents import parse_document, read_document
from caravan.client.plan_view import path_changes, short
from caravan.client.session import Session, client_command
from caravan.client.settings_paths import (
    SettingError,
    assign,
    given,
    is_assignment,
    parse_assignment,
)
from caravan.settings.defaults import fill_defaults

_COMMENT = "#"


@click.group()
def settings() -> None:
    """The installation's settings document."""


@settings.command("get")
@client_command
def settings_get(session: Session) -> None:
    """Print the current settings (defaults filled in)."""
    session.print_json(session.api.get(paths.SETTINGS))


@settings.command("set")
@click.argument("arguments", nargs=-1, required=True, metavar="PATH=VALUE... | FILE")
@click.option("--yes", is_flag=True, help="no warning before a FILE resets settings it omits")
@client_command
def settings_set(session: Session, arguments: tuple[str, ...], yes: bool) -> None:
    """Change settings. PATH=VALUE... changes those values and keeps every other one
    (`caravan settings set logs.followIdleTimeoutSeconds=600`; each VALUE typed by the
    schema). FILE (JSON or YAML; - for stdin) replaces the whole document: what it omits
    is reset to the defaults, and the command warns which values that resets."""
    if all(is_assignment(a) for a in arguments):
        _set_paths(session, list(arguments))
        return
    if len(arguments) != 1:
        raise click.UsageError("give PATH=VALUE... or one FILE, not both")
    with click.open_file(arguments[0]) as file:
        document = read_document(file)
    if isinstance(document, dict) and not yes:
        _warn_resets(session, document)
    stored = session.api.post(paths.SETTINGS, document)
    if session.json:
        session.print_json(stored)
    else:
        session.say("settings stored")


def _set_paths(session: Session, arguments: list[str]) -> None:
    """Read, change the paths, write on condition that nobody wrote in between."""
    schema = session.api.get(paths.SETTINGS_SCHEMA)
    try:
        assignments = [parse_assignment(a, schema) for a in arguments]
        current = session.api.get(paths.SETTINGS)
        updated = assign(current, assignments)
    except SettingError as exc:
        raise click.BadParameter(str(exc), param_hint="PATH=VALUE") from None
    if updated == current:
        session.say("settings unchanged")
        if session.json:
            session.print_json(current)
        return
    stored = write_if_unchanged(session.api, paths.SETTINGS, current, updated, "the settings")
    changes = [
        f"{a.dotted}: {short(_at(current, a.path))} → {short(_at(stored, a.path))}"
        for a in assignments
    ]
    session.say("settings stored: " + ", ".join(changes))
    if session.json:
        session.print_json(stored)


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(document, dict) or name not in document:
            return None
        document = document[name]
    return document


def _warn_resets(session: Session, document: dict[str, Any]) -> None:
    """Warns (stderr) about every current value the document omits and the defaults
    will change: `settings set FILE` stores the document as a whole."""
    current = session.api.get(paths.SETTINGS)
    schema = session.api.get(paths.SETTINGS_SCHEMA)
    after = fill_defaults(document, schema)
    found = path_changes(current, after)
    reset = [p for p in found.changed + found.removed if not given(document, tuple(p.split(".")))]
    if reset:
        shown = ", ".join(reset[:8]) + (f" and {len(reset) - 8} more" if len(reset) > 8 else "")
        click.echo(
            f"warning: the document omits {shown}: {'it' if len(reset) == 1 else 'they'} "
            "will be reset to the defaults. To change some values and keep the others: "
            "caravan settings set PATH=VALUE...",
            err=True,
        )


def with_error_comments(text: str, failure: ApiFailure) -> str:
    """The edited text again, headed by the refusal as comments (kubectl edit's way)."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith(_COMMENT))
    notes = [
        "# The settings were refused; fix them, or leave the file unchanged to cancel.",
        f"# {failure.message}",
    ]
    for d in failure.details:
        if isinstance(d, dict):
            notes.append(f"#   {d.get('path') or d.get('field') or ''}: {d.get('message', d)}")
    return "\n".join(notes) + "\n" + body.lstrip("\n") + ("\n" if not body.endswith("\n") else "")


def strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith(_COMMENT))


@settings.command("edit")
@client_command
def settings_edit(session: Session) -> None:
    """Edit the settings in $VISUAL or $EDITOR; refused ones come back with the errors."""
    seen = session.api.get(paths.SETTINGS)
    original = json.dumps(seen, indent=2) + "\n"
    text = original
    refused = False
    while True:
        edited = click.edit(text, extension=".json", require_save=False)
        if edited is None or strip_comments(edited).strip() == strip_comments(text).strip():
            if refused:
                raise ApiFailure("edit cancelled; the settings were not changed")
            session.say("edit cancelled, no changes made")
            return
        try:
            document = parse_document(strip_comments(edited), "the edited settings")
            write_if_unchanged(session.api, paths.SETTINGS, seen, document, "the settings")
        except click.BadParameter as exc:
            text, refused = with_error_comments(edited, ApiFailure(exc.format_message())), True
            continue
        except ApiFailure as exc:
            if exc.status not in (400, 422):
                raise
            text, refused = with_error_comments(edited, exc), True
            continue
        session.say("settings stored")
        return
