"""`PATH=VALUE` for the settings: a dotted path typed by the settings schema.

`logs.followIdleTimeoutSeconds=600` becomes the integer 600 because the schema says
that setting is an integer; `info.name=600` stays the text "600". A path the schema does
not allow is refused with the names it does allow. Where the schema says nothing (the
installation's own `app` section, unless its schema describes it) a value that reads as
JSON is JSON, anything else is text. Pure: plain data in, plain data out.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from caravan.settings.schema_view import Schema, flatten, type_set

_PATH = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a JSON object",
    "array": "a JSON array",
    "null": "null",
}


class SettingError(ValueError):
    """A PATH=VALUE the schema refuses (a usage mistake: nothing is sent)."""


@dataclass(frozen=True)
class Assignment:
    path: tuple[str, ...]
    value: Any

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def is_assignment(argument: str) -> bool:
    """`a.b=c` (a dotted name before the first `=`), as opposed to a file name or `-`."""
    name, sep, _ = argument.partition("=")
    return bool(sep) and bool(_PATH.match(name))


def _node_at(schema: Schema, path: tuple[str, ...]) -> dict[str, Any] | None:
    """The flattened schema node of `path`; None where the schema does not describe it
    (free-form parts); SettingError for a name an object does not allow."""
    node, _ = flatten(schema, schema)
    for depth, name in enumerate(path):
        properties = node.get("properties") or {}
        if name in properties:
            node, _ = flatten(properties[name], schema)
            continue
        extra = node.get("additionalProperties", True)
        if extra is False:
            where = ".".join(path[:depth]) or "the settings"
            allowed = ", ".join(sorted(properties)) or "nothing"
            raise SettingError(
                f"{'.'.join(path)}: {where} has no setting {name!r} (it has: {allowed})"
            )
        if isinstance(extra, Mapping):
            node, _ = flatten(extra, schema)
            continue
        return None
    return node


def _typed(text: str, types: set[str] | None, dotted: str) -> Any:
    if types is None:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if "string" in types and len(types) == 1:
        return text
    if "boolean" in types and text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() and "." not in text else number
    if types & {"object", "array", "null"}:
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            return parsed
    if "string" in types:
        return text
    wanted = " or ".join(_WORDS.get(t, t) for t in sorted(types))
    raise SettingError(f"{dotted}: expected {wanted}, got {text!r}")


def parse_assignment(argument: str, schema: Schema) -> Assignment:
    name, _, text = argument.partition("=")
    path = tuple(name.split("."))
    node = _node_at(schema, path)
    types = type_set(node) if node is not None else None
    return Assignment(path, _typed(text, types, name))


def assign(document: Mapping[str, Any], assignments: list[Assignment]) -> dict[str, Any]:
    """A copy of `document` with each path set (objects made on the way)."""
    result = copy.deepcopy(dict(document))
    for item in assignments:
        target = result
        for depth, name in enumerate(item.path[:-1]):
            child = target.get(name)
            if not isinstance(child, dict):
                if child is not None:
                    raise SettingError(
                        f"{item.dotted}: {'.'.join(item.path[: depth + 1])} is not an object"
                    )
                child = target[name] = {}
            target = child
        target[item.path[-1]] = copy.deepcopy(item.value)
    return result


def given(document: Any, path: tuple[str, ...]) -> bool:
    """Whether `document` says something about `path` (itself or an enclosing value)."""
    node = document
    for name in path:
        if not isinstance(node, Mapping):
            return True
        if name not in node:
            return False
        node = node[name]
    return True
