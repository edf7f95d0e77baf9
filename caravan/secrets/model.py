"""Secret ids, keys and bodies: the rules Kubernetes applies, checked before any call.

- An id is a Secret name: a DNS-1123 subdomain (lowercase letters, digits, `-` and `.`,
  starting and ending with a letter or digit, at most 253 characters).
- A key is a Secret data key: letters, digits, `-`, `_` and `.`, at most 253 characters,
  not `.` or `..` and not starting with `..`.
- A body is a JSON object of string values; the whole Secret must fit in 1 MiB.

Messages quote ids and keys (they are names, not secrets) and never values.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from caravan import labels
from caravan.errors import MalformedError, quote

MAX_NAME_LENGTH = 253
# kube-apiserver refuses Secrets whose data (keys + values) exceeds 1 MiB.
MAX_SECRET_BYTES = 1024 * 1024

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_KEY = re.compile(r"[-._a-zA-Z0-9]+\Z")


class SecretInputError(MalformedError):
    """A request the API refuses. `details` are `{"field", "message"}` dicts."""


def validate_secret_id(secret_id: str) -> str | None:
    """Why `secret_id` cannot name a Secret, or None when it can."""
    if not secret_id:
        return "a secret id must not be empty"
    if len(secret_id) > MAX_NAME_LENGTH:
        return f"a secret id must be at most {MAX_NAME_LENGTH} characters"
    if not _SUBDOMAIN.match(secret_id):
        return (
            "a secret id must be a Kubernetes name: lowercase letters, digits, '-' and '.',"
            " starting and ending with a letter or digit"
        )
    return None


def validate_secret_key(key: str) -> str | None:
    """Why `key` cannot be a Secret data key, or None when it can."""
    if not key:
        return "a key must not be empty"
    if len(key) > MAX_NAME_LENGTH:
        return f"a key must be at most {MAX_NAME_LENGTH} characters"
    if not _KEY.match(key):
        return "a key may only hold letters, digits, '-', '_' and '.'"
    if key in (".", ".."):
        return f"a key must not be {key!r}"
    if key.startswith(".."):
        return "a key must not start with '..'"
    return None


def parse_secret_body(raw: bytes) -> dict[str, str]:
    """The flat string map of a POST body; raises SecretInputError (never echoing values)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretInputError("the body must be UTF-8 encoded JSON") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        # The decoder's message names a position, never the text around it.
        raise SecretInputError(
            f"the body is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from None
    except _DuplicateKey as exc:
        raise SecretInputError(
            f"key {quote(exc.key)} appears twice", [_detail(exc.key, "appears twice")]
        ) from None
    except RecursionError:
        raise SecretInputError("the body is not valid JSON (nested too deeply)") from None
    except ValueError:
        raise SecretInputError("the body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise SecretInputError(
            f"the body must be a JSON object of string values, not {_json_type(parsed)}"
        )
    details: list[dict[str, str]] = []
    size = 0
    for key, value in parsed.items():
        problem = validate_secret_key(key)
        if problem is not None:
            details.append(_detail(key, problem))
        if not isinstance(value, str):
            details.append(_detail(key, f"the value must be a string, not {_json_type(value)}"))
            continue
        try:
            size += len(key.encode("utf-8")) + len(value.encode("utf-8"))
        except UnicodeEncodeError:
            # A lone surrogate (`"\ud800"`) is valid JSON but not text Kubernetes can store.
            details.append(_detail(key, "the value is not valid Unicode text"))
    if details:
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
        raise SecretInputError(f"invalid secret: {summary}{more}", details)
    if size > MAX_SECRET_BYTES:
        raise SecretInputError(
            f"the secret holds {size} bytes; Kubernetes allows at most {MAX_SECRET_BYTES}"
        )
    return parsed


def encode_secret_data(values: Mapping[str, str]) -> dict[str, str]:
    """Secret `data`: base64 of each UTF-8 value."""
    return {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in values.items()}


def decode_secret_data(data: Mapping[str, Any] | None) -> tuple[dict[str, str], list[str]]:
    """The string map of a Secret's `data`, and the keys left out because they hold
    bytes that are not UTF-8 text (a Secret made outside Caravan may hold binary data)."""
    values: dict[str, str] = {}
    binary: list[str] = []
    for key, encoded in sorted((data or {}).items()):
        try:
            values[key] = base64.b64decode(str(encoded), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            binary.append(key)
    return values, binary


def is_managed(secret: Mapping[str, Any]) -> bool:
    metadata = secret.get("metadata") or {}
    found = (metadata.get("labels") or {}).get(labels.MANAGED_BY_LABEL)
    return bool(found == labels.MANAGED_BY_VALUE)


def managed_secret(
    secret_id: str, values: Mapping[str, str], existing: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Secret to create (or, given `existing`, to PUT over it) holding exactly `values`.

    A replacement keeps the existing object's labels, annotations and owner (another tool
    may rely on them) and its resourceVersion (so a concurrent change makes the PUT fail).
    """
    metadata: dict[str, Any] = {"name": secret_id}
    if existing is not None:
        old = existing.get("metadata") or {}
        for field in ("labels", "annotations", "ownerReferences", "resourceVersion"):
            if old.get(field) is not None:
                metadata[field] = old[field]
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        labels.MANAGED_BY_LABEL: labels.MANAGED_BY_VALUE,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        # The type of an existing Secret is immutable; new ones are plain `Opaque`.
        "type": (existing or {}).get("type") or "Opaque",
        "data": encode_secret_data(values),
    }


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__("duplicate key")
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _detail(key: str, message: str) -> dict[str, str]:
    return {"field": key, "message": message}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
