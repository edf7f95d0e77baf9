"""Settings: the schema, the defaults, the current document, and storing a new one.

The document lives in the settings ConfigMap (key `settings.json`, the filled document);
the installation's schema in the settings-schema ConfigMap (key `schema.json`). Reads are
served from the settings service, which the store's watch keeps current (kubectl edits
included). Access is checked as the equivalent ConfigMap action on the settings
ConfigMap: `get` for every read, `update` for POST.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from caravan.api.area import Area
from caravan.api.auth import Caller, check_access
from caravan.api.deps import SettingsDep, WritesDep
from caravan.api.errors import ApiError
from caravan.api.models import responses
from caravan.api.state import AppState
from caravan.kube.client import CONFIGMAPS, KubeError
from caravan.kube.configmaps import write_configmap_key
from caravan.settings import defaults_from_schema
from caravan.settings.service import (
    SCHEMA_KEY,
    SETTINGS_KEY,
    SettingsService,
    schema_from_text,
    serialize,
)

log = logging.getLogger(__name__)

ERRORS_HEADER = "X-Caravan-Settings-Errors"

_DOCUMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A settings document (see GET /v1/schemas/settings.json).",
    "additionalProperties": True,
}


class SettingsErrorItem(BaseModel):
    path: str = Field(description="JSON path of the offending value, e.g. $.jobs.longPoll")
    message: str


class SettingsInvalid(BaseModel):
    error: str
    details: list[SettingsErrorItem]


class SettingsErrors(BaseModel):
    settings: list[SettingsErrorItem] = Field(
        description="Why the stored text (e.g. after a kubectl edit) is not in force; "
        "empty when the stored document is the one in force."
    )
    schema_: list[str] = Field(
        alias="schema",
        description="Why the installation's schema was refused (Caravan's own is then used).",
    )


def _access(verb: str) -> Callable[[Request], Awaitable[Caller]]:
    async def dependency(request: Request) -> Caller:
        state: AppState = request.app.state.caravan
        name = state.config.configmaps.settings
        return await check_access(request, verb, "configmaps", name=name)

    return dependency


CAN_READ = [Depends(_access("get"))]
CAN_WRITE = [Depends(_access("update"))]

router = APIRouter(tags=["settings"])


@router.get(
    "/v1/schemas/settings.json",
    dependencies=CAN_READ,
    response_model=dict[str, Any],
    responses=responses(),
    summary="The settings schema in force (JSON Schema 2020-12, with defaults)",
)
async def get_schema(service: SettingsDep) -> dict[str, Any]:
    return service.schema


@router.get(
    "/v1/settings/default",
    dependencies=CAN_READ,
    response_model=dict[str, Any],
    responses=responses(),
    summary="The document made of the schema's defaults",
)
async def get_default(service: SettingsDep) -> dict[str, Any]:
    return service.defaults()


@router.get(
    "/v1/settings",
    dependencies=CAN_READ,
    response_model=dict[str, Any],
    responses={
        200: {
            "description": "The settings document in force, defaults filled in",
            "headers": {
                ERRORS_HEADER: {
                    "description": "How many problems GET /v1/settings/errors lists",
                    "schema": {"type": "integer"},
                }
            },
        },
        **responses(),
    },
    summary="The current settings document",
)
async def get_settings(service: SettingsDep) -> JSONResponse:
    return JSONResponse(service.document, headers={ERRORS_HEADER: str(service.error_count)})


@router.get(
    "/v1/settings/errors",
    dependencies=CAN_READ,
    response_model=SettingsErrors,
    responses=responses(),
    summary="Why the stored settings or the installation's schema are not in force",
)
async def get_errors(service: SettingsDep) -> dict[str, Any]:
    return service.all_errors()


@router.post(
    "/v1/settings",
    dependencies=CAN_WRITE,
    response_model=dict[str, Any],
    responses={
        200: {"description": "Stored; the stored (filled) document"},
        **responses(),
        422: {"model": SettingsInvalid, "description": "Invalid against the schema"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _DOCUMENT_SCHEMA}},
        }
    },
    summary="Fill missing values from the defaults, validate, store",
)
async def post_settings(request: Request, service: SettingsDep, writes: WritesDep) -> JSONResponse:
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the body must be UTF-8 encoded JSON") from None
    checked = service.check(text)
    if checked.document is None:
        details = [e.to_dict() for e in checked.errors]
        if checked.malformed:
            raise ApiError(400, f"malformed settings document: {details[0]['message']}", details)
        count = len(details)
        raise ApiError(
            422,
            f"the settings document is invalid ({count} error{'s' if count != 1 else ''})",
            details,
        )
    stored = serialize(checked.document)
    await writes.configmap_key(service.settings_configmap, SETTINGS_KEY, stored)
    # In force at once (the watch will deliver the same text again, a no-op).
    service.set_settings_text(stored)
    return JSONResponse(service.document)


async def start(state: AppState) -> None:
    names = state.config.configmaps

    def set_runtime(runtime: Any) -> None:
        state.set_runtime_settings(runtime)

    refills: set[asyncio.Task[None]] = set()

    def refill(seen: str, filled: str) -> None:
        try:
            task = asyncio.get_running_loop().create_task(_refill(state, seen, filled))
        except RuntimeError:
            return  # No loop: nothing can be written anyway.
        refills.add(task)  # A reference, or the task may be collected mid-flight.
        task.add_done_callback(refills.discard)

    service = SettingsService(
        names.settings, names.settings_schema, on_runtime=set_runtime, on_refill=refill
    )
    state.settings = service
    state.set_runtime_settings(service.runtime)
    state.store.on_configmap(service.on_configmap)
    # The watch may already have delivered them before we listened.
    for name in (names.settings_schema, names.settings):
        if name in state.store.configmaps:
            service.on_configmap(name, state.store.configmaps[name])
    await _store_defaults_if_missing(state)


async def _refill(state: AppState, seen: str, filled: str) -> None:
    """Stores the filled document in place of `seen`, unless the text changed meanwhile."""
    try:
        await write_configmap_key(
            state.kube,
            state.config.namespace,
            state.config.configmaps.settings,
            SETTINGS_KEY,
            lambda current: filled if current == seen else (current or ""),
        )
    except KubeError as exc:
        log.warning("could not store the filled settings document: %s", exc)


async def _store_defaults_if_missing(state: AppState) -> None:
    """Writes the defaults document when nothing is stored yet, so that the file task pods
    mount is complete from the start. An existing text, even an invalid one, is kept."""
    names, namespace = state.config.configmaps, state.config.namespace
    try:
        schema_text: str | None = None
        with contextlib.suppress(KubeError):
            found = await state.kube.get(CONFIGMAPS.item(namespace, names.settings_schema))
            schema_text = (found.get("data") or {}).get(SCHEMA_KEY)
        schema, _ = schema_from_text(schema_text)
        defaults = serialize(defaults_from_schema(schema))
        await write_configmap_key(
            state.kube,
            namespace,
            names.settings,
            SETTINGS_KEY,
            lambda current: current if current and current.strip() else defaults,
        )
    except KubeError as exc:
        log.warning("could not store the default settings in ConfigMap %s: %s", names.settings, exc)


area = Area("settings", router, on_start=start)
