"""Following a task's log through Caravan's API while a test acts on the process."""

from __future__ import annotations

import asyncio
import contextlib
import re
from types import TracebackType

import httpx


class FollowedLog:
    """`GET /v1/log/fs/{alloc}/{task}/{fs}?follow=true` read in the background."""

    def __init__(self, api: httpx.AsyncClient, alloc: str, task: str, fs: str) -> None:
        self.api = api
        self.path = f"/v1/log/fs/{alloc}/{task}/{fs}"
        self.text = ""
        self.stream_header: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._grew = asyncio.Event()

    async def __aenter__(self) -> FollowedLog:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        params = {"follow": "true"}
        async with self.api.stream("GET", self.path, params=params, timeout=None) as response:
            assert response.status_code == 200, await response.aread()
            self.stream_header = response.headers.get("x-caravan-log-stream")
            async for chunk in response.aiter_text():
                self.text += chunk
                self._grew.set()

    async def wait_for(self, pattern: str, start: int = 0, timeout: float = 60) -> re.Match[str]:
        """The first match of `pattern` at or after position `start` of the text."""
        regex = re.compile(pattern, re.MULTILINE)

        async def search() -> re.Match[str]:
            while True:
                found = regex.search(self.text, start)
                if found:
                    return found
                assert self._task is not None
                if self._task.done():
                    self._task.result()  # raises what stopped the read
                    raise AssertionError(f"the log stream ended before {pattern!r}")
                self._grew.clear()
                await self._grew.wait()

        try:
            return await asyncio.wait_for(search(), timeout)
        except TimeoutError:
            tail = self.text[start:][-2000:]
            raise AssertionError(
                f"{pattern!r} not in {self.path} after {timeout}s; text:\n{tail}"
            ) from None
