"""The `caravan` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

from caravan.config import Config, ConfigMapNames, env_defaults


def _parser() -> argparse.ArgumentParser:
    env = env_defaults()
    parser = argparse.ArgumentParser(prog="caravan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve the Cluster API and run the operator")
    run.add_argument("--host", default=env["host"], help="listen address [CARAVAN_LISTEN_HOST]")
    run.add_argument("--port", type=int, default=int(env["port"]), help="[CARAVAN_LISTEN_PORT]")
    run.add_argument(
        "--namespace",
        default=None,
        help="namespace served [CARAVAN_NAMESPACE, else the pod's, else default]",
    )
    run.add_argument(
        "--auth-mode",
        choices=["none", "kubernetes"],
        default=env["auth_mode"],
        help="API authentication [CARAVAN_AUTH_MODE]; none only on loopback",
    )
    run.add_argument("--kubeconfig", default=None, help="kubeconfig file [KUBECONFIG]")
    run.add_argument("--context", default=None, help="kubeconfig context")
    run.add_argument("--no-operator", action="store_true", help="serve the API only")
    run.add_argument(
        "--configmap-prefix",
        default=env["prefix"],
        help="prefix of Caravan's ConfigMaps [CARAVAN_CONFIGMAP_PREFIX]",
    )
    run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=env["leader_elect"].lower() in ("1", "true", "yes"),
        help="run the operator only while holding the caravan-operator Lease, for several"
        " replicas [CARAVAN_LEADER_ELECT]",
    )
    run.add_argument("--log-level", default=env["log_level"], help="[CARAVAN_LOG_LEVEL]")
    return parser


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
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.kubeconfig:
        # Kopf reads KUBECONFIG itself; one source of truth for both halves.
        os.environ["KUBECONFIG"] = args.kubeconfig
    config = Config(
        namespace=args.namespace or Config.default_namespace(),
        host=args.host,
        port=args.port,
        auth_mode=args.auth_mode,
        kubeconfig=args.kubeconfig,
        context=args.context,
        run_operator=not args.no_operator,
        configmaps=ConfigMapNames.with_prefix(args.configmap_prefix),
        leader_election=args.leader_elect,
        log_level=args.log_level.upper(),
    )
    try:
        config.check()
    except ValueError as exc:
        print(f"caravan: {exc}", file=sys.stderr)
        return 2
    from caravan.runner import serve  # heavy imports only when running

    run_loop(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
