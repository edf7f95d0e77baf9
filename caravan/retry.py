"""Retry with exponential backoff, one way for every loop that waits out an outage.

`Backoff` is the delay sequence (doubling from `first` to `maximum`, with a little
jitter so replicas that failed together do not retry together); a loop that keeps its
own shape (an informer, a stream reader) holds one and calls `wait()` after a failure and
`reset()` after a success. `retrying` is the common case: run one attempt until it does
not raise a retryable error.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]


class Backoff:
    def __init__(
        self,
        first: float,
        maximum: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.1,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.first = first
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._sleep = sleep
        self.current = first
        self.failures = 0  # since the last success

    def next_delay(self) -> float:
        """The delay to wait now; the next one grows."""
        delay = self.current
        self.current = min(self.current * self.factor, self.maximum)
        self.failures += 1
        return delay * (1 + random.uniform(0, self.jitter))

    async def wait(self) -> float:
        """Sleeps the next delay; returns it."""
        delay = self.next_delay()
        await self.sleep(delay)
        return delay

    async def sleep(self, delay: float) -> None:
        await self._sleep(delay)

    def reset(self) -> None:
        self.current = self.first
        self.failures = 0


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff,
    *,
    what: str,
    log: logging.Logger,
    level: int = logging.INFO,
    attempts: int | None = None,
) -> T:
    """`attempt()` until it returns; each `retry_on` error is logged (`what` failed) and
    waited out. With `attempts`, the last error is raised after that many."""
    while True:
        try:
            return await attempt()
        except retry_on as exc:
            if attempts is not None and backoff.failures + 1 >= attempts:
                raise
            delay = backoff.next_delay()
            log.log(level, "%s: %s; retrying in %.2fs", what, exc, delay)
            await backoff.sleep(delay)
