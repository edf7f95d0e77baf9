"""Secrets: Kubernetes Secrets labelled `app.kubernetes.io/managed-by=caravan`, by name.

Served under `/v1/secrets` and, as the seed writes them, `/secrets`. A Secret of the same
name that Caravan does not manage is never listed, read (404), overwritten or deleted
(409). Values are read from kube-apiserver on demand (the store keeps names only) and
never reach a log line or an error message: messages name ids and keys, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from caravan.api.area import Area
from caravan.api.auth import authorize, check_access
from caravan.api.deps import StateDep, StoreDep
from caravan.api.errors import ApiError, kube_error_status
from caravan.api.models import responses
from caravan.kube.client import JSON, SECRETS, KubeClient, KubeError
from caravan.secrets import (
    SecretInputError,
    decode_secret_data,
    is_managed,
    managed_secret,
    parse_secret_body,
    validate_secret_id,
)
from caravan.secrets.model import MAX_SECRET_BYTES, quote
from caravan.store import Store

log = logging.getLogger(__name__)

# Header naming keys of a managed Secret whose bytes are not UTF-8 text (left out of GET).
OMITTED_KEYS_HEADER = "X-Caravan-Omitted-Keys"
# How long a write waits for the watch to show it, so a following list sees it.
LIST_CATCH_UP_SECONDS = 2.0
# Writes retried when the Secret changes between our read and our write.
WRITE_ATTEMPTS = 5
# JSON escapes make a body at most 6 bytes per stored byte; refuse more before parsing.
MAX_BODY_BYTES = 6 * MAX_SECRET_BYTES + 1024

_SECRET_MAP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string"},
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
    fields: list[str] = []
    if isinstance(exc.body, dict):
        causes = (exc.body.get("details") or {}).get("causes") or []
        fields = [str(c.get("field")) for c in causes if isinstance(c, dict) and c.get("field")]
    log.warning("kubernetes refused an operation on secret %s: %s", secret_id, exc)
    where = f" (fields: {', '.join(fields)})" if fields else ""
    return ApiError(
        kube_error_status(exc),
        f"kubernetes refused the operation on secret {quote(secret_id)}: {exc.reason}{where}",
    )


async def _read(kube: KubeClient, path: str, secret_id: str) -> JSON | None:
    try:
        return await kube.get(path)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise _kube_failure(exc, secret_id) from None


async def _until_listed(store: Store, secret_id: str, present: bool) -> None:
    """Lets the watch catch up, so that a list right after a write shows the write."""
    # The store has no per-Secret signal to wait on; a short poll is cheap and bounded.
    deadline = time.monotonic() + LIST_CATCH_UP_SECONDS
    for _ in range(int(LIST_CATCH_UP_SECONDS / 0.01)):
        if (secret_id in store.secret_names) == present or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.01)


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
async def get_secret(secret_id: str, request: Request, state: StateDep) -> Response:
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
    secret_id: str, request: Request, state: StateDep, store: StoreDep
) -> Response:
    _checked_id(secret_id)
    namespace = state.config.namespace
    path = SECRETS.item(namespace, secret_id)
    values: dict[str, str] | None = None
    for _ in range(WRITE_ATTEMPTS):
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
                await state.kube.create(
                    SECRETS.collection(namespace), managed_secret(secret_id, values)
                )
            else:
                await state.kube.replace(path, managed_secret(secret_id, values, existing))
        except KubeError as exc:
            if exc.status == 409:
                continue  # Created or changed meanwhile: read again and decide again.
            raise _kube_failure(exc, secret_id) from None
        log.info("stored secret %s (%d keys)", secret_id, len(values))
        await _until_listed(store, secret_id, present=True)
        return Response(status_code=204)
    raise ApiError(409, f"secret {quote(secret_id)} kept changing; try again")


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
    secret_id: str, request: Request, state: StateDep, store: StoreDep
) -> Response:
    await check_access(request, "delete", "secrets", name=secret_id)
    _checked_id(secret_id)
    path = SECRETS.item(state.config.namespace, secret_id)
    for _ in range(WRITE_ATTEMPTS):
        existing = await _read(state.kube, path, secret_id)
        if existing is None:
            raise _not_found(secret_id)
        if not is_managed(existing):
            raise _not_ours(secret_id)
        metadata = existing.get("metadata") or {}
        # Delete exactly what we looked at: if someone relabelled or replaced it meanwhile,
        # the precondition fails and we look again.
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
        }
        try:
            await state.kube.request("DELETE", path, body=options, content_type="application/json")
        except KubeError as exc:
            if exc.status == 404:
                raise _not_found(secret_id) from None
            if exc.status == 409:
                continue
            raise _kube_failure(exc, secret_id) from None
        log.info("deleted secret %s", secret_id)
        await _until_listed(store, secret_id, present=False)
        return Response(status_code=204)
    raise ApiError(409, f"secret {quote(secret_id)} kept changing; try again")


router = APIRouter()
router.include_router(secrets_router, prefix="/v1/secrets", tags=["secrets"])
# The seed's paths (no /v1); the same operations, listed under their own tag.
router.include_router(secrets_router, prefix="/secrets", tags=["secrets (seed paths)"])

area = Area("secrets", router)
