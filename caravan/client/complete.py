"""Shell completion of names the API knows (log ids, jobs, secret ids).

Completion runs the command with the words typed so far; the API is asked with the
--url and --token already typed (else CARAVAN_URL, CARAVAN_TOKEN), briefly, and any
failure completes nothing rather than printing an error into the user's shell.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click
from click.shell_completion import CompletionItem

from caravan.client import paths
from caravan.client.api import DEFAULT_URL, Api, ApiFailure

COMPLETION_TIMEOUT_SECONDS = 2.0


def _names(ctx: click.Context, fetch: Callable[[Api], list[str]]) -> list[str]:
    url = ctx.params.get("url") or os.environ.get("CARAVAN_URL") or DEFAULT_URL
    token = ctx.params.get("token") or os.environ.get("CARAVAN_TOKEN")
    api = Api(str(url), str(token) if token else None, timeout=COMPLETION_TIMEOUT_SECONDS)
    try:
        return fetch(api)
    except (ApiFailure, ValueError, KeyError, TypeError):
        return []
    finally:
        api.close()


def _completer(
    fetch: Callable[[Api], list[str]],
) -> Callable[[click.Context, Any, str], list[CompletionItem]]:
    def complete(ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(n) for n in sorted(_names(ctx, fetch)) if n.startswith(incomplete)]

    return complete


log_ids = _completer(lambda api: [str(e["id"]) for e in api.get(paths.LOG_DEFINITIONS)])
job_names = _completer(lambda api: [str(j["name"]) for j in api.get(paths.JOBS)])
secret_ids = _completer(lambda api: [str(k) for k in api.get(paths.SECRETS)["keys"]])
