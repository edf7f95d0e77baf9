"""Dependencies of the routers: the app state, each area's service, writes, access.

Every dependency is a coroutine function, though none awaits anything: FastAPI runs a
plain function in a worker thread, a thread hop (and a wait for the GIL, which the
operator's thread may hold) per dependency per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from caravan.api.auth import Caller, check_access
from caravan.api.errors import ApiError
from caravan.api.state import AppState
from caravan.api.writes import request_writes
from caravan.config import ConfigMapNames
from caravan.services.activity import JobActivity
from caravan.services.events import Events
from caravan.services.jobs import Jobs
from caravan.services.jobsdefs import JobDefinitions
from caravan.services.loggers import Loggers
from caravan.services.logs import Logs
from caravan.services.restart import Restarts
from caravan.services.secrets import Secrets
from caravan.services.settings import Settings
from caravan.services.versions import JobVersions
from caravan.services.wiring import Services
from caravan.services.writes import Writes
from caravan.store import Store


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.caravan
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_store(state: StateDep) -> Store:
    return state.store


async def get_writes(state: StateDep, request: Request) -> Writes:
    return request_writes(state, request)


def services_of(state: AppState) -> Services:
    if state.services is None:
        raise ApiError(503, "the services are not running yet")
    return state.services


async def get_events(state: StateDep) -> Events:
    return services_of(state).events


async def get_settings(state: StateDep) -> Settings:
    return services_of(state).settings


async def get_jobs(state: StateDep) -> Jobs:
    return services_of(state).jobs


async def get_activity(state: StateDep) -> JobActivity:
    return services_of(state).activity


async def get_restarts(state: StateDep) -> Restarts:
    return services_of(state).restarts


async def caller_name(request: Request) -> str | None:
    """The caller's username once access control named them (None with auth off): the
    Events Caravan records say who asked."""
    caller = getattr(request.state, "caller", None)
    return caller.username if isinstance(caller, Caller) else None


async def get_versions(state: StateDep) -> JobVersions:
    return services_of(state).versions


async def get_definitions(state: StateDep) -> JobDefinitions:
    return services_of(state).definitions


async def get_logs(state: StateDep) -> Logs:
    return services_of(state).logs


async def get_loggers(state: StateDep) -> Loggers:
    return services_of(state).loggers


async def get_secrets(state: StateDep) -> Secrets:
    return services_of(state).secrets


def configmap_access(
    verb: str, which: Callable[[ConfigMapNames], str]
) -> Callable[[Request], Awaitable[Caller]]:
    """A route dependency: the caller may `verb` the ConfigMap that `which` names (one of
    this installation's), so a role can be granted one ConfigMap and not the others."""

    async def dependency(request: Request) -> Caller:
        state: AppState = request.app.state.caravan
        name = which(state.config.configmaps)
        return await check_access(request, verb, "configmaps", name=name)

    return dependency


StoreDep = Annotated[Store, Depends(get_store)]
WritesDep = Annotated[Writes, Depends(get_writes)]
EventsDep = Annotated[Events, Depends(get_events)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[Jobs, Depends(get_jobs)]
DefinitionsDep = Annotated[JobDefinitions, Depends(get_definitions)]
VersionsDep = Annotated[JobVersions, Depends(get_versions)]
LogsDep = Annotated[Logs, Depends(get_logs)]
LoggersDep = Annotated[Loggers, Depends(get_loggers)]
SecretsDep = Annotated[Secrets, Depends(get_secrets)]
ActivityDep = Annotated[JobActivity, Depends(get_activity)]
RestartsDep = Annotated[Restarts, Depends(get_restarts)]
CallerNameDep = Annotated[str | None, Depends(caller_name)]
