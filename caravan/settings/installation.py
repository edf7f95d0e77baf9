"""An installation's own settings schema: merging it with Caravan's and checking the result.

Merge rule (also in docs/settings.md), applied at the top level of the two schemas:
- `properties`: merged by name; the installation's definition of a property replaces
  Caravan's (so a custom `app` replaces Caravan's free-form `app`, new names are added),
  and a property the installation does not mention keeps Caravan's definition: Caravan's
  own properties cannot be removed.
- `$defs`: merged by name the same way (Caravan's schema defines none, so nothing clashes).
- `required`: the union of both lists.
- Any other keyword (`$id`, `title`, `description`, `additionalProperties`, ...): the
  installation's value replaces Caravan's.

A custom schema that redefines one of Caravan's sections is allowed (to change a default or
tighten a bound) but `check_custom_schema` then demands that every knob Caravan reads is
still there, with a compatible type, bounds no looser than Caravan's, and a default
Caravan accepts.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from caravan.settings.defaults import MISSING, defaults_from_schema, load_builtin_schema
from caravan.settings.schema_view import RefStack, Schema, flatten, type_set
from caravan.settings.validation import json_path, validate_settings

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_MERGED_BY_NAME = ("properties", "$defs")

Path = tuple[str, ...]


def merge_installation_schema(builtin: Schema, custom: Schema | None) -> dict[str, Any]:
    """Caravan's schema extended or overridden by an installation's (see the module rule).

    Neither input is mutated. The result is not checked: call `check_custom_schema` on it.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(builtin))
    for key, value in (custom or {}).items():
        ours = merged.get(key)
        if key in _MERGED_BY_NAME and isinstance(value, Mapping) and isinstance(ours, Mapping):
            merged[key] = {**ours, **copy.deepcopy(dict(value))}
        elif key == "required" and isinstance(value, list) and isinstance(ours, list):
            merged[key] = [*ours, *(name for name in value if name not in ours)]
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_custom_schema(schema: object, *, builtin: Schema | None = None) -> list[str]:
    """Problems that keep `schema` from serving as Caravan's settings schema; [] if none.

    Checks, in order: a JSON object; a valid JSON Schema 2020-12 (every metaschema error);
    every knob of Caravan's schema (`builtin`, by default the packaged one) present with a
    compatible type, bounds and default; the document of defaults valid under `schema`.
    """
    if not isinstance(schema, Mapping):
        return ["the settings schema must be a JSON object"]
    problems = _draft_problems(schema) or _reference_problems(schema)
    if problems:
        return problems  # The remaining checks assume a well-formed schema.
    reference = builtin if builtin is not None else load_builtin_schema()
    problems.extend(_knob_problems(reference, schema, reference, schema, (), ()))
    problems.extend(_default_problems(reference, schema))
    return problems


def build_installation_schema(custom: Schema | None) -> tuple[dict[str, Any], list[str]]:
    """Merge `custom` (e.g. the Helm value) into Caravan's schema and check the result."""
    merged = merge_installation_schema(load_builtin_schema(), custom)
    return merged, check_custom_schema(merged)


def _draft_problems(schema: Schema) -> list[str]:
    declared = schema.get("$schema", DRAFT_2020_12)
    if declared not in (DRAFT_2020_12, DRAFT_2020_12 + "#"):
        return [f"$schema must be {DRAFT_2020_12!r} (JSON Schema 2020-12), not {declared!r}"]
    meta = Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(
        meta.iter_errors(schema), key=lambda e: ([str(p) for p in e.absolute_path], e.message)
    )
    return [f"schema at {json_path(list(e.absolute_path))}: {e.message}" for e in errors]


# Values under these keywords are data, not schemas: a "$ref" key there is not a reference.
_DATA_KEYWORDS = frozenset({"default", "const", "enum", "examples"})


def _reference_problems(schema: Schema) -> list[str]:
    """Every `$ref` that does not resolve (validation would raise on it, not report it)."""
    declared_id = schema.get("$id")
    root_uri = declared_id if isinstance(declared_id, str) else ""
    registry: Registry[Any] = Registry().with_resource(
        root_uri, DRAFT202012.create_resource(schema)
    )
    registry = registry.crawl()
    problems: list[str] = []
    for path, base, ref in _references(schema, root_uri, ()):
        try:
            registry.resolver(base_uri=base).lookup(ref)
        except Unresolvable:
            problems.append(f"schema at {json_path(path)}: $ref {ref!r} does not resolve")
    return problems


def _references(
    node: object, base: str, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, base, (*path, index))
        return
    if not isinstance(node, Mapping):
        return
    if isinstance(node.get("$id"), str) and path:
        base = urljoin(base, node["$id"])  # An embedded resource: refs inside are relative.
    if isinstance(node.get("$ref"), str):
        yield (*path, "$ref"), base, node["$ref"]
    for key, value in node.items():
        if key not in _DATA_KEYWORDS:
            yield from _references(value, base, (*path, key))


