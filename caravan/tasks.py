"""Stopping asyncio tasks for certain.

On Python 3.11, ``asyncio.wait_for`` loses a cancellation that arrives as its awaitable
completes (CPython gh-86296, fixed in 3.12): the task gets the result and runs on. nats-py
and others call ``wait_for`` inside loops that run until cancelled, so one ``cancel()``
then a ``gather`` can wait forever. Every stop in Caravan goes through
:func:`cancel_and_wait`, which cancels again until the tasks are done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

# How long one cancellation is given before it is repeated: a loop that lost one comes
# back to an await within its own period (a fetch, a sleep) and gets the next.
RECANCEL_EVERY_S = 0.25


async def cancel_and_wait(
    tasks: Iterable[asyncio.Future[Any] | None], *, timeout: float | None = None
) -> set[asyncio.Future[Any]]:
    """Cancels ``tasks`` and waits until they are done, cancelling again those that
    swallowed it. Returns those still running after ``timeout`` (never with None).
    The tasks' results and exceptions are retrieved, so none is reported as lost."""
    given = [t for t in tasks if t is not None]
    pending = {t for t in given if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    rounds = 0
    while pending:
        for task in pending:
            task.cancel()
        wait = RECANCEL_EVERY_S
        if deadline is not None:
            wait = min(wait, deadline - loop.time())
            if wait <= 0:
                break
        _, pending = await asyncio.wait(pending, timeout=wait)
        rounds += 1
        if rounds == 4:  # about a second: worth a line when it happens
            log.info("still stopping %s", ", ".join(_name(t) for t in pending))
    for task in given:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a failure during the stop is not "never retrieved"
    if pending:
        log.warning("did not stop in %.1f s: %s", timeout, ", ".join(_name(t) for t in pending))
    return pending


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
