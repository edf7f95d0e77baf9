"""Secrets: Kubernetes Secrets labelled `app.kubernetes.io/managed-by=caravan`, by name.

Served under `/v1/secrets` and, as the seed writes them, `/secrets`. The HTTP face of
caravan.services.secrets: a Secret Caravan does not manage is never listed, read (404),
overwritten or deleted (409), and values never reach a log line or an error message.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from caravan.api.area import Area
from caravan.api.auth import authorize, check_access
from caravan.api.deps import SecretsDep, WritesDep
from caravan.api.errors import ApiError
from caravan.api.ids import SecretId
from caravan.api.models import responses
from caravan.secrets import MAX_SECRET_BYTES, parse_secret_body

# Header naming keys of a managed Secret whose bytes are not UTF-8 text (left out of GET).
OMITTED_KEYS_HEADER = "X-Caravan-Omitted-Keys"
# JSON escapes make a body at most 6 bytes per stored byte; refuse more before parsing.
MAX_BODY_BYTES = 6 * MAX_SECRET_BYTES + 1024

_SECRET_MAP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    # validate_secret_key's rules: not ".", "..", nor starting with "..".
    "propertyNames": {
        "pattern": r"^(\.[-_a-zA-Z0-9]|[-_a-zA-Z0-9])[-._a-zA-Z0-9]*$",
        "maxLength": 253,
    },
    "description": "Flat map of key to string value. Keys: letters, digits, '-', '_', '.'.",
    "example": {"GENVID_COMMAND_SECRET": "anothersecret", "akey": "avalue"},
}


class SecretList(BaseModel):
    keys: list[str] = Field(description="Ids of the secrets Caravan manages, sorted.")


secrets_router = APIRouter()


@secrets_router.get(
    "/list",
    dependencies=[Depends(authorize("list", "secrets"))],
    response_model=SecretList,
    responses=responses(),
    summary="Ids of the secrets Caravan manages, sorted",
)
async def list_secrets(secrets: SecretsDep) -> dict[str, list[str]]:
    return {"keys": secrets.names()}


@secrets_router.get(
    "/secret/{secret_id}",
    response_model=dict[str, str],
    responses={
        200: {
            "description": "The secret's flat string map",
            "headers": {
                OMITTED_KEYS_HEADER: {
                    "description": "Keys left out because their bytes are not UTF-8 text",
                    "schema": {"type": "string"},
                }
            },
        },
        **responses(404),
    },
    summary="A secret's key/value map",
)
async def get_secret(secret_id: SecretId, request: Request, secrets: SecretsDep) -> Response:
    await check_access(request, "get", "secrets", name=secret_id)
    values, binary = await secrets.read(secret_id)
    headers = {OMITTED_KEYS_HEADER: ",".join(binary)} if binary else None
    return JSONResponse(values, headers=headers)


@secrets_router.post(
    "/secret/{secret_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Stored"}, **responses(409)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _SECRET_MAP_SCHEMA}},
        }
    },
    summary="Create a secret, or replace its whole map (needs both create and update)",
)
async def post_secret(
    secret_id: SecretId, request: Request, secrets: SecretsDep, writes: WritesDep
) -> Response:
    # Both rights, asked before anything is read: the answer must not tell a caller who
    # may create but not update (or the reverse) whether the Secret exists.
    await check_access(request, "create", "secrets")
    await check_access(request, "update", "secrets", name=secret_id)
    await secrets.store(writes, secret_id, await _body(request))
    return Response(status_code=204)


async def _body(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(400, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return parse_secret_body(raw)


@secrets_router.delete(
    "/secret/{secret_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **responses(404, 409)},
    summary="Delete a secret",
)
async def delete_secret(
    secret_id: SecretId, request: Request, secrets: SecretsDep, writes: WritesDep
) -> Response:
    await check_access(request, "delete", "secrets", name=secret_id)
    await secrets.delete(writes, secret_id)
    return Response(status_code=204)


router = APIRouter()
router.include_router(secrets_router, prefix="/v1/secrets", tags=["secrets"])
# The seed's paths (no /v1); the same operations, listed under their own tag.
router.include_router(secrets_router, prefix="/secrets", tags=["secrets (seed paths)"])

area = Area("secrets", router)
