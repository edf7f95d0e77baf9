"""Validation of a settings document: every error, each with its JSON path.

The HTTP layer answers 422 with these errors; they must be stable (sorted) and readable
by a person who writes JSON, so values are rendered as JSON, not as Python reprs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from caravan.settings.schema_view import Schema

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_RENDERED = 80  # A whole object echoed back in an error helps nobody.

LONG_POLL_PATH = ("jobs", "longPoll")


@dataclass(frozen=True, order=True)
class SettingsError:
    """One problem with a settings document (or with the text holding it)."""

    path: str  # JSON path of the offending value, e.g. "$.jobs.longPoll.maxWaitSeconds"
    message: str
    keyword: str = ""  # The JSON Schema keyword (or "json", "crossField") that failed.

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


_Located = tuple[tuple[str | int, ...], SettingsError]
_OrderKey = tuple[tuple[tuple[int, str | int], ...], str, str]


def json_path(parts: Iterable[str | int]) -> str:
    """`$`-rooted path: dots for plain names, `['...']` for others, `[n]` for indexes."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


def validate_settings(document: object, schema: Schema) -> list[SettingsError]:
    """Every schema error of `document`, plus Caravan's cross-field rules, sorted.

    `schema` must already be a valid 2020-12 schema (see `check_custom_schema`). Run this on
    the filled document: the cross-field rules only look at values that are present.
    """
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    located = [_to_settings_error(error) for error in validator.iter_errors(document)]
    located.extend(_cross_field_errors(document))
    # A set first: allOf branches can report the very same problem twice.
    return [
        error for _, error in sorted({(_order(parts, error), error) for parts, error in located})
    ]


def _cross_field_errors(document: object) -> list[_Located]:
    """Rules JSON Schema cannot express: the long-poll default wait within the maximum."""
    long_poll = _lookup(document, LONG_POLL_PATH)
    if not isinstance(long_poll, Mapping):
        return []
    default, maximum = long_poll.get("defaultWaitSeconds"), long_poll.get("maxWaitSeconds")
    if not (_is_number(default) and _is_number(maximum)) or default <= maximum:
        return []  # Missing or mistyped values are the schema's to report.
    where = (*LONG_POLL_PATH, "defaultWaitSeconds")
    return [
        (
            where,
            SettingsError(
                path=json_path(where),
                message=(
                    f"defaultWaitSeconds ({_render(default)}) must not exceed "
                    f"maxWaitSeconds ({_render(maximum)})"
                ),
                keyword="crossField",
            ),
        )
    ]


def _order(parts: Sequence[str | int], error: SettingsError) -> _OrderKey:
    # Sort by path segments (so `$.a.b` sorts right after `$.a`), then keyword, message.
    segments = tuple((1, p) if isinstance(p, int) else (0, p) for p in parts)
    return segments, error.keyword, error.message


def _to_settings_error(error: ValidationError) -> _Located:
    parts = tuple(error.absolute_path)
    keyword = str(error.validator)
    if keyword == "required":
        missing = _required_name(error)
        if missing is not None:
            # Point at the missing value itself: that is what the user has to add.
            where = (*parts, missing)
            return where, SettingsError(json_path(where), "is required", keyword)
    return parts, SettingsError(json_path(parts), _message(error), keyword)


def _required_name(error: ValidationError) -> str | None:
    names = error.validator_value if isinstance(error.validator_value, list) else []
    for name in names:
        if isinstance(name, str) and error.message == f"{name!r} is a required property":
            return name
    return None


def _message(error: ValidationError) -> str:
    keyword, expected, value = error.validator, error.validator_value, error.instance
    if keyword == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
        shown = "" if value is None else f" {_render(value)}"
        return f"must be of type {wanted}, got {_json_type(value)}{shown}"
    if keyword in _BOUND_PHRASES:
        return f"{_render(value)} {_BOUND_PHRASES[str(keyword)]} {_render(expected)}"
    if keyword == "enum" and isinstance(expected, Sequence):
        return f"{_render(value)} is not one of {_render(list(expected))}"
    if keyword == "const":
        return f"{_render(value)} is not {_render(expected)}"
    if keyword == "additionalProperties" and isinstance(value, Mapping):
        return _unknown_properties_message(value, error.schema)
    return error.message


_BOUND_PHRASES: dict[str, str] = {
    "minimum": "is less than the minimum of",
    "maximum": "is greater than the maximum of",
    "exclusiveMinimum": "must be greater than",
    "exclusiveMaximum": "must be less than",
    "minLength": "is shorter than the minimum length of",
    "maxLength": "is longer than the maximum length of",
    "minItems": "has fewer items than the minimum of",
    "maxItems": "has more items than the maximum of",
}


def _unknown_properties_message(value: Mapping[str, Any], schema: object) -> str:
    declared: Mapping[str, Any] = {}
    patterns: Mapping[str, Any] = {}
    if isinstance(schema, Mapping):
        declared = schema.get("properties") or {}
        patterns = schema.get("patternProperties") or {}
    unknown = sorted(
        key for key in value if key not in declared and not _matches_any(key, patterns)
    )
    names = ", ".join(json.dumps(k) for k in unknown)
    allowed = ", ".join(json.dumps(k) for k in sorted(declared))
    noun = "property" if len(unknown) == 1 else "properties"
    return f"unknown {noun} {names}" + (f" (allowed: {allowed})" if allowed else "")


def _matches_any(key: str, patterns: Mapping[str, Any]) -> bool:
    for pattern in patterns:
        try:
            if re.search(pattern, key):
                return True
        except re.error:
            continue
    return False


def _lookup(document: object, path: Sequence[str]) -> object:
    node = document
    for name in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(name)
    return node


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__


def _render(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_RENDERED else text[: _MAX_RENDERED - 1] + "…"
