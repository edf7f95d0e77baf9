"""The FastAPI application: routers, error handlers, metrics, an OpenAPI that tells the truth."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from caravan import __version__
from caravan.api import guard, metrics
from caravan.api.access import AccessReviewer
from caravan.api.area import Area
from caravan.api.deps import services_of
from caravan.api.errors import install_error_handlers
from caravan.api.routers import (
    access,
    allocations,
    events,
    health,
    jobs,
    jobsdefs,
    loggers,
    logs,
    secrets,
    settings,
    ui,
)
from caravan.api.state import AppState
from caravan.api.writes import ReadYourWritesHeader
from caravan.services.wiring import build_services

# Every area of the API; each router module exposes `area`.
AREAS: list[Area] = [
    health.area,
    jobs.area,
    jobsdefs.area,
    events.area,
    logs.area,
    loggers.area,
    secrets.area,
    settings.area,
    allocations.area,
    access.area,
    ui.area,
]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Every area's service starts before the first request and stops after the last."""
    state: AppState = app.state.caravan
    if state.config.auth_mode == "kubernetes":
        state.auth = AccessReviewer(
            state.kube, state.config.namespace, audience=state.config.token_audience
        )
    services = services_of(state)
    await services.start()
    try:
        yield
    finally:
        await services.stop()


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(
        title="Caravan Cluster API",
        version=__version__,
        description="The Genvid Cluster API, served from Kubernetes.",
        lifespan=lifespan,
        # The ui area serves both from installed packages: FastAPI's load a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.caravan = state
    state.services = build_services(state)
    install_error_handlers(app)
    guard.install(app, state.config)
    app.add_middleware(ReadYourWritesHeader)
    metrics.install(app)
    for area in AREAS:
        app.include_router(area.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@contextlib.asynccontextmanager
async def running_app(state: AppState) -> AsyncIterator[FastAPI]:
    """The app with its lifespan entered, as `caravan run` serves it (in-process tests)."""
    app = create_app(state)
    async with lifespan(app):
        yield app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents request validation as 422; Caravan answers those with 400."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, routes=app.routes, description=app.description
    )
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            answers = operation.get("responses", {})
            default = answers.get("422", {})
            ref = str(default.get("content", {}).get("application/json", {}).get("schema", {}))
            if "HTTPValidationError" in ref:
                del answers["422"]
                answers.setdefault(
                    "400",
                    {
                        "description": "Malformed input",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorBody"}
                            }
                        },
                    },
                )
            for parameter in operation.get("parameters", []):
                _absent_is_not_null(parameter)
    _closed_pattern_objects(schema)
    guard.document(schema)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "ErrorBody",
        {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "details": {"type": "array", "items": {}}},
        },
    )
    app.openapi_schema = schema
    return schema


def _absent_is_not_null(parameter: dict[str, Any]) -> None:
    """An optional header or query parameter may be left out; it is never `null` (a
    header `waitIndex: null` is malformed). FastAPI writes `anyOf: [X, null]`: keep X."""
    if parameter.get("required"):
        return
    options = parameter.get("schema", {}).get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            extra = {k: v for k, v in parameter["schema"].items() if k != "anyOf"}
            parameter["schema"] = {**kept[0], **extra}


def _closed_pattern_objects(node: Any) -> None:
    """pydantic writes a dict with constrained keys as `patternProperties` and says nothing
    of other keys, which it refuses: say `additionalProperties: false`, as it behaves."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _closed_pattern_objects(value)
    elif isinstance(node, list):
        for value in node:
            _closed_pattern_objects(value)
