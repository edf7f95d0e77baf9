"""What every client command shares: connection options, the API, the output format."""

from __future__ import annotations

import functools
import json
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from caravan.client.api import DEFAULT_URL, Api, kubeconfig_token

F = TypeVar("F", bound=Callable[..., Any])


def _console() -> Console:
    # Piped output keeps whole rows (no wrapping at 80 columns), like kubectl's.
    width = None if sys.stdout.isatty() else max(shutil.get_terminal_size().columns, 200)
    return Console(width=width, highlight=False, soft_wrap=False)


@dataclass
class Session:
    api: Api
    output: str
    console: Console

    @property
    def json(self) -> bool:
        return self.output == "json"

    def print_json(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))

    def emit(self, data: Any, table: Callable[[Any], Table | str]) -> None:
        """`-o json`: the API's JSON as is; else a human table."""
        if self.json:
            self.print_json(data)
        else:
            self.console.print(table(data))

    def say(self, text: str) -> None:
        """A human line (stderr under -o json, so stdout stays parseable)."""
        click.echo(text, err=self.json)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """kubectl-like: upper-case headers, no borders."""
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column.upper(), no_wrap=True)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    return grid


def client_command(f: F) -> F:
    """Adds --url, --token, --token-from-kubeconfig and -o; passes a Session first."""

    @click.option(
        "--url",
        envvar="CARAVAN_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="Caravan's API [CARAVAN_URL]",
    )
    @click.option(
        "--token", envvar="CARAVAN_TOKEN", default=None, help="bearer token [CARAVAN_TOKEN]"
    )
    @click.option(
        "--token-from-kubeconfig",
        is_flag=True,
        help="send the token of the kubeconfig's current user ($KUBECONFIG or ~/.kube/config)",
    )
    @click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="human table, or the API's JSON for scripts",
    )
    @functools.wraps(f)
    def wrapper(
        url: str, token: str | None, token_from_kubeconfig: bool, output: str, **kwargs: Any
    ) -> Any:
        if token_from_kubeconfig:
            if token:
                raise click.UsageError("give --token or --token-from-kubeconfig, not both")
            token = kubeconfig_token()
        session = Session(Api(url, token), output, _console())
        try:
            return f(session, **kwargs)
        finally:
            session.api.close()

    return wrapper  # type: ignore[return-value]
