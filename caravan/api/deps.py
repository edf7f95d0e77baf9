"""Dependencies shared by the routers: the app state, the store, the namespace."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from caravan.api.state import AppState
from caravan.kube.client import KubeClient
from caravan.store import Store


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.caravan
    return state


def get_store(state: Annotated[AppState, Depends(get_state)]) -> Store:
    return state.store


def get_kube(state: Annotated[AppState, Depends(get_state)]) -> KubeClient:
    return state.kube


StateDep = Annotated[AppState, Depends(get_state)]
StoreDep = Annotated[Store, Depends(get_store)]
KubeDep = Annotated[KubeClient, Depends(get_kube)]
