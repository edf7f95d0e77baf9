"""A version counter that long-poll requests can wait on."""

from __future__ import annotations

import asyncio


class VersionWaiters:
    """A positive index that grows on each change, with waiters woken together.

    One asyncio.Event per version: bumping sets it and starts a fresh one, so any number
    of waiters cost one wake-up each and nothing per waiter on the bump path.
    """

    def __init__(self) -> None:
        self.index = 1  # never 0: blocking-query clients treat 0 as "no index"
        self._changed = asyncio.Event()
        self.waiting = 0
        self.closed = False

    def close(self) -> None:
        """The process is stopping: every waiter returns now, and every later wait at once
        (the client gets the current view and asks again, reaching another replica)."""
        self.closed = True
        self._changed.set()

    def bump(self) -> None:
        self.index += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_beyond(self, index: int, timeout: float) -> int:
        """Returns once the index differs from `index` or after `timeout` seconds.

        An index ahead of ours (a client of a previous process) is answered at once.
        """
        if index != self.index or self.closed:
            return self.index
        changed = self._changed
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await changed.wait()
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1
        return self.index
