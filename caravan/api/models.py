"""Pydantic models of the request and response bodies shared by several routers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt


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
    429: "Too many: this caller holds its most open streams, or retried too fast",
}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _integral(value: Any) -> Any:
    """JSON Schema's `integer` includes 5.0: take integral floats as the integer they are."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema means it (5 and 5.0), and nothing else (no "5", no true).
JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]


def bounded_json_int(low: int, high: int) -> Any:
    """A `JsonInt` within [low, high], the bounds stated in the OpenAPI document (they must
    come before the validator there: after it, an optional one's bounds go unnamed)."""
    return Annotated[StrictInt, Field(ge=low, le=high), BeforeValidator(_integral)]
