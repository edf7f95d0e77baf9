"""`caravan secrets | events | monitor`."""

from __future__ import annotations

import json
import time
import webbrowser
from typing import IO, Any

import click

from caravan.client import paths
from caravan.client.api import ApiFailure
from caravan.client.complete import secret_ids
from caravan.client.documents import read_document
from caravan.client.session import Session, client_command, table
from caravan.secrets.model import validate_secret_id

RESULTS_POLL_SECONDS = 1.0
_COMMENT = "#"


# -- secrets -------------------------------------------------------------------------------


@click.group()
def secrets() -> None:
    """Caravan's managed Secrets (values are never printed unless asked)."""


@secrets.command("list")
@client_command
def secrets_list(session: Session) -> None:
    """Ids of the managed secrets."""
    keys = session.api.get(paths.SECRETS)
    session.emit(keys, lambda k: table(["id"], [[i] for i in k["keys"]]))


def _checked_id(ctx: click.Context, param: click.Parameter, secret_id: str) -> str:
    """A clear sentence for an id no Secret can have, before anything is sent."""
    problem = validate_secret_id(secret_id)
    if problem:
        raise click.BadParameter(f"{secret_id!r}: {problem}")
    return secret_id


_SECRET_ID = click.argument(
    "secret_id", metavar="ID", callback=_checked_id, shell_complete=secret_ids
)


@secrets.command("get")
@_SECRET_ID
@click.option("--show", is_flag=True, help="print the values too")
@client_command
def secrets_get(session: Session, secret_id: str, show: bool) -> None:
    """The keys of secret ID (and their values with --show)."""
    values: dict[str, str] = session.api.get(paths.secret(secret_id))
    if session.json:
        session.print_json(values if show else {"id": secret_id, "keys": sorted(values)})
        return
    # Hidden means hidden: not even the length, which narrows a guess.
    rows = [[k, v if show else "<hidden: --show prints it>"] for k, v in sorted(values.items())]
    session.console.print(table(["key", "value"], rows))


def parse_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{pair.partition('=')[0]!r}: expected KEY=VALUE", param_hint="KEY=VALUE"
            )
        values[key] = value
    return values


@secrets.command("set")
@_SECRET_ID
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--replace", is_flag=True, help="replace the whole map instead of merging")
@client_command
def secrets_set(session: Session, secret_id: str, pairs: tuple[str, ...], replace: bool) -> None:
    """Set keys of secret ID (created if absent), merged over its other keys."""
    values = parse_pairs(pairs)
    path = paths.secret(secret_id)
    if not replace:
        try:
            values = {**session.api.get(path), **values}
        except ApiFailure as exc:
            if exc.status != 404:
                raise
    session.api.post(path, values)
    session.say(f"secret {secret_id}: {len(values)} keys stored")


@secrets.command("delete")
@_SECRET_ID
@client_command
def secrets_delete(session: Session, secret_id: str) -> None:
    """Delete secret ID."""
    session.api.delete(paths.secret(secret_id))
    session.say(f"secret {secret_id}: deleted")


# -- events --------------------------------------------------------------------------------


@click.group()
def events() -> None:
    """Events map-reduce documents, their results, and viewer events."""


@events.command("get")
@client_command
def events_get(session: Session) -> None:
    """The documents in force, and the stored ones' errors."""
    view = session.api.get(paths.EVENTS)
    session.print_json(view)


@events.command("load")
@click.argument("files", nargs=-1, required=True, type=click.File("r"))
@client_command
def events_load(session: Session, files: tuple[IO[str], ...]) -> None:
    """Replace the events documents with FILEs (each a document, or {"mapreduce": [...]})."""
    documents: list[Any] = []
    for file in files:
        document = read_document(file)
        if isinstance(document, dict) and "mapreduce" in document:
            documents.extend(document["mapreduce"] or [])
        else:
            documents.append(document)
    view = session.api.post(paths.EVENTS, {"mapreduce": documents})
    if session.json:
        session.print_json(view)
    else:
        session.say(f"{len(documents)} events document(s) stored and live")


def _show_results(session: Session, page: dict[str, Any]) -> None:
    for message in page.get("messages") or []:
        if session.json:
            click.echo(json.dumps(message, ensure_ascii=False))
        elif message.get("error"):
            click.echo(f"error: {message['error']}")
        else:
            click.echo(message.get("value", ""))


@events.command("results")
@click.option("-f", "--follow", is_flag=True, help="keep printing new results until Ctrl-C")
@click.option("--counter", type=click.IntRange(min=0), default=0, help="start after this position")
@client_command
def events_results(session: Session, follow: bool, counter: int) -> None:
    """Reduction results (one line per period and reduction)."""
    try:
        while True:
            page = session.api.get(paths.events_results(counter))
            _show_results(session, page)
            counter = int(page.get("counter", counter))
            if not follow:
                return
            time.sleep(RESULTS_POLL_SECONDS)
    except KeyboardInterrupt:
        return


def viewer_events(text: str, where: str) -> list[Any]:
    """A JSON array of events, one event object, or JSON lines."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        parsed = json.loads(stripped)
    except ValueError:
        try:
            return [json.loads(line) for line in stripped.splitlines() if line.strip()]
        except ValueError as exc:
            raise click.BadParameter(f"{where}: not JSON, nor JSON lines: {exc}") from None
    return parsed if isinstance(parsed, list) else [parsed]


@events.command("send")
@click.argument("channel")
@click.argument("file", type=click.File("r"))
@client_command
def events_send(session: Session, channel: str, file: IO[str]) -> None:
    """Send viewer events from FILE (- for stdin) to CHANNEL."""
    batch = viewer_events(file.read(), getattr(file, "name", "FILE"))
    result = session.api.post(paths.EVENTS_SEND, {"channel": channel, "events": batch})
    if session.json:
        session.print_json(result)
    else:
        session.say(", ".join(f"{k}: {v}" for k, v in result.items() if not isinstance(v, list)))
        for rejection in result.get("rejections") or []:
            if isinstance(rejection, dict):
                session.say(f"  event {rejection.get('index')}: {rejection.get('reason')}")


# -- monitor -------------------------------------------------------------------------------


@click.command()
@client_command
def monitor(session: Session) -> None:
    """Open the Cluster UI in a browser (prints its URL where there is none)."""
    url = f"{session.api.url}{paths.UI}"
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        click.echo(f"No browser found; open {url}")
        return
    if browser.open(url):
        click.echo(f"Opened {url}")
    else:
        click.echo(f"Could not start a browser; open {url}")
