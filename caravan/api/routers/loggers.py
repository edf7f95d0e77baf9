"""Loggers: live log levels. Defaults in the loggers ConfigMap, overrides on each pod.

Task processes read both from files the operator mounts (see docs/loggers.md), so a
change here reaches running processes without a restart.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends
from pydantic import RootModel, StringConstraints

from caravan import labels
from caravan.api.area import Area
from caravan.api.auth import authorize
from caravan.api.deps import StateDep, StoreDep, WritesDep
from caravan.api.errors import ApiError
from caravan.api.ids import AllocId, LoggerId
from caravan.api.models import responses
from caravan.api.state import AppState
from caravan.api.writes import Writes
from caravan.kube.client import JSON, PODS
from caravan.kube.errors import NotFound
from caravan.loggers import levels
from caravan.loggers.levels import Level, StoredDocumentError
from caravan.loggers.template import DEFAULTS_KEY
from caravan.store.store import KIND_POD

router = APIRouter(prefix="/v1/log", tags=["loggers"])
CAN_READ_DEFAULTS = [Depends(authorize("get", "configmaps"))]
CAN_WRITE_DEFAULTS = [Depends(authorize("update", "configmaps"))]
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


def _defaults_text(state: AppState) -> str | None:
    return state.store.configmaps.get(state.config.configmaps.loggers, {}).get(DEFAULTS_KEY)


@router.get(
    "/defaults",
    dependencies=CAN_READ_DEFAULTS,
    response_model=LoggersDocument,
    responses=responses(),
    summary="The default logger configuration of every loggerID",
)
async def get_defaults(state: StateDep) -> dict[str, dict[str, str]]:
    return levels.parse_lenient(_defaults_text(state))


@router.post(
    "/defaults/{loggerID}",
    dependencies=CAN_WRITE_DEFAULTS,
    response_model=LoggerConfig,
    responses=responses(409),
    summary="Replace one loggerID's defaults (an empty object removes them)",
)
async def set_defaults(
    loggerID: LoggerId,
    body: ConfigBody,
    state: StateDep,
    writes: WritesDep,
) -> dict[str, str]:
    config = _checked(body)

    def update(current: str | None) -> str:
        try:
            raw = levels.parse_raw(current)
        except StoredDocumentError as exc:
            raise ApiError(
                409,
                f"ConfigMap {state.config.configmaps.loggers} key {DEFAULTS_KEY} is not a JSON"
                f" object ({exc}); fix it with kubectl before changing defaults",
            ) from exc
        return levels.dump(levels.with_config(raw, loggerID, config))

    await writes.configmap_key(state.config.configmaps.loggers, DEFAULTS_KEY, update)
    return config


# Overrides of one allocation -----------------------------------------------------------


async def _patch_overrides(
    writes: Writes, alloc: str, logger_id: str, config: dict[str, str] | None
) -> dict[str, dict[str, str]]:
    """Sets (or with None removes) one loggerID in the pod's overrides annotation.

    A merge patch with the resourceVersion read as precondition (the pod's spec is not
    ours to send back), so a writer in another process makes this one re-read instead of
    losing its change; writers in this process take turns per pod.
    """

    def patch_for(pod: JSON) -> JSON | None:
        current = _annotation(pod)
        try:
            raw = levels.parse_raw(current)
        except StoredDocumentError:
            # Only this pod reads it and it is unreadable anyway: start afresh.
            raw = {}
        if config is None:
            updated = levels.without_config(raw, logger_id)
        else:
            updated = levels.with_config(raw, logger_id, config)
        text = levels.dump(updated)
        if text == current:
            return None
        return {"metadata": {"annotations": {labels.LOGGERS_ANNOTATION: text}}}

    try:
        pod = await writes.patch(KIND_POD, PODS.item(writes.namespace, alloc), patch_for)
    except NotFound as exc:
        raise ApiError(404, f"no allocation {alloc!r}") from exc
    return levels.parse_lenient(_annotation(pod))


def _annotation(pod: JSON) -> str | None:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(labels.LOGGERS_ANNOTATION)
    return None if text is None else str(text)


def _known_allocation(state: AppState, alloc: str) -> None:
    if alloc not in state.store.pods:
        raise ApiError(404, f"no allocation {alloc!r}")


@router.get(
    "/allocs/{allocID}",
    dependencies=CAN_READ_POD,
    response_model=LoggersDocument,
    responses=responses(404),
    summary="The allocation's own overrides; {} means it uses the defaults",
)
async def get_overrides(
    allocID: AllocId,
    store: StoreDep,
) -> dict[str, dict[str, str]]:
    pod = store.pods.get(allocID)
    if pod is None:
        raise ApiError(404, f"no allocation {allocID!r}")
    return levels.parse_lenient(pod.loggers)


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
    state: StateDep,
    writes: WritesDep,
) -> dict[str, dict[str, str]]:
    config = _checked(body)
    _known_allocation(state, allocID)
    return await _patch_overrides(writes, allocID, loggerID, config)


@router.delete(
    "/allocs/{allocID}/{loggerID}",
    dependencies=CAN_PATCH_POD,
    response_model=LoggersDocument,
    responses=responses(404, 409),
    summary="Drop one loggerID's overrides: the allocation uses the defaults again",
)
async def delete_overrides(
    allocID: AllocId,
    loggerID: LoggerId,
    state: StateDep,
    writes: WritesDep,
) -> dict[str, dict[str, str]]:
    _known_allocation(state, allocID)
    return await _patch_overrides(writes, allocID, loggerID, None)


area = Area("loggers", router)
