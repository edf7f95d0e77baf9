"""Settings: the schema, the defaults, the current document, and storing a new one.

The document lives in the settings ConfigMap (key `settings.json`, the filled document);
the installation's schema in the settings-schema ConfigMap (key `schema.json`). Reads are
served from the settings service, which the store's watch keeps current (kubectl edits
included). Access is checked as the equivalent ConfigMap action on the settings
ConfigMap: `get` for every read, `update` for POST. The HTTP face of
caravan.services.settings.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from caravan.api.area import Area
from caravan.api.deps import SettingsDep, WritesDep, configmap_access
from caravan.api.errors import ApiError
from caravan.api.models import responses

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


CAN_READ = [Depends(configmap_access("get", lambda names: names.settings))]
CAN_WRITE = [Depends(configmap_access("update", lambda names: names.settings))]

router = APIRouter(tags=["settings"])


@router.get(
    "/v1/schemas/settings.json",
    dependencies=CAN_READ,
    response_model=dict[str, Any],
    responses=responses(),
    summary="The settings schema in force (JSON Schema 2020-12, with defaults)",
)
async def get_schema(settings: SettingsDep) -> dict[str, Any]:
    return settings.schema


@router.get(
    "/v1/settings/default",
    dependencies=CAN_READ,
    response_model=dict[str, Any],
    responses=responses(),
    summary="The document made of the schema's defaults",
)
async def get_default(settings: SettingsDep) -> dict[str, Any]:
    return settings.defaults()


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
async def get_settings(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(settings.document, headers={ERRORS_HEADER: str(settings.error_count)})


@router.get(
    "/v1/settings/errors",
    dependencies=CAN_READ,
    response_model=SettingsErrors,
    responses=responses(),
    summary="Why the stored settings or the installation's schema are not in force",
)
async def get_errors(settings: SettingsDep) -> dict[str, Any]:
    return settings.all_errors()


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
async def post_settings(request: Request, settings: SettingsDep, writes: WritesDep) -> JSONResponse:
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the body must be UTF-8 encoded JSON") from None
    await settings.post(writes, text)
    return JSONResponse(settings.document)


area = Area("settings", router)
