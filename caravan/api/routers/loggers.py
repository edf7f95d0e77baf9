"""Loggers: live log levels. Defaults in the loggers ConfigMap, overrides on each pod.

Task processes read both from files the operator mounts (see docs/loggers.md), so a
change here reaches running processes without a restart. The HTTP face of
caravan.services.loggers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends
from pydantic import RootModel, StringConstraints

from caravan.api.area import Area
from caravan.api.auth import authorize
from caravan.api.deps import LoggersDep, WritesDep, configmap_access
from caravan.api.errors import ApiError
from caravan.api.ids import AllocId, LoggerId
from caravan.api.models import responses
from caravan.loggers import levels
from caravan.loggers.levels import Level

router = APIRouter(prefix="/v1/log", tags=["loggers"])
CAN_READ_DEFAULTS = [Depends(configmap_access("get", lambda names: names.loggers))]
CAN_WRITE_DEFAULTS = [Depends(configmap_access("update", lambda names: names.loggers))]
CAN_READ_POD = [Depends(authorize("get", "pods"))]
CAN_PATCH_POD = [Depends(authorize("patch", "pods"))]


LoggerName = Annotated[str, StringConstraints(min_length=1)]


class LoggerConfig(RootModel[dict[LoggerName, Level]]):
    """`{"<logger>": "<level>"}`; levels: debug, info, warning, error, fatal, panic."""


class LoggersDocument(RootModel[dict[str, dict[LoggerName, Level]]]):
    """`{"<loggerID>": {"<logger>": "<level>"}}`."""


ConfigBody = Annotated[LoggerConfig, Body(openapi_examples={"leaf": {"value": {"leaf": "info"}}})]


def _checked(body: LoggerConfig) -> dict[str, str]:
    config: dict[str, str] = dict(body.root)
    problems = levels.config_problems(config)  # pydantic checked levels; this, names
    if problems:
        raise ApiError(400, "invalid logger configuration", problems)
    return config


# Defaults ------------------------------------------------------------------------------


@router.get(
    "/defaults",
    dependencies=CAN_READ_DEFAULTS,
    response_model=LoggersDocument,
    responses=responses(),
    summary="The default logger configuration of every loggerID",
)
async def get_defaults(loggers: LoggersDep) -> dict[str, dict[str, str]]:
    return loggers.defaults()


@router.post(
    "/defaults/{loggerID}",
    dependencies=CAN_WRITE_DEFAULTS,
    response_model=LoggerConfig,
    responses=responses(409),
    summary="Replace one loggerID's defaults (an empty object removes them)",
)
async def set_defaults(
    loggerID: LoggerId, body: ConfigBody, loggers: LoggersDep, writes: WritesDep
) -> dict[str, str]:
    config = _checked(body)
    await loggers.set_defaults(writes, loggerID, config)
    return config


# Overrides of one allocation -----------------------------------------------------------


@router.get(
    "/allocs/{allocID}",
    dependencies=CAN_READ_POD,
    response_model=LoggersDocument,
    responses=responses(404),
    summary="The allocation's own overrides; {} means it uses the defaults",
)
async def get_overrides(allocID: AllocId, loggers: LoggersDep) -> dict[str, dict[str, str]]:
    return loggers.overrides(allocID)


@router.post(
    "/allocs/{allocID}/{loggerID}",
    dependencies=CAN_PATCH_POD,
    response_model=LoggersDocument,
    responses=responses(404, 409),
    summary="Override one loggerID's levels for one allocation; answers all its overrides",
)
async def set_overrides(
    allocID: AllocId,
    loggerID: LoggerId,
    body: ConfigBody,
    loggers: LoggersDep,
    writes: WritesDep,
) -> dict[str, dict[str, str]]:
    config = _checked(body)
    return await loggers.set_overrides(writes, allocID, loggerID, config)


@router.delete(
    "/allocs/{allocID}/{loggerID}",
    dependencies=CAN_PATCH_POD,
    response_model=LoggersDocument,
    responses=responses(404, 409),
    summary="Drop one loggerID's overrides: the allocation uses the defaults again",
)
async def delete_overrides(
    allocID: AllocId, loggerID: LoggerId, loggers: LoggersDep, writes: WritesDep
) -> dict[str, dict[str, str]]:
    return await loggers.set_overrides(writes, allocID, loggerID, None)


area = Area("loggers", router)
