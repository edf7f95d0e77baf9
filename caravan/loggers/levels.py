"""Logger configurations: `{"<loggerID>": {"<logger>": "<level>"}}` and how they merge.

The defaults (loggers ConfigMap) and one allocation's overrides (its pod annotation) have
the same shape. People can edit both with kubectl, so stored documents are read leniently
(bad entries are skipped, never fatal), while request bodies are checked strictly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

Level = Literal["debug", "info", "warning", "error", "fatal", "panic"]
LEVELS: Final[tuple[Level, ...]] = ("debug", "info", "warning", "error", "fatal", "panic")

# loggerID -> logger -> level
Loggers = dict[str, dict[str, str]]


class StoredDocumentError(ValueError):
    """A stored document is not a JSON object: a partial update would destroy it."""


def config_problems(raw: object) -> list[dict[str, str]]:
    """Why a request body is not a `{"<logger>": "<level>"}` object ([] if it is)."""
    if not isinstance(raw, dict):
        return [{"field": "body", "message": "must be an object of logger names to levels"}]
    problems = []
    for logger, level in raw.items():
        if logger == "":
            problems.append({"field": "body", "message": "a logger name must not be empty"})
        if not isinstance(level, str):
            problems.append({"field": logger, "message": "the level must be a string"})
        elif level not in LEVELS:
            problems.append(
                {"field": logger, "message": f"unknown level {level!r}; one of {', '.join(LEVELS)}"}
            )
    return problems


def _valid_config(raw: object) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        return None
    return {k: v for k, v in raw.items() if k and isinstance(v, str) and v in LEVELS}


def parse_raw(text: str | None) -> dict[str, Any]:
    """The stored JSON object as it is (for read-modify-write); "" or None is `{}`.

    Raises StoredDocumentError when the text is not a JSON object, so that a write
    never replaces a document someone broke by hand with a fragment of it.
    """
    if text is None or not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StoredDocumentError(f"invalid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise StoredDocumentError("not a JSON object")
    return raw


def parse_lenient(text: str | None) -> Loggers:
    """The valid part of a stored document: bad loggerIDs or levels are left out."""
    try:
        raw = parse_raw(text)
    except StoredDocumentError:
        return {}
    result: Loggers = {}
    for logger_id, config in raw.items():
        valid = _valid_config(config)
        if valid is not None and logger_id:
            result[logger_id] = valid
    return result


def with_config(
    raw: Mapping[str, Any], logger_id: str, config: Mapping[str, str]
) -> dict[str, Any]:
    """`raw` with `logger_id` replaced by `config`; an empty config removes it.

    Other loggerIDs are kept exactly as stored, even ones this version cannot read.
    """
    updated = dict(raw)
    if config:
        updated[logger_id] = dict(config)
    else:
        updated.pop(logger_id, None)
    return updated


def without_config(raw: Mapping[str, Any], logger_id: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != logger_id}


def effective(
    defaults: Mapping[str, Mapping[str, str]], overrides: Mapping[str, Mapping[str, str]]
) -> Loggers:
    """The levels a process uses: the defaults, where each (loggerID, logger) an override
    names takes the override's level. Loggers only in the overrides are added."""
    merged: Loggers = {k: dict(v) for k, v in defaults.items()}
    for logger_id, config in overrides.items():
        merged.setdefault(logger_id, {}).update(config)
    return merged


def dump(document: Mapping[str, Any]) -> str:
    """Compact, sorted JSON: equal documents give equal text (no spurious writes)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
