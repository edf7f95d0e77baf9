"""Dependencies of the routers: the app state, the store, each area's services, writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from caravan.api.errors import ApiError
from caravan.api.state import AppState
from caravan.api.writes import Writes
from caravan.events.service import EventsService
from caravan.events.storage import StoredDocuments
from caravan.kube.client import KubeClient
from caravan.logs.service import LogsService
from caravan.settings.service import SettingsService
from caravan.store import Store


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.caravan
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_store(state: StateDep) -> Store:
    return state.store


def get_kube(state: StateDep) -> KubeClient:
    return state.kube


def get_writes(state: StateDep, request: Request) -> Writes:
    return Writes(state, request)


def _not_running(area: str) -> ApiError:
    return ApiError(503, f"the {area} service is not running")


def get_events(state: StateDep) -> EventsService:
    if state.events is None:
        raise _not_running("events")
    return state.events


def get_events_storage(state: StateDep) -> StoredDocuments:
    if state.events_storage is None:
        raise _not_running("events")
    return state.events_storage


def get_settings(state: StateDep) -> SettingsService:
    if state.settings is None:
        raise _not_running("settings")
    return state.settings


def get_logs(state: StateDep) -> LogsService:
    return state.logs


StoreDep = Annotated[Store, Depends(get_store)]
KubeDep = Annotated[KubeClient, Depends(get_kube)]
WritesDep = Annotated[Writes, Depends(get_writes)]
EventsDep = Annotated[EventsService, Depends(get_events)]
EventsStorageDep = Annotated[StoredDocuments, Depends(get_events_storage)]
SettingsDep = Annotated[SettingsService, Depends(get_settings)]
LogsDep = Annotated[LogsService, Depends(get_logs)]
