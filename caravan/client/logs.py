"""`caravan logs | loglevel`: a log definition's newest allocation, and log levels."""

from __future__ import annotations

import sys
from typing import Any, Literal

import click
from rich.table import Table

from caravan.client import paths
from caravan.client.api import ApiFailure
from caravan.client.session import Session, client_command, table

LEVELS = ("debug", "info", "warning", "error", "fatal", "panic")


def newest_allocation(metas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The allocation created last (ties: the greater id), as `genvid-sdk log` picks."""
    if not metas:
        return None
    return max(metas, key=lambda m: (m.get("createTime", ""), m.get("allocID", "")))


def _allocation(session: Session, log: str, alloc: str | None) -> dict[str, Any]:
    metas: list[dict[str, Any]] = session.api.get(paths.log_meta(log))
    if alloc is None:
        found = newest_allocation(metas)
        if found is None:
            raise ApiFailure(f"log {log!r} has no allocation: is its job started?", 404)
        return found
    for meta in metas:
        if meta["allocID"] == alloc:
            return meta
    raise ApiFailure(f"allocation {alloc!r} is not one of log {log!r}'s", 404)


@click.command()
@click.argument("log")
@click.option("--alloc", help="the allocation (default: the newest)")
@click.option("--stderr", is_flag=True, help="read stderr instead of stdout")
@click.option("-f", "--follow", is_flag=True, help="stream new bytes until Ctrl-C")
@click.option("--tail", type=click.IntRange(min=0), help="only the last BYTES bytes")
@client_command
def logs(
    session: Session,
    log: str,
    alloc: str | None,
    stderr: bool,
    follow: bool,
    tail: int | None,
) -> None:
    """Print LOG's bytes (a log definition id, as `genvid-sdk log NAME`)."""
    meta = _allocation(session, log, alloc)
    fs: Literal["stdout", "stderr"] = "stderr" if stderr else "stdout"
    params: dict[str, str] = {}
    if tail is not None:
        params.update(origin="end", offset=str(tail))
    if follow:
        params["follow"] = "true"
    path = paths.log_read(meta["allocID"], meta["taskName"], fs)
    if session.json:
        click.echo(f"allocation {meta['allocID']}, task {meta['taskName']}", err=True)
    out = sys.stdout.buffer
    try:
        with session.api.stream(path, params=params) as response:
            if response.headers.get("X-Caravan-Log-Stream") == "combined" and stderr:
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


@click.command()
@click.argument("log")
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
    defaults: dict[str, dict[str, str]] = session.api.get(paths.LOG_DEFAULTS)
    if alloc is None:
        if reset:
            session.api.post(paths.logger_defaults(log), {})
            result: dict[str, str] = {}
        elif wanted:
            result = session.api.post(
                paths.logger_defaults(log), {**defaults.get(log, {}), **wanted}
            )
        else:
            result = defaults.get(log, {})
        session.emit(result, lambda r: _levels_table(r, "default"))
        return
    path = paths.alloc_levels(alloc)
    if reset:
        overrides = session.api.send("DELETE", paths.alloc_logger_levels(alloc, log)).json()
    elif wanted:
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
