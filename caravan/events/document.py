"""Parse and validate events documents into typed, immutable specs.

The parser never stops at the first problem: it walks the whole input and records every
error with its location, so one ``POST /v1/events`` tells the author everything to fix.
Specs carry their location (``path``) so later stages can name them too. The specs
themselves are in `spec`; this module is the one recursive-descent parser of the grammar
(documents, channels, maps, reductions, where clauses), kept whole on purpose: its
binding analysis follows clauses across all those levels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from caravan.events.errors import EventsError
from caravan.events.spec import (
    CHANNEL_FIELDS,
    COMPARISONS,
    DOCUMENT_FIELDS,
    IDENTIFIER,
    MAP_FIELDS,
    MAX_PERIOD_MS,
    OPERATIONS,
    REDUCTION_FIELDS,
    SOURCES,
    SUPPORTED_MAJOR_VERSION,
    WHERE_FIELDS,
    Binding,
    ChannelSpec,
    DocumentSpec,
    JsonScalar,
    MapSpec,
    ReductionSpec,
    Term,
    WhereSpec,
    binding_name,
)

# Deeper where clauses are refused (each level costs recursion wherever a clause is read).
MAX_WHERE_DEPTH = 32


def _is_number(value: object) -> bool:
    # bool is an int subclass in Python but never a number in JSON terms.
    return type(value) in (int, float) and not (
        isinstance(value, float) and not math.isfinite(value)
    )


def _is_scalar(value: object) -> bool:
    return value is None or type(value) in (str, bool) or _is_number(value)


def _member(base: str, name: str) -> str:
    return (
        f"{base}.{name}" if IDENTIFIER.match(name) or name.startswith("$") else f'{base}["{name}"]'
    )


def _fmt_names(names: Iterable[str]) -> str:
    listed = ", ".join(f"<{n}>" for n in sorted(names))
    return listed or "none"


@dataclass(slots=True)
class _Bound:
    """Bindings a clause sets: ``certain`` on every matching path, ``possible`` on some."""

    certain: set[str] = field(default_factory=set)
    possible: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Clause:
    """One where clause being parsed: where it is, whether it is valid so far, and what
    its parts bind (each part's bindings, to find a name bound twice on one path)."""

    path: str
    what: str
    ok: bool = True
    parts: list[set[str]] = field(default_factory=list)
    certain: set[str] = field(default_factory=set)


class _Parser:
    def __init__(self) -> None:
        self.errors: list[EventsError] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(EventsError(path, message))

    # -- helpers ---------------------------------------------------------------------

    def _unknown_fields(
        self, obj: dict[str, Any], allowed: frozenset[str], path: str, what: str
    ) -> None:
        for k in obj:
            if k not in allowed:
                self.err(
                    _member(path, str(k)),
                    f"{what}: unknown field {k!r} (allowed: {', '.join(sorted(allowed))})",
                )

    def _terms(self, raw: object, path: str, what: str) -> tuple[Term, ...] | None:
        """A key pattern/template: a non-empty array of strings, numbers and bindings."""
        if not isinstance(raw, list) or not raw:
            self.err(
                path, f'{what}: must be a non-empty array of strings, numbers and "<binding>"s'
            )
            return None
        out: list[Term] = []
        ok = True
        for i, item in enumerate(raw):
            if isinstance(item, str):
                name = binding_name(item)
                if name is not None:
                    out.append(Binding(name))
                elif item.startswith("<") and item.endswith(">"):
                    self.err(
                        f"{path}[{i}]", f'{what}: {item!r} is not a valid binding (use "<name>")'
                    )
                    ok = False
                else:
                    out.append(item)
            elif _is_number(item):
                out.append(item)
            else:
                self.err(
                    f"{path}[{i}]",
                    f"{what}: key elements must be strings, finite "
                    f'numbers or "<binding>"s, got {item!r}',
                )
                ok = False
        return tuple(out) if ok else None

    # -- where -----------------------------------------------------------------------

    def where(
        self, raw: object, path: str, what: str, depth: int = 1
    ) -> tuple[WhereSpec | None, _Bound]:
        """One where clause: each operator checked by its own method below, then the
        bindings of all its parts held against each other."""
        if not isinstance(raw, dict):
            self.err(path, f"{what}: where must be an object")
            return None, _Bound()
        if depth > MAX_WHERE_DEPTH:
            # Deeper clauses would cost recursion everywhere they are read (matching,
            # serializing): refused here, nothing below is looked at.
            self.err(path, f"{what}: where clauses nest more than {MAX_WHERE_DEPTH} levels deep")
            return None, _Bound()
        self._unknown_fields(raw, WHERE_FIELDS, path, what)
        clause = _Clause(path, what)
        key = self._where_key(raw, clause)
        name = self._where_name(raw, clause)
        vtype = self._where_type(raw, clause)
        comparisons = self._where_comparisons(raw, clause, vtype)
        in_ = self._where_in(raw, clause)
        search, search_in = self._where_search(raw, clause, vtype)
        case_sensitive = self._where_case(raw, clause)
        all_of = self._where_all_of(raw, clause, depth)
        any_of = self._where_any_of(raw, clause, depth)
        possible = self._where_bindings(clause)
        bound = _Bound(clause.certain, possible)
        if not clause.ok:
            return None, bound
        return WhereSpec(
            path=path,
            key=key,
            name=name,
            type=vtype,
            comparisons=tuple(comparisons),
            in_=in_,
            search=search,
            search_in=search_in,
            case_sensitive=case_sensitive,
            all_of=tuple(all_of),
            any_of=tuple(any_of),
        ), bound

    def _fail(self, clause: _Clause, path: str, message: str) -> None:
        self.err(path, f"{clause.what}: {message}")
        clause.ok = False

    def _where_key(self, raw: dict[str, Any], clause: _Clause) -> tuple[Term, ...] | None:
        if "key" not in raw:
            return None
        path = f"{clause.path}.key"
        key = self._terms(raw["key"], path, clause.what)
        if key is None:
            clause.ok = False
            return None
        seen: set[str] = set()
        for i, t in enumerate(key):
            if isinstance(t, Binding):
                if t.name in seen:
                    self._fail(
                        clause, f"{path}[{i}]", f"binding {t} appears twice in the key pattern"
                    )
                seen.add(t.name)
        clause.parts.extend({b} for b in seen)
        clause.certain |= seen
        return key

    def _where_name(self, raw: dict[str, Any], clause: _Clause) -> str | None:
        if "name" not in raw:
            return None
        name = binding_name(raw["name"])
        if name is None:
            self._fail(
                clause,
                f"{clause.path}.name",
                f'name must be a binding like "<n>", got {raw["name"]!r}',
            )
            return None
        clause.parts.append({name})
        clause.certain.add(name)
        return name

    def _where_type(self, raw: dict[str, Any], clause: _Clause) -> str | None:
        if "type" not in raw:
            return None
        if raw["type"] in ("string", "number"):
            return str(raw["type"])
        self._fail(
            clause,
            f"{clause.path}.type",
            f'type must be "string" or "number", got {raw["type"]!r}',
        )
        return None

    def _where_comparisons(
        self, raw: dict[str, Any], clause: _Clause, vtype: str | None
    ) -> list[tuple[str, JsonScalar]]:
        comparisons: list[tuple[str, JsonScalar]] = []
        for op in COMPARISONS:
            if op not in raw:
                continue
            operand = raw[op]
            path = f"{clause.path}.{op}"
            if op in ("$eq", "$neq"):
                good = _is_scalar(operand)
                expect = "a string, a number, a boolean or null"
            else:
                good = isinstance(operand, str) or _is_number(operand)
                expect = "a number or a string"
            if not good:
                self._fail(clause, path, f"{op} must be {expect}, got {operand!r}")
                continue
            if vtype is not None and op not in ("$eq", "$neq") and operand is not None:
                kind = "string" if isinstance(operand, str) else "number"
                if kind != vtype:
                    self._fail(
                        clause,
                        path,
                        f"{op} compares with a {kind} but type is {vtype!r}; it could never match",
                    )
            comparisons.append((op, operand))
        return comparisons

    def _where_in(self, raw: dict[str, Any], clause: _Clause) -> tuple[JsonScalar, ...] | None:
        if "$in" not in raw:
            return None
        items = raw["$in"]
        if not isinstance(items, list) or not items or not all(map(_is_scalar, items)):
            self._fail(
                clause,
                f"{clause.path}.$in",
                "$in must be a non-empty array of strings, numbers, booleans or null",
            )
            return None
        return tuple(items)

    def _where_search(
        self, raw: dict[str, Any], clause: _Clause, vtype: str | None
    ) -> tuple[str | None, tuple[str, ...] | None]:
        search: str | None = None
        if "$search" in raw:
            if isinstance(raw["$search"], str):
                search = raw["$search"]
            else:
                self._fail(clause, f"{clause.path}.$search", "$search must be a string")
        search_in: tuple[str, ...] | None = None
        if "$searchIn" in raw:
            items = raw["$searchIn"]
            if isinstance(items, str):
                search_in = (items,)
            elif isinstance(items, list) and items and all(isinstance(s, str) for s in items):
                search_in = tuple(items)
            else:
                self._fail(
                    clause,
                    f"{clause.path}.$searchIn",
                    "$searchIn must be a string or a non-empty array of strings",
                )
        if vtype == "number" and (search is not None or search_in is not None):
            self._fail(
                clause,
                f"{clause.path}.type",
                '$search/$searchIn apply to strings but type is "number"; it could never match',
            )
        return search, search_in

    def _where_case(self, raw: dict[str, Any], clause: _Clause) -> bool:
        if "$caseSensitive" not in raw:
            return False
        if isinstance(raw["$caseSensitive"], bool):
            return raw["$caseSensitive"]
        self._fail(clause, f"{clause.path}.$caseSensitive", "$caseSensitive must be a boolean")
        return False

    def _where_branches(
        self, raw: dict[str, Any], clause: _Clause, op: str, depth: int
    ) -> list[tuple[WhereSpec | None, _Bound]] | None:
        """The clauses under `$and` or `$or`, each parsed one level deeper."""
        if op not in raw:
            return None
        branches = raw[op]
        if not isinstance(branches, list) or not branches:
            self._fail(
                clause, f"{clause.path}.{op}", f"{op} must be a non-empty array of where clauses"
            )
            return None
        parsed = [
            self.where(branch, f"{clause.path}.{op}[{i}]", clause.what, depth + 1)
            for i, branch in enumerate(branches)
        ]
        clause.ok = clause.ok and all(spec is not None for spec, _ in parsed)
        return parsed

    def _where_all_of(self, raw: dict[str, Any], clause: _Clause, depth: int) -> list[WhereSpec]:
        """`$and`: every branch's bindings are set on a match."""
        parsed = self._where_branches(raw, clause, "$and", depth) or []
        for _, bound in parsed:
            clause.parts.append(bound.possible)
            clause.certain |= bound.certain
        return [spec for spec, _ in parsed if spec is not None]

    def _where_any_of(self, raw: dict[str, Any], clause: _Clause, depth: int) -> list[WhereSpec]:
        """`$or`: only the bindings every branch sets are certain."""
        parsed = self._where_branches(raw, clause, "$or", depth)
        if parsed is None:
            return []
        possible: set[str] = set()
        certain: set[str] | None = None
        for _, bound in parsed:
            possible |= bound.possible
            certain = bound.certain if certain is None else (certain & bound.certain)
        clause.parts.append(possible)
        clause.certain |= certain or set()
        return [spec for spec, _ in parsed if spec is not None]

    def _where_bindings(self, clause: _Clause) -> set[str]:
        """Every binding the clause may set; one bound by two parts of it is an error."""
        possible: set[str] = set()
        for part in clause.parts:
            twice = possible & part
            if twice:
                self._fail(
                    clause,
                    clause.path,
                    f"binding(s) {_fmt_names(twice)} bound more than once in the same clause",
                )
            possible |= part
        return possible

    # -- maps and reductions ---------------------------------------------------------

    def _id(self, raw: dict[str, Any], path: str, kind: str, index: int) -> tuple[str, str]:
        """The id and the 'what' prefix used in messages."""
        rid = raw.get("id")
        if isinstance(rid, str) and rid:
            return rid, f"{kind} {rid!r}"
        self.err(f"{path}.id", f"{kind} #{index}: id must be a non-empty string")
        return "", f"{kind} #{index}"

    def _check_used(self, terms: Iterable[object], bound: _Bound, path: str, what: str) -> bool:
        ok = True
        for i, t in enumerate(terms):
            if isinstance(t, Binding) and t.name not in bound.certain:
                where = f"{path}[{i}]" if path.endswith(".key") else path
                self.err(
                    where,
                    f"{what}: binding {t} is not bound by the where clause on "
                    f"every match (bound: {_fmt_names(bound.certain)})",
                )
                ok = False
        return ok

    def map(self, raw: object, path: str, index: int) -> MapSpec | None:
        if not isinstance(raw, dict):
            self.err(path, f"map #{index}: must be an object")
            return None
        mid, what = self._id(raw, path, "map", index)
        self._unknown_fields(raw, MAP_FIELDS, path, what)
        ok = bool(mid)
        source = raw.get("source", "userinput")
        if source not in SOURCES:
            self.err(f"{path}.source", f'{what}: source must be "userinput", got {source!r}')
            ok = False
        where, bound, key = self._where_and_key(raw, path, what)
        value: Any = None
        if "value" not in raw:
            self.err(f"{path}.value", f"{what}: value is required")
            ok = False
        else:
            value = raw["value"]
            name = binding_name(value)
            if name is not None:
                value = Binding(name)
        if where is not None:
            if key is not None:
                ok = self._check_used(key, bound, f"{path}.key", what) and ok
            ok = self._check_used([value], bound, f"{path}.value", what) and ok
        if not ok or where is None or key is None:
            return None
        return MapSpec(id=mid, path=path, where=where, key=key, value=value, source=source)

    def _where_and_key(
        self, raw: dict[str, Any], path: str, what: str
    ) -> tuple[WhereSpec | None, _Bound, tuple[Term, ...] | None]:
        """The `where` clause (with what it binds) and the `key` template of a map or a
        reduction; each missing or invalid one is recorded as an error and comes back None."""
        where, bound = (None, _Bound())
        if "where" not in raw:
            self.err(f"{path}.where", f"{what}: where is required")
        else:
            where, bound = self.where(raw["where"], f"{path}.where", what)
        key = None
        if "key" not in raw:
            self.err(f"{path}.key", f"{what}: key is required")
        else:
            key = self._terms(raw["key"], f"{path}.key", what)
        return where, bound, key

    def reduction(self, raw: object, path: str, index: int) -> ReductionSpec | None:
        if not isinstance(raw, dict):
            self.err(path, f"reduction #{index}: must be an object")
            return None
        rid, what = self._id(raw, path, "reduction", index)
        self._unknown_fields(raw, REDUCTION_FIELDS, path, what)
        ok = bool(rid)
        where, bound, key = self._where_and_key(raw, path, what)
        if key is not None and where is not None:
            ok = self._check_used(key, bound, f"{path}.key", what) and ok
        ops: tuple[str, ...] = ()
        raw_ops = raw.get("value")
        if "value" not in raw:
            self.err(
                f"{path}.value", f"{what}: value is required (an array of {', '.join(OPERATIONS)})"
            )
            ok = False
        elif not isinstance(raw_ops, list) or not raw_ops:
            self.err(
                f"{path}.value",
                f"{what}: value must be a non-empty array of {', '.join(OPERATIONS)}",
            )
            ok = False
        else:
            for i, op in enumerate(raw_ops):
                if op not in OPERATIONS:
                    self.err(
                        f"{path}.value[{i}]",
                        f"{what}: unknown operation {op!r} (allowed: {', '.join(OPERATIONS)})",
                    )
                    ok = False
            ops = tuple(raw_ops)
        period = raw.get("period")
        if "period" not in raw:
            self.err(f"{path}.period", f"{what}: period (milliseconds) is required")
            ok = False
        elif type(period) is not int or not 1 <= period <= MAX_PERIOD_MS:
            self.err(
                f"{path}.period",
                f"{what}: period must be an integer number of "
                f"milliseconds between 1 and {MAX_PERIOD_MS}, "
                f"got {period!r}",
            )
            ok = False
        if not ok or where is None or key is None:
            return None
        assert type(period) is int
        return ReductionSpec(
            id=rid, path=path, where=where, key=key, operations=ops, period_ms=period
        )

    # -- documents -------------------------------------------------------------------

    def document(self, raw: object, index: int) -> DocumentSpec | None:
        path = f"mapreduce[{index}]"
        if not isinstance(raw, dict):
            self.err(path, 'document must be an object with "version" and "event"')
            return None
        self._unknown_fields(raw, DOCUMENT_FIELDS, path, f"document #{index}")
        ok = True
        version = raw.get("version")
        if not isinstance(version, str) or version.split(".")[0] != SUPPORTED_MAJOR_VERSION:
            self.err(
                f"{path}.version",
                f"document #{index}: version must be a "
                f'"{SUPPORTED_MAJOR_VERSION}.x.y" string such as '
                f'"1.7.0", got {version!r}',
            )
            ok = False
        events = raw.get("event")
        channels: list[ChannelSpec] = []
        if not isinstance(events, dict):
            self.err(f"{path}.event", f"document #{index}: event must be an object of channels")
            return None
        for cname, craw in events.items():
            cpath = _member(f"{path}.event", str(cname))
            channel = self.channel(str(cname), craw, cpath)
            if channel is None:
                ok = False
            else:
                channels.append(channel)
        if not ok:
            return None
        assert isinstance(version, str)
        return DocumentSpec(index=index, version=version, channels=tuple(channels))

    def channel(self, name: str, raw: object, path: str) -> ChannelSpec | None:
        if not name:
            self.err(path, "channel names must be non-empty")
            return None
        if not isinstance(raw, dict):
            self.err(path, f'channel {name!r}: must be an object with "maps" and "reductions"')
            return None
        self._unknown_fields(raw, CHANNEL_FIELDS, path, f"channel {name!r}")
        before = len(self.errors)
        channel = ChannelSpec(name)
        for fld in ("maps", "reductions"):
            items = raw.get(fld, [])
            if not isinstance(items, list):
                self.err(f"{path}.{fld}", f"channel {name!r}: {fld} must be an array")
                continue
            for i, item in enumerate(items):
                if fld == "maps":
                    m = self.map(item, f"{path}.maps[{i}]", i)
                    if m is not None:
                        channel.maps.append(m)
                else:
                    r = self.reduction(item, f"{path}.reductions[{i}]", i)
                    if r is not None:
                        channel.reductions.append(r)
        return channel if len(self.errors) == before else None

    def documents(self, raw: object) -> list[DocumentSpec]:
        if not isinstance(raw, list):
            self.err("mapreduce", "mapreduce must be an array of events documents")
            return []
        docs = [self.document(d, i) for i, d in enumerate(raw)]
        good = [d for d in docs if d is not None]
        self._unique_ids(good)
        return good

    def _unique_ids(self, docs: list[DocumentSpec]) -> None:
        # Results name a reduction by (channel, id), so ids must be unique per channel
        # across every document, not only within one.
        seen: dict[tuple[str, str, str], str] = {}
        for doc in docs:
            for ch in doc.channels:
                specs: list[MapSpec | ReductionSpec] = [*ch.maps, *ch.reductions]
                for spec in specs:
                    kind = "map" if isinstance(spec, MapSpec) else "reduction"
                    k = (ch.name, kind, spec.id)
                    if k in seen:
                        self.err(
                            f"{spec.path}.id",
                            f"{kind} {spec.id!r}: duplicate {kind} id "
                            f"in channel {ch.name!r} (first defined "
                            f"at {seen[k]})",
                        )
                    else:
                        seen[k] = spec.path


def parse_documents(raw: object) -> tuple[list[DocumentSpec], list[EventsError]]:
    """Parse the ``mapreduce`` array. Specs are only meaningful when errors is empty."""
    parser = _Parser()
    docs = parser.documents(raw)
    return docs, parser.errors


def validate_documents(raw: object) -> list[EventsError]:
    """Every error in the ``mapreduce`` array (empty when valid)."""
    return parse_documents(raw)[1]


def merge_channels(docs: Iterable[DocumentSpec]) -> dict[str, ChannelSpec]:
    """Channels of all documents merged by name, in document order."""
    merged: dict[str, ChannelSpec] = {}
    for doc in docs:
        for ch in doc.channels:
            target = merged.setdefault(ch.name, ChannelSpec(ch.name))
            target.maps.extend(ch.maps)
            target.reductions.extend(ch.reductions)
    return merged
