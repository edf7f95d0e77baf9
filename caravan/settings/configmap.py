"""Reading the settings text stored in the settings ConfigMap.

People edit that ConfigMap with kubectl, so its text can be anything: every problem comes
back as a `SettingsError` (never an exception) for the API to report.
"""

from __future__ import annotations

import json
from typing import Any

from caravan.settings.defaults import fill_defaults
from caravan.settings.schema_view import Schema
from caravan.settings.validation import SettingsError, validate_settings


def parse_settings_configmap_value(
    text: str | None, schema: Schema | None = None
) -> tuple[dict[str, Any] | None, list[SettingsError]]:
    """Parse stored settings text into `(document, [])`, or `(None, errors)`.

    Empty text (or no text) means "nothing stored yet": the empty document, i.e. all
    defaults. JSON must be strict: no NaN/Infinity, no duplicate keys (json.loads would
    silently keep the last one, hiding an edit). With `schema`, the document is also filled
    with defaults and validated, and the filled document is returned.
    """
    if text is None or not text.strip():
        document: dict[str, Any] = {}
    else:
        parsed, errors = _parse_json(text)
        if errors:
            return None, errors
        if not isinstance(parsed, dict):
            kind = "an array" if isinstance(parsed, list) else f"a {type(parsed).__name__}"
            message = f"the settings document must be a JSON object, not {kind}"
            return None, [SettingsError("$", message, "type")]
        document = parsed
    if schema is None:
        return document, []
    filled = fill_defaults(document, schema)
    errors = validate_settings(filled, schema)
    return (None, errors) if errors else (filled, [])


class _StrictJSONError(ValueError):
    pass


def _parse_json(text: str) -> tuple[object, list[SettingsError]]:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants), []
    except json.JSONDecodeError as exc:
        message = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        return None, [SettingsError("$", message, "json")]
    except _StrictJSONError as exc:
        return None, [SettingsError("$", f"invalid JSON: {exc}", "json")]
    except RecursionError:
        return None, [SettingsError("$", "invalid JSON: nested too deeply", "json")]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _StrictJSONError(f"duplicate key {json.dumps(key)}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise _StrictJSONError(f"{name} is not a JSON value")
