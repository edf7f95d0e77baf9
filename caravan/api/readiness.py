"""Whether this replica should receive traffic: what /readyz answers, and the ready file.

Ready: every informer synced without a standing error, and the process not stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib

from caravan.api.state import AppState


def not_ready(state: AppState) -> tuple[str, list[str]]:
    """("", []) when ready; else the error and its details."""
    if state.stopping.is_set():
        return "this replica is stopping", []
    pending = [f"{i.kind}: not synced" for i in state.informers if not i.synced.is_set()]
    errors = [f"{i.kind}: {i.last_error}" for i in state.informers if i.last_error]
    if pending or errors:
        return "not ready", [*pending, *errors]
    return "", []


async def keep_ready_file(state: AppState, path: pathlib.Path, every: float = 1.0) -> None:
    """The file exists exactly while the replica is ready (checked every second, and
    removed at once when stopping), for an exec readiness probe (`test -e`).

    An HTTP probe cannot tell replicas apart when they share one port (hostNetwork with
    SO_REUSEPORT): it reaches whichever process the kernel picks. The file is the pod's
    own (its /tmp)."""
    ready: bool | None = None
    try:
        while not state.stopping.is_set():
            now = not not_ready(state)[0]
            if now != ready:
                _mark(path, now)
                ready = now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await state.stopping.wait()
    finally:
        _mark(path, False)


def _mark(path: pathlib.Path, ready: bool) -> None:
    # A file in the pod's /tmp: microseconds, no need to leave the loop.
    if ready:
        path.touch()
    else:
        path.unlink(missing_ok=True)
