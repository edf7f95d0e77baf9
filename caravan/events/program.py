"""Compile validated documents into an immutable program the engine runs.

Everything that can be decided before the first event is decided here: where clauses
become closures, key templates become tuple builders, maps are indexed by the first
literal of their key pattern, and each map is linked only to the reductions whose key
pattern can possibly match its output template.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from caravan.events.document import merge_channels, parse_documents
from caravan.events.errors import EventsValidationError
from caravan.events.spec import Binding, MapSpec, ReductionSpec, Term
from caravan.events.where import (
    Env,
    Matcher,
    Slots,
    compile_where,
    first_literal,
    untyped_value_bindings,
)

# Builds a key tuple from the env; None when a value-derived element is not a
# string/number (an object or a list cannot be part of a key).
KeyBuilder = Callable[[Env], tuple[Any, ...] | None]

_KEY_SCALARS: tuple[type, ...] = (str, int, float)


def _builder(template: Sequence[Term], slots: Slots, checked: set[str]) -> KeyBuilder:
    """Precompute a template. ``checked`` names bindings that may hold the event value and
    therefore need a type check before becoming a key element."""
    fills = tuple(
        (i, slots.slot(t.name), t.name in checked)
        for i, t in enumerate(template)
        if isinstance(t, Binding)
    )
    if not fills:
        const = tuple(template)
        return lambda env: const
    if any(c for _, _, c in fills):
        proto = list(template)

        def build_checked(env: Env) -> tuple[Any, ...] | None:
            buf = proto.copy()
            for i, s, check in fills:
                v = env[s]
                if check and type(v) not in _KEY_SCALARS:
                    return None
                buf[i] = v
            return tuple(buf)

        return build_checked
    n = len(template)
    if n == 1:
        s0 = fills[0][1]
        return lambda env: (env[s0],)
    if n == 2 and len(fills) == 1:
        i, s, _ = fills[0]
        other = template[1 - i]
        if i == 0:
            return lambda env: (env[s], other)
        return lambda env: (other, env[s])
    if n == 2:
        s0, s1 = fills[0][1], fills[1][1]
        return lambda env: (env[s0], env[s1])
    proto2 = list(template)
    plain = tuple((i, s) for i, s, _ in fills)

    def build(env: Env) -> tuple[Any, ...]:
        buf = proto2.copy()
        for i, s in plain:
            buf[i] = env[s]
        return tuple(buf)

    return build


@dataclass(frozen=True, slots=True)
class CompiledReduction:
    channel: str
    id: str
    spec: ReductionSpec
    match: Matcher
    slots: Slots
    build_key: KeyBuilder
    period_ms: int


@dataclass(frozen=True, slots=True)
class CompiledMap:
    channel: str
    id: str
    spec: MapSpec
    match: Matcher
    slots: Slots
    build_key: KeyBuilder
    value_slot: int | None  # the env slot holding the output value, or None for a literal
    literal: Any
    reductions: tuple[int, ...]  # indexes in ChannelProgram.reductions it may feed


@dataclass(frozen=True, slots=True)
class ChannelProgram:
    name: str
    maps: tuple[CompiledMap, ...]
    reductions: tuple[CompiledReduction, ...]
    # Map dispatch: maps whose pattern starts with that literal (plus every map that
    # could match any first element), in declaration order ...
    by_first: dict[Any, tuple[int, ...]]
    # ... and the maps to try when the first element is no map's literal.
    fallback: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled, immutable set of documents. The engine keeps the mutable windows."""

    documents: list[Any]
    channels: dict[str, ChannelProgram]

    @property
    def reductions(self) -> list[CompiledReduction]:
        return [r for ch in self.channels.values() for r in ch.reductions]


def _compatible(template: Sequence[Term], r: ReductionSpec) -> bool:
    """Could a map output with this key template match the reduction's top-level key?"""
    pattern = r.where.key
    if pattern is None:
        return True
    if len(pattern) != len(template):
        return False
    return all(
        isinstance(p, Binding) or isinstance(t, Binding) or p == t
        for p, t in zip(pattern, template, strict=True)
    )


def _compile_reduction(channel: str, spec: ReductionSpec) -> CompiledReduction:
    slots = Slots()
    match = compile_where(spec.where, slots)
    build = _builder(spec.key, slots, untyped_value_bindings(spec.where))
    return CompiledReduction(
        channel=channel,
        id=spec.id,
        spec=spec,
        match=match,
        slots=slots,
        build_key=build,
        period_ms=spec.period_ms,
    )


def _compile_map(
    channel: str, spec: MapSpec, reductions: Sequence[CompiledReduction]
) -> CompiledMap:
    slots = Slots()
    match = compile_where(spec.where, slots)
    build = _builder(spec.key, slots, untyped_value_bindings(spec.where))
    value_slot = slots.slot(spec.value.name) if isinstance(spec.value, Binding) else None
    targets = tuple(i for i, r in enumerate(reductions) if _compatible(spec.key, r.spec))
    return CompiledMap(
        channel=channel,
        id=spec.id,
        spec=spec,
        match=match,
        slots=slots,
        build_key=build,
        value_slot=value_slot,
        literal=None if value_slot is not None else spec.value,
        reductions=targets,
    )


def _dispatch(maps: Sequence[CompiledMap]) -> tuple[dict[Any, tuple[int, ...]], tuple[int, ...]]:
    firsts: dict[Any, list[int]] = {}
    for m in maps:
        fl = first_literal(m.spec.where)
        if fl is not None:
            firsts.setdefault(fl[1], [])
    fallback: list[int] = []
    for i, m in enumerate(maps):
        fl = first_literal(m.spec.where)
        if fl is None:
            fallback.append(i)
            for lst in firsts.values():
                lst.append(i)
        else:
            firsts[fl[1]].append(i)
    return {k: tuple(v) for k, v in firsts.items()}, tuple(fallback)


def compile_documents(docs: Any) -> Program:
    """Validate and compile the ``mapreduce`` array; raises EventsValidationError listing
    every error when it is invalid."""
    specs, errors = parse_documents(docs)
    if errors:
        raise EventsValidationError(errors)
    channels: dict[str, ChannelProgram] = {}
    for name, ch in merge_channels(specs).items():
        reductions = tuple(_compile_reduction(name, r) for r in ch.reductions)
        maps = tuple(_compile_map(name, m, reductions) for m in ch.maps)
        by_first, fallback = _dispatch(maps)
        channels[name] = ChannelProgram(
            name=name, maps=maps, reductions=reductions, by_first=by_first, fallback=fallback
        )
    # A private copy: later edits to the caller's objects must not change what is served.
    return Program(documents=copy.deepcopy(docs), channels=channels)
