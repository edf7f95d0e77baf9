"""A flattened view of one JSON Schema node: local `$ref`s and `allOf` folded in.

Defaults filling and the compatibility checks need to know, for one node, its `default`,
its `properties`, its `type` and its bounds, wherever the schema author put them. This
module folds a node's `$ref` (to the same document) and `allOf` members into one plain
dict, shallowly: the returned `properties` still hold unflattened sub-schemas, which
callers flatten when they descend. Anything not "simple" (`anyOf`, `oneOf`, `if`, remote
references) is left out on purpose: those keywords cannot say which default applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

Schema = Mapping[str, Any]

# Keywords whose tightest value wins when several allOf members give one.
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")

# `$ref`s being expanded along the current path; a ref met again is a cycle.
RefStack = tuple[str, ...]


def flatten(node: object, root: Schema, stack: RefStack = ()) -> tuple[dict[str, Any], RefStack]:
    """Fold `$ref` and `allOf` of `node` into one dict; return it with the grown ref stack.

    The node's own keywords come first so that its own `default` beats a referenced one,
    as a reader of the schema would expect.
    """
    if not isinstance(node, Mapping):
        # Boolean schemas (`true`/`false`) and malformed nodes carry no defaults.
        return {}, stack
    merged: dict[str, Any] = {}
    _absorb(merged, {k: v for k, v in node.items() if k not in ("$ref", "allOf")})
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in stack:
            return merged, stack
        target = resolve_ref(ref, root)
        if target is not None:
            stack = (*stack, ref)
            flat, stack = flatten(target, root, stack)
            _absorb(merged, flat)
    members = node.get("allOf")
    if isinstance(members, list):
        for member in members:
            flat, stack = flatten(member, root, stack)
            _absorb(merged, flat)
    return merged, stack


def resolve_ref(ref: str, root: Schema) -> object | None:
    """Resolve a reference into `root` (`#/...` or `<root $id>#/...`); None if it is elsewhere."""
    base, _, fragment = ref.partition("#")
    if base and base != root.get("$id"):
        return None
    if fragment and not fragment.startswith("/"):
        return None  # `$anchor` names are not supported: keep the walk simple.
    node: object = root
    for raw in fragment.split("/")[1:]:
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def may_be_object(node: Schema) -> bool:
    """True unless the node's `type` rules objects out (properties only apply to objects)."""
    types = node.get("type")
    if types is None:
        return True
    if isinstance(types, str):
        return types == "object"
    return isinstance(types, list) and "object" in types


def type_set(node: Schema) -> set[str] | None:
    """The node's allowed types as a set, or None when the node does not restrict them."""
    types = node.get("type")
    if isinstance(types, str):
        return {types}
    if isinstance(types, list):
        return {t for t in types if isinstance(t, str)}
    return None


def _absorb(merged: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Merge `extra` into `merged` with allOf semantics, as far as they are simple."""
    for key, value in extra.items():
        if key not in merged:
            merged[key] = value
        elif key == "properties" and isinstance(value, Mapping):
            merged[key] = _merge_properties(merged[key], value)
        elif key == "required" and isinstance(value, list) and isinstance(merged[key], list):
            merged[key] = [*merged[key], *(n for n in value if n not in merged[key])]
        elif key == "type":
            merged[key] = _intersect_types(merged[key], value)
        elif key in LOWER_BOUNDS and _both_numbers(merged[key], value):
            merged[key] = max(merged[key], value)
        elif key in UPPER_BOUNDS and _both_numbers(merged[key], value):
            merged[key] = min(merged[key], value)
        # Any other keyword (default, description, ...): the first one seen wins.


def _merge_properties(left: object, right: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = dict(left) if isinstance(left, Mapping) else {}
    for name, sub in right.items():
        # The same property in two members must satisfy both: keep both under allOf.
        result[name] = {"allOf": [result[name], sub]} if name in result else sub
    return result


def _intersect_types(left: object, right: object) -> list[str]:
    def as_set(value: object) -> set[str]:
        if isinstance(value, str):
            return {value}
        return {t for t in value if isinstance(t, str)} if isinstance(value, list) else set()

    lefts, rights = as_set(left), as_set(right)
    both = lefts & rights
    # "integer" is a subset of "number": an allOf of the two means integer.
    if (
        {"integer", "number"} <= lefts | rights
        and lefts & {"integer", "number"}
        and (rights & {"integer", "number"})
    ):
        both.add("integer")
    return sorted(both)


def _both_numbers(left: object, right: object) -> bool:
    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    return number(left) and number(right)
