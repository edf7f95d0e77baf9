"""One error shape for every route: {"error": "<sentence>", "details": [...]}."""

from __future__ import annotations

import functools
import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from caravan.errors import (
    ClusterRefusal,
    ConflictError,
    DomainError,
    InvalidError,
    MalformedError,
    NotFoundError,
    UnavailableError,
)
from caravan.kube.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    Unavailable,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by routes; rendered as the API's error body."""

    def __init__(self, status: int, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []


# Each domain error's answer (caravan.errors); the most derived class listed wins.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    MalformedError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidError: 422,
    UnavailableError: 503,
}

# What a call to the cluster raises, for the few routes that tell it in their own words.
ClusterError = KubeError


def domain_status(exc: DomainError) -> int:
    if isinstance(exc, ClusterRefusal) and isinstance(exc.cause, KubeError):
        return kube_error_status(exc.cause)
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400


def error_body(message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": message, "details": details or []}


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_details(errors: list[Any]) -> list[dict[str, str]]:
    details = []
    for err in errors:
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            message = f"invalid JSON: {err.get('ctx', {}).get('error', message)}"
        details.append({"field": _location(err.get("loc", ())), "message": message})
    return details


# Seconds a client is told to wait before trying again when the cluster is away.
RETRY_AFTER_SECONDS = 1


def kube_error_status(exc: KubeError) -> int:
    """How a kube-apiserver failure reaches our client: never 500 or 502.

    The cluster unreachable or not ready (connection refused, timeouts, its own 503/429
    while starting) is 503; anything Kubernetes refuses keeps its meaning.
    """
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict | Gone):
        return 409
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Invalid):
        return exc.status
    if isinstance(exc, Unavailable) or not 400 <= exc.status < 500:
        return 503
    return 400


def retry_after(exc: KubeError | None = None) -> dict[str, str]:
    """The Retry-After header of a 503 (the cluster's own hint when it gave one)."""
    seconds = RETRY_AFTER_SECONDS
    if exc is not None and exc.retry_after:
        seconds = max(1, math.ceil(exc.retry_after))
    return {"Retry-After": str(seconds)}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = retry_after() if exc.status == 503 else None
        return JSONResponse(
            error_body(exc.message, exc.details), status_code=exc.status, headers=headers
        )

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        status = domain_status(exc)
        headers = retry_after() if status == 503 else None
        return JSONResponse(
            error_body(exc.message, exc.details), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return JSONResponse(error_body(f"malformed request: {summary}", details), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; a path served by
            # several routes (GET and POST, POST and DELETE) must list them all.
            allowed = _allowed_methods(request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return JSONResponse(
            error_body(str(exc.detail)), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(KubeError)
    async def _kube(_: Request, exc: KubeError) -> JSONResponse:
        status = kube_error_status(exc)
        log.warning("kubernetes call failed: %s", exc)
        headers = retry_after(exc) if status == 503 else None
        message = "the cluster is unreachable or not ready" if status == 503 else "kubernetes"
        return JSONResponse(
            error_body(f"{message}: {exc.message}"), status_code=status, headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body("internal error"), status_code=500)


def _allowed_methods(request: Request) -> list[str]:
    """The methods served on this path, as the OpenAPI document lists them: a 405 answer
    must name them all in `Allow`."""
    path = request.url.path
    # The most literal templates win: /v1/jobs/updatecounts is that path, not a job id.
    matches: dict[int, set[str]] = {}
    for template, operations in request.app.openapi().get("paths", {}).items():
        if _template_regex(template).match(path):
            found = {m.upper() for m in operations if m.upper() in _HTTP_METHODS}
            matches.setdefault(template.count("{"), set()).update(found)
    return sorted(matches[min(matches)]) if matches else []


_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"})


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", template)
    return re.compile("^" + "[^/]+".join(re.escape(p) for p in parts) + "$")
