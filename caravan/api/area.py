"""An area of the API: a router plus the services it starts and stops with the process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter

from caravan.api.state import AppState

Lifecycle = Callable[[AppState], Awaitable[None]]


async def _nothing(state: AppState) -> None:
    return None


@dataclass(frozen=True)
class Area:
    name: str
    router: APIRouter
    # Called once the informers run (they may not have synced yet), before serving.
    on_start: Lifecycle = _nothing
    # Called after the API server stopped, in reverse order of the areas.
    on_stop: Lifecycle = _nothing

    async def start(self, state: AppState) -> None:
        await self.on_start(state)

    async def stop(self, state: AppState) -> None:
        await self.on_stop(state)