def _knob_problems(
    ours: object, theirs: object, our_root: Schema, their_root: Schema, path: Path, stack: RefStack
) -> Iterator[str]:
    """Walk Caravan's schema and the custom one side by side, from the root down."""
    mine, _ = flatten(ours, our_root)
    other, stack = flatten(theirs, their_root, stack)
    where = json_path(path)
    type_problem = _type_problem(type_set(mine), type_set(other))
    if type_problem:
        yield f"{where}: {type_problem}"
        return  # Bounds and children of a wrongly typed value are meaningless.
    yield from (f"{where}: {problem}" for problem in _bound_problems(mine, other))
    their_properties = other.get("properties")
    their_properties = their_properties if isinstance(their_properties, Mapping) else {}
    for name, sub in (mine.get("properties") or {}).items():
        if name not in their_properties:
            wanted = " or ".join(sorted(type_set(flatten(sub, our_root)[0]) or {"any"}))
            yield f"{json_path((*path, name))}: missing; Caravan reads it ({wanted})"
            continue
        yield from _knob_problems(
            sub, their_properties[name], our_root, their_root, (*path, name), stack
        )


def _type_problem(ours: set[str] | None, theirs: set[str] | None) -> str | None:
    if ours is None:
        return None
    wanted = " or ".join(sorted(ours))
    if not theirs:
        return f"must declare its type ({wanted})"
    # An integer is a number, so narrowing "number" to "integer" is compatible.
    extra = {t for t in theirs if t not in ours and not (t == "integer" and "number" in ours)}
    if extra:
        return f"type must be {wanted}, the schema allows {' or '.join(sorted(theirs))}"
    return None


def _bound_problems(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> Iterator[str]:
    integral = type_set(theirs) == {"integer"}
    for side, keyword, inclusive_name in (
        ("lower", "exclusiveMinimum", "minimum"),
        ("upper", "exclusiveMaximum", "maximum"),
    ):
        mine = _bound(ours, inclusive_name, keyword, side, integral)
        other = _bound(theirs, inclusive_name, keyword, side, integral)
        if mine is not None and not _at_least_as_tight(mine, other, side):
            yield f"{inclusive_name} must be no looser than Caravan's {_show(mine, side)}"
    for name, side in (("minLength", "lower"), ("maxLength", "upper")):
        mine_length, other_length = ours.get(name), theirs.get(name)
        if isinstance(mine_length, int) and not _at_least_as_tight(
            (mine_length, False), (other_length, False) if other_length is not None else None, side
        ):
            yield f"{name} must be no looser than Caravan's {mine_length}"


_Bound = tuple[float, bool]  # (value, exclusive)


def _bound(
    node: Mapping[str, Any], inclusive: str, exclusive: str, side: str, integral: bool
) -> _Bound | None:
    """The tightest of a node's inclusive and exclusive bound on one side."""
    candidates: list[_Bound] = []
    if _is_number(node.get(inclusive)):
        candidates.append((node[inclusive], False))
    if _is_number(node.get(exclusive)):
        value = node[exclusive]
        if integral:
            # For integers "> 0" is ">= 1": compare like with like.
            candidates.append(
                (math.floor(value) + 1 if side == "lower" else math.ceil(value) - 1, False)
            )
        else:
            candidates.append((value, True))
    if not candidates:
        return None
    # Tightest: the highest lower bound / lowest upper bound; on a tie, the exclusive one.
    return max(candidates, key=lambda b: (b[0] if side == "lower" else -b[0], b[1]))


def _at_least_as_tight(mine: _Bound, other: _Bound | None, side: str) -> bool:
    if other is None:
        return False
    if other[0] != mine[0]:
        return other[0] > mine[0] if side == "lower" else other[0] < mine[0]
    return other[1] or not mine[1]


def _show(bound: _Bound, side: str) -> str:
    if not bound[1]:
        return f"{'>=' if side == 'lower' else '<='} {bound[0]}"
    return f"{'>' if side == 'lower' else '<'} {bound[0]}"


def _default_problems(builtin: Schema, schema: Schema) -> list[str]:
    """Each knob's effective default must be one Caravan accepts; all defaults must validate."""
    try:
        defaults = defaults_from_schema(schema)
        errors = validate_settings(defaults, schema)
    except (Unresolvable, SchemaError, ValueError, TypeError, LookupError) as exc:
        # e.g. a `$ref` to nowhere only fails once something is validated against it.
        return [f"the schema cannot be used to validate: {exc}"]
    knob_problems: list[str] = []
    undefaulted: list[str] = []
    for path, knob in _leaf_knobs(builtin, builtin, ()):
        value = _lookup(defaults, path)
        if value is MISSING:
            undefaulted.append(json_path(path))
            continue
        for error in validate_settings(value, knob):
            knob_problems.append(f"default {json_path(path)}: {error.message} (Caravan's rule)")

    def said_already(path: str) -> bool:
        # "`jobs` is required" says nothing "`jobs.longPoll.maxWaitSeconds` has no default"
        # does not already say better.
        return any(knob == path or knob.startswith(path + ".") for knob in undefaulted)

    problems = [
        f"default {e.path}: {e.message}"
        for e in errors
        if not (e.keyword == "required" and said_already(e.path))
    ]
    problems.extend(f"{path}: has no default; Caravan needs one" for path in undefaulted)
    return problems + knob_problems


def _leaf_knobs(node: object, root: Schema, path: Path) -> Iterator[tuple[Path, Schema]]:
    flat, _ = flatten(node, root)
    properties = flat.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        if path:
            yield path, flat
        return
    for name, sub in properties.items():
        yield from _leaf_knobs(sub, root, (*path, name))


def _lookup(document: object, path: Path) -> object:
    node = document
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            return MISSING
        node = node[name]
    return node


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
