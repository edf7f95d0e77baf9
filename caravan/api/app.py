"""The FastAPI application: routers, error handlers, metrics, an OpenAPI that tells the truth."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from caravan import __version__
from caravan.api import metrics
from caravan.api.area import Area
from caravan.api.errors import install_error_handlers
from caravan.api.middleware import JsonBodyByDefault
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

# Every area of API.md; each router module exposes `area`.
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


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(
        title="Caravan Cluster API",
        version=__version__,
        description="The Genvid Cluster API, served from Kubernetes.",
        # The ui area serves both from installed packages: FastAPI's load a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.caravan = state
    install_error_handlers(app)
    app.add_middleware(JsonBodyByDefault)
    metrics.install(app)
    for area in AREAS:
        app.include_router(area.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


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
