"""Secrets: Kubernetes Secrets labelled `app.kubernetes.io/managed-by=caravan`, by name.

Served under `/v1/secrets` and, as the seed writes them, `/secrets`. A Secret of the same
name that Caravan does not manage is never listed, read (404), overwritten or deleted
(409). Values are read from kube-apiserver on demand (the store keeps names only) and
never reach a log line or an error message: messages name ids and keys, nothing more.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from caravan.api.area import Area
from caravan.api.auth import authorize, check_access
from caravan.api.deps import StateDep, StoreDep, WritesDep
from caravan.api.errors import ApiError, kube_error_status
from caravan.api.ids import SecretId
from caravan.api.models import responses
from caravan.kube.client import JSON, SECRETS, KubeClient
from caravan.kube.errors import Conflict, KubeError, NotFound
from caravan.secrets import (
    SecretInputError,
    decode_secret_data,
    is_managed,
    managed_secret,
    parse_secret_body,
    validate_secret_id,
)
from caravan.secrets.model import MAX_SECRET_BYTES, quote
from caravan.store.store import KIND_SECRET

log = logging.getLogger(__name__)

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


def _not_found(secret_id: str) -> ApiError:
    # The same answer for "absent" and "not Caravan's": reads never reveal foreign Secrets.
    return ApiError(404, f"no secret {quote(secret_id)}")


def _not_ours(secret_id: str) -> ApiError:
    return ApiError(
        409,
        f"a Secret named {quote(secret_id)} exists but is not managed by Caravan"
        " (no label app.kubernetes.io/managed-by=caravan); Caravan leaves it alone",
    )


def _checked_id(secret_id: str) -> str:
    problem = validate_secret_id(secret_id)
    if problem is not None:
        raise ApiError(400, f"invalid secret id {quote(secret_id)}: {problem}")
    return secret_id


def _kube_failure(exc: KubeError, secret_id: str) -> ApiError:
    """A Kubernetes refusal, told without its message (which could quote what we sent)."""
    fields = [str(c["field"]) for c in exc.causes if c.get("field")]
    log.warning("kubernetes refused an operation on secret %s: %s", secret_id, exc)
    where = f" (fields: {', '.join(fields)})" if fields else ""
    return ApiError(
        kube_error_status(exc),
        f"kubernetes refused the operation on secret {quote(secret_id)}: {exc.reason}{where}",
    )


async def _read(kube: KubeClient, path: str, secret_id: str) -> JSON | None:
    try:
        return await kube.get(path)
    except NotFound:
        return None
    except KubeError as exc:
        raise _kube_failure(exc, secret_id) from None


def _kept_changing(secret_id: str) -> ApiError:
    return ApiError(409, f"secret {quote(secret_id)} kept changing; try again")


@secrets_router.get(
    "/list",
    dependencies=[Depends(authorize("list", "secrets"))],
    response_model=SecretList,
    responses=responses(),
    summary="Ids of the secrets Caravan manages, sorted",
)
async def list_secrets(store: StoreDep) -> dict[str, list[str]]:
    return {"keys": sorted(store.secret_names)}


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
async def get_secret(secret_id: SecretId, request: Request, state: StateDep) -> Response:
    await check_access(request, "get", "secrets", name=secret_id)
    _checked_id(secret_id)
    secret = await _read(state.kube, SECRETS.item(state.config.namespace, secret_id), secret_id)
    if secret is None or not is_managed(secret):
        raise _not_found(secret_id)
    values, binary = decode_secret_data(secret.get("data"))
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
    summary="Create a secret, or replace its whole map",
)
async def post_secret(
    secret_id: SecretId, request: Request, state: StateDep, writes: WritesDep
) -> Response:
    _checked_id(secret_id)
    namespace = state.config.namespace
    path = SECRETS.item(namespace, secret_id)
    values: dict[str, str] | None = None

    async def attempt() -> JSON:
        nonlocal values
        existing = await _read(state.kube, path, secret_id)
        # Creating and updating are distinct rights in RBAC; ask for the one we will use.
        if existing is None:
            await check_access(request, "create", "secrets")
        else:
            await check_access(request, "update", "secrets", name=secret_id)
        if values is None:
            values = await _body(request)
        if existing is not None and not is_managed(existing):
            raise _not_ours(secret_id)
        try:
            if existing is None:
                return await state.kube.create(
                    SECRETS.collection(namespace), managed_secret(secret_id, values)
                )
            return await state.kube.replace(path, managed_secret(secret_id, values, existing))
        except Conflict:
            raise  # Created or changed meanwhile: read again and decide again.
        except KubeError as exc:
            raise _kube_failure(exc, secret_id) from None

    try:
        await writes.attempt(KIND_SECRET, path, attempt)
    except Conflict:
        raise _kept_changing(secret_id) from None
    log.info("stored secret %s (%d keys)", secret_id, len(values or {}))
    return Response(status_code=204)


async def _body(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(400, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return parse_secret_body(raw)
    except SecretInputError as exc:
        raise ApiError(400, exc.message, list(exc.details)) from None


@secrets_router.delete(
    "/secret/{secret_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **responses(404, 409)},
    summary="Delete a secret",
)
async def delete_secret(
    secret_id: SecretId, request: Request, state: StateDep, writes: WritesDep
) -> Response:
    await check_access(request, "delete", "secrets", name=secret_id)
    _checked_id(secret_id)

    def check(existing: JSON) -> None:
        if not is_managed(existing):
            raise _not_ours(secret_id)

    # Delete exactly what was checked: if someone relabelled or replaced it meanwhile,
    # the precondition fails and it is looked at again.
    try:
        await writes.delete(KIND_SECRET, SECRETS.item(state.config.namespace, secret_id), check)
    except NotFound:
        raise _not_found(secret_id) from None
    except Conflict:
        raise _kept_changing(secret_id) from None
    except KubeError as exc:
        raise _kube_failure(exc, secret_id) from None
    log.info("deleted secret %s", secret_id)
    return Response(status_code=204)


router = APIRouter()
router.include_router(secrets_router, prefix="/v1/secrets", tags=["secrets"])
# The seed's paths (no /v1); the same operations, listed under their own tag.
router.include_router(secrets_router, prefix="/secrets", tags=["secrets (seed paths)"])

area = Area("secrets", router)
