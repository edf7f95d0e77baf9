"""Pydantic models of the request and response bodies shared by several routers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    error: str = Field(description="A human sentence saying what went wrong.")
    details: list[Any] = Field(default_factory=list, description="Per-field details, if any.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed input"},
    401: {"model": ErrorBody, "description": "Missing or invalid credentials"},
    403: {"model": ErrorBody, "description": "Not allowed"},
    503: {"model": ErrorBody, "description": "Cluster unreachable"},
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route: the common ones plus `codes`."""
    result = dict(ERROR_RESPONSES)
    for code in codes:
        result[code] = {"model": ErrorBody, "description": _DESCRIPTIONS.get(code, "Error")}
    return result


_DESCRIPTIONS = {
    404: "Unknown id",
    409: "Conflict with the current state or ownership",
    422: "Document invalid against its schema",
}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
