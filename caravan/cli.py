"""The `caravan` command: `caravan run` serves the API; every other command is a client of it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

import click

from caravan.client import failures
from caravan.client.areas import events, monitor, secrets
from caravan.client.jobs import jobsdefs, scale, start, status, stop
from caravan.client.load import load
from caravan.client.logdefs import logdefs
from caravan.client.logs import loggers_commands
from caravan.client.settings import settings
from caravan.client.versions import diff, history, plan, revert
from caravan.config import (
    Config,
    ConfigMapNames,
    ServerLimits,
    env_defaults,
    names_list,
    nats_from_env,
)

_ENV = env_defaults()


class _ConfigRefused(click.ClickException):
    """A configuration `caravan run` refuses to serve: a usage mistake (exit 2)."""

    exit_code = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="caravan")
def cli() -> None:
    """Caravan: the Genvid Cluster API on Kubernetes.

    `caravan run` serves the API and runs the operator; the other commands talk to a
    running Caravan over HTTP (--url, CARAVAN_URL; default http://127.0.0.1:8080).
    """


@cli.command()
@click.option(
    "--host", default=_ENV["host"], show_default=True, help="listen address [CARAVAN_LISTEN_HOST]"
)
@click.option(
    "--port", type=int, default=int(_ENV["port"]), show_default=True, help="[CARAVAN_LISTEN_PORT]"
)
@click.option(
    "--namespace",
    default=None,
    help="namespace served [CARAVAN_NAMESPACE, else the pod's, else default]",
)
@click.option(
    "--auth-mode",
    type=click.Choice(["none", "kubernetes"]),
    default=_ENV["auth_mode"],
    show_default=True,
    help="API authentication [CARAVAN_AUTH_MODE]; none only on loopback",
)
@click.option("--kubeconfig", default=None, help="kubeconfig file [KUBECONFIG]")
@click.option("--context", default=None, help="kubeconfig context")
@click.option("--no-operator", is_flag=True, help="serve the API only")
@click.option(
    "--configmap-prefix",
    default=_ENV["prefix"],
    show_default=True,
    help="prefix of Caravan's ConfigMaps [CARAVAN_CONFIGMAP_PREFIX]",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=_ENV["leader_elect"].lower() in ("1", "true", "yes"),
    help="run the operator only while holding the caravan-operator Lease, for several"
    " replicas [CARAVAN_LEADER_ELECT]",
)
@click.option(
    "--lease-seconds",
    type=float,
    default=float(_ENV["lease_seconds"]),
    show_default=True,
    help="how long a silent leader keeps the Lease [CARAVAN_LEASE_SECONDS]",
)
@click.option(
    "--read-your-writes-seconds",
    type=float,
    default=5.0,
    show_default=True,
    help="how long a write waits for this replica's store to show it (0: not at all)",
)
@click.option(
    "--task-service-account",
    default=_ENV["task_service_account"],
    help="ServiceAccount task pods run as when their template names none (no RBAC, no"
    " token) [CARAVAN_TASK_SERVICE_ACCOUNT]; empty: the namespace's default, without token",
)
@click.option(
    "--allowed-service-accounts",
    default=_ENV["allowed_service_accounts"],
    help="comma-separated ServiceAccounts a job's template may name"
    " [CARAVAN_ALLOWED_SERVICE_ACCOUNTS]; Caravan's own is never allowed",
)
@click.option(
    "--service-account",
    "own_service_account",
    default=_ENV["own_service_account"],
    help="Caravan's own ServiceAccount, which task pods may never use [CARAVAN_SERVICE_ACCOUNT]",
)
@click.option(
    "--pod-policy",
    type=click.Choice(["baseline", "privileged"]),
    default=_ENV["pod_policy"],
    show_default=True,
    help="what task pods may ask for: Kubernetes' baseline Pod Security Standard, or"
    " anything (privileged) [CARAVAN_POD_POLICY]",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=int(_ENV["max_body_bytes"]),
    show_default=True,
    help="largest request body accepted; larger ones get 413 unread [CARAVAN_MAX_BODY_BYTES]",
)
@click.option(
    "--token-audience",
    default=_ENV["token_audience"],
    help="audience callers' tokens must be issued for (TokenReview audiences);"
    " empty: the apiserver's [CARAVAN_TOKEN_AUDIENCE]",
)
@click.option(
    "--reuse-port/--no-reuse-port",
    default=_ENV["reuse_port"].lower() in ("1", "true", "yes"),
    help="share the listening port with other processes (SO_REUSEPORT), e.g. replicas in"
    " one node's network namespace [CARAVAN_REUSE_PORT]",
)
@click.option(
    "--shutdown-delay",
    type=float,
    default=float(_ENV["shutdown_delay"]),
    show_default=True,
    help="seconds between SIGTERM (not ready from then on) and the server no longer"
    " listening [CARAVAN_SHUTDOWN_DELAY_SECONDS]",
)
@click.option(
    "--ready-file",
    default=_ENV["ready_file"],
    help="a file that exists while this replica is ready, for an exec readiness probe"
    " [CARAVAN_READY_FILE]",
)
@click.option(
    "--log-level", default=_ENV["log_level"], show_default=True, help="[CARAVAN_LOG_LEVEL]"
)
def run(
    host: str,
    port: int,
    namespace: str | None,
    auth_mode: str,
    kubeconfig: str | None,
    context: str | None,
    no_operator: bool,
    configmap_prefix: str,
    leader_elect: bool,
    lease_seconds: float,
    read_your_writes_seconds: float,
    task_service_account: str,
    allowed_service_accounts: str,
    own_service_account: str,
    pod_policy: str,
    max_body_bytes: int,
    token_audience: str,
    reuse_port: bool,
    shutdown_delay: float,
    ready_file: str,
    log_level: str,
) -> None:
    """Serve the Cluster API and run the operator."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if kubeconfig:
        # Kopf reads KUBECONFIG itself; one source of truth for both halves.
        os.environ["KUBECONFIG"] = kubeconfig
    config = Config(
        namespace=namespace or Config.default_namespace(),
        host=host,
        port=port,
        auth_mode="kubernetes" if auth_mode == "kubernetes" else "none",
        kubeconfig=kubeconfig,
        context=context,
        run_operator=not no_operator,
        configmaps=ConfigMapNames.with_prefix(configmap_prefix),
        leader_election=leader_elect,
        lease_seconds=lease_seconds,
        read_your_writes_seconds=read_your_writes_seconds,
        task_service_account=task_service_account or None,
        allowed_service_accounts=names_list(allowed_service_accounts),
        own_service_account=own_service_account or None,
        pod_policy="privileged" if pod_policy == "privileged" else "baseline",
        limits=ServerLimits(max_body_bytes=max_body_bytes),
        token_audience=token_audience or None,
        log_level=log_level.upper(),
        reuse_port=reuse_port,
        shutdown_delay_seconds=shutdown_delay,
        ready_file=ready_file or None,
        # Only from the environment: credentials stay out of the process's arguments.
        nats=nats_from_env(),
    )
    try:
        config.check()
    except ValueError as exc:
        raise _ConfigRefused(str(exc)) from None
    from caravan.runner import serve  # heavy imports only when running

    run_loop(serve(config))


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(caravan completion bash)"."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "caravan", "_CARAVAN_COMPLETE").source())


for command in (
    status,
    start,
    stop,
    scale,
    jobsdefs,
    *loggers_commands,
    logdefs,
    settings,
    secrets,
    events,
    monitor,
    load,
    *failures.COMMANDS,
    plan,
    history,
    diff,
    revert,
):
    cli.add_command(command)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (it serves 1,000 woken long polls markedly faster), else asyncio.

    Only the API half's loop: Kopf runs its own, standard loop in its thread."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 success, 1 an API error (its sentence printed), 2 a usage mistake."""
    try:
        cli.main(args=argv, prog_name="caravan", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
