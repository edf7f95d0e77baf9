"""The built-in schema, the document made of a schema's defaults, and defaults filling.

Rules (also in docs/settings.md):
- A property's default is its own `default`; when that is an object (or absent) and the
  property has `properties`, the children's defaults fill the keys it lacks. So an object
  without its own default still gets its defaulted children, and a parent's explicit
  default wins over a child's where both speak (what generic JSON Schema tools do).
- A property without any default is left out.
- The root's own `default` is ignored: the document itself is always present.
- Filling keeps every value that is present, even a wrong one (validation reports it),
  descends into present objects, and never looks inside arrays (an array is one value).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final, overload

from caravan.settings.schema_view import RefStack, Schema, flatten, may_be_object


class _Missing:
    """Marks "no default" (None is a legitimate default value)."""


MISSING: Final = _Missing()


def load_builtin_schema() -> dict[str, Any]:
    """Caravan's own settings schema, read from package data (a fresh copy each call)."""
    text = resources.files("caravan.settings").joinpath("schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def defaults_from_schema(schema: Schema) -> dict[str, Any]:
    """The document made of the schema's defaults, at every depth."""
    return fill_defaults({}, schema)


@overload
def fill_defaults(document: Mapping[str, Any], schema: Schema) -> dict[str, Any]: ...
@overload
def fill_defaults(document: object, schema: Schema) -> object: ...
def fill_defaults(document: object, schema: Schema) -> object:
    """A copy of `document` with every missing value that has a default filled in.

    The input is never mutated. A non-object document (e.g. a JSON array posted by
    mistake) comes back as an unfilled copy: reporting it is validation's job.
    """
    if isinstance(document, Mapping):
        return _fill(copy.deepcopy(dict(document)), schema, schema, ())
    return copy.deepcopy(document)


def default_of(node: object, root: Schema, stack: RefStack = ()) -> Any:
    """The default of one sub-schema (children's defaults folded in), or MISSING."""
    flat, stack = flatten(node, root, stack)
    own = flat.get("default", MISSING)
    if isinstance(own, _Missing):
        if not _has_properties(flat):
            return MISSING
        children = _fill({}, flat, root, stack)
        # An object whose children have no default either stays absent.
        return children if children else MISSING
    own = copy.deepcopy(own)
    if isinstance(own, dict) and _has_properties(flat):
        return _fill(own, flat, root, stack)
    return own


def _fill(value: Any, node: object, root: Schema, stack: RefStack) -> Any:
    """Fill `value` in place (it is already a private copy) and return it."""
    if not isinstance(value, dict):
        return value
    flat, stack = flatten(node, root, stack)
    if not may_be_object(flat):
        return value
    properties = flat.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    for name, sub in properties.items():
        if name in value:
            value[name] = _fill(value[name], sub, root, stack)
            continue
        default = default_of(sub, root, stack)
        if not isinstance(default, _Missing):
            value[name] = default
    # Keys that are not declared properties may still be described by patternProperties
    # or additionalProperties (a map of objects): fill inside those present values too.
    for name in value.keys() - properties.keys():
        sub = _schema_for_extra_key(flat, name)
        if sub is not None:
            value[name] = _fill(value[name], sub, root, stack)
    return value


def _schema_for_extra_key(flat: Mapping[str, Any], name: str) -> object | None:
    patterns = flat.get("patternProperties")
    if isinstance(patterns, Mapping):
        for pattern, sub in patterns.items():
            try:
                if re.search(pattern, name):
                    return sub  # type: ignore[no-any-return]
            except re.error:
                continue  # An ECMA-only pattern: the schema check reports real problems.
    extra = flat.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None


def _has_properties(flat: Mapping[str, Any]) -> bool:
    properties = flat.get("properties")
    return isinstance(properties, Mapping) and bool(properties) and may_be_object(flat)
