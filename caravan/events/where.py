"""Compile where clauses once into predicate closures.

A compiled clause is ``match(key, value, env) -> bool``. Bindings are not collected in a
fresh dict per event: each binding name gets a slot index at compile time and a match
writes captured values into ``env`` (a list owned by the map or reduction, reused for
every event). That keeps the hot path free of allocations. Slots written by a branch that
then fails are harmless: templates only read bindings the validator proved are bound on
every successful path, and a successful path always rewrites them.

Closures are specialised for the common shapes (a short key with literals and captures,
one or two value tests) because every Python-level call costs ~50 ns and the engine
budget is a few microseconds per event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from caravan.events.spec import Binding, JsonScalar, Term, WhereSpec

Env = list[Any]
Matcher = Callable[[Sequence[Any], Any, Env], bool]
ValuePred = Callable[[Any], bool]

NUMBER_TYPES: tuple[type, ...] = (int, float)


class Slots:
    """Binding name -> env index, shared by a clause tree and the templates using it."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def slot(self, name: str) -> int:
        return self.index.setdefault(name, len(self.index))

    def new_env(self) -> Env:
        return [None] * len(self.index)


def _always(key: Sequence[Any], value: Any, env: Env) -> bool:
    return True


# -- value predicates -----------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return type(v) in NUMBER_TYPES


def _eq_pred(x: JsonScalar, case_sensitive: bool) -> ValuePred:
    if x is None:
        return lambda v: v is None
    if type(x) is bool:
        return lambda v: v is x
    if isinstance(x, str):
        if case_sensitive:
            return lambda v: type(v) is str and v == x
        xf = x.casefold()
        return lambda v: type(v) is str and v.casefold() == xf
    return lambda v: type(v) in NUMBER_TYPES and v == x


def _order_pred(op: str, x: JsonScalar) -> ValuePred:
    # Ordering compares numbers with numbers and strings with strings (code point order,
    # always case-sensitive); any other pairing does not match.
    if isinstance(x, str):
        xs: str = x
        if op == "$gt":
            return lambda v: type(v) is str and v > xs
        if op == "$gte":
            return lambda v: type(v) is str and v >= xs
        if op == "$lt":
            return lambda v: type(v) is str and v < xs
        return lambda v: type(v) is str and v <= xs
    assert isinstance(x, int | float)
    xn: float = x
    if op == "$gt":
        return lambda v: type(v) in NUMBER_TYPES and v > xn
    if op == "$gte":
        return lambda v: type(v) in NUMBER_TYPES and v >= xn
    if op == "$lt":
        return lambda v: type(v) in NUMBER_TYPES and v < xn
    return lambda v: type(v) in NUMBER_TYPES and v <= xn


def _in_pred(items: Sequence[JsonScalar], case_sensitive: bool) -> ValuePred:
    strings = frozenset(
        (s if case_sensitive else s.casefold()) for s in items if isinstance(s, str)
    )
    numbers = frozenset(n for n in items if type(n) in NUMBER_TYPES)
    others = tuple(o for o in items if o is None or type(o) is bool)

    def pred(v: Any) -> bool:
        t = type(v)
        if t is str:
            return (v if case_sensitive else v.casefold()) in strings
        if t in NUMBER_TYPES:
            return v in numbers
        return any(v is o for o in others)

    return pred


def _search_pred(needle: str, case_sensitive: bool) -> ValuePred:
    if case_sensitive:
        return lambda v: type(v) is str and needle in v
    nf = needle.casefold()
    return lambda v: type(v) is str and nf in v.casefold()


def _search_in_pred(haystacks: Sequence[str], case_sensitive: bool) -> ValuePred:
    # $searchIn is the mirror of $search: the event value must be a substring of one of
    # the operand strings (e.g. {"$searchIn": ["red team", "blue team"]} matches "red").
    hs = tuple(h if case_sensitive else h.casefold() for h in haystacks)
    if case_sensitive:
        return lambda v: type(v) is str and any(v in h for h in hs)
    return lambda v: type(v) is str and any(v.casefold() in h for h in hs)


def _type_pred(vtype: str) -> ValuePred:
    if vtype == "string":
        return lambda v: type(v) is str
    return lambda v: type(v) in NUMBER_TYPES


def _all_values(preds: Sequence[ValuePred]) -> ValuePred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p0, p1 = preds
        return lambda v: p0(v) and p1(v)
    ps = tuple(preds)
    return lambda v: all(p(v) for p in ps)


def _value_pred(spec: WhereSpec) -> ValuePred | None:
    """All tests on the event's value, or None when the clause has none."""
    preds: list[ValuePred] = []
    implied: set[str] = set()  # types the other tests already require
    cs = spec.case_sensitive
    for op, x in spec.comparisons:
        if op in ("$eq", "$neq"):
            p = _eq_pred(x, cs)
            if op == "$neq":
                preds.append(lambda v, p=p: not p(v))  # type: ignore[misc]
            else:
                preds.append(p)
                if isinstance(x, str):
                    implied.add("string")
                elif type(x) in NUMBER_TYPES:
                    implied.add("number")
        else:
            preds.append(_order_pred(op, x))
            implied.add("string" if isinstance(x, str) else "number")
    if spec.in_ is not None:
        preds.append(_in_pred(spec.in_, cs))
    if spec.search is not None:
        preds.append(_search_pred(spec.search, cs))
        implied.add("string")
    if spec.search_in is not None:
        preds.append(_search_in_pred(spec.search_in, cs))
        implied.add("string")
    if spec.type is not None and spec.type not in implied:
        # Cheap test first: it rejects most mismatching events.
        preds.insert(0, _type_pred(spec.type))
    return _all_values(preds) if preds else None


# -- key patterns -----------------------------------------------------------------------


def _key_matcher(pattern: Sequence[Term], slots: Slots) -> Matcher:
    n = len(pattern)
    lits = tuple((i, t) for i, t in enumerate(pattern) if not isinstance(t, Binding))
    caps = tuple((i, slots.slot(t.name)) for i, t in enumerate(pattern) if isinstance(t, Binding))
    if n == 1 and lits:
        ((_, l0),) = lits

        def m_lit1(key: Sequence[Any], value: Any, env: Env) -> bool:
            return len(key) == 1 and key[0] == l0

        return m_lit1
    if n == 1:
        ((_, s0),) = caps

        def m_cap1(key: Sequence[Any], value: Any, env: Env) -> bool:
            if len(key) != 1:
                return False
            env[s0] = key[0]
            return True

        return m_cap1
    if n == 2 and len(lits) == 1 and lits[0][0] == 0:
        ((_, l0),) = lits
        ((_, s1),) = caps

        def m_lit_cap(key: Sequence[Any], value: Any, env: Env) -> bool:
            if len(key) != 2 or key[0] != l0:
                return False
            env[s1] = key[1]
            return True

        return m_lit_cap

    def m_generic(key: Sequence[Any], value: Any, env: Env) -> bool:
        if len(key) != n:
            return False
        for i, lit in lits:
            if key[i] != lit:
                return False
        for i, s in caps:
            env[s] = key[i]
        return True

    return m_generic


def _all(parts: Sequence[Matcher]) -> Matcher:
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda k, v, e: a(k, v, e) and b(k, v, e)
    ps = tuple(parts)

    def m_all(key: Sequence[Any], value: Any, env: Env) -> bool:
        # A plain loop: all() over a generator costs a frame per call on the hot path.
        for p in ps:  # noqa: SIM110
            if not p(key, value, env):
                return False
        return True

    return m_all


def _any(branches: Sequence[Matcher]) -> Matcher:
    bs = tuple(branches)

    def m_any(key: Sequence[Any], value: Any, env: Env) -> bool:
        # First matching branch wins; its bindings are the ones kept.
        for b in bs:  # noqa: SIM110 (faster than any() over a generator)
            if b(key, value, env):
                return True
        return False

    return m_any


def compile_where(spec: WhereSpec, slots: Slots) -> Matcher:
    """Compile a validated clause; bindings are assigned slots in ``slots``."""
    parts: list[Matcher] = []
    if spec.key is not None:
        parts.append(_key_matcher(spec.key, slots))
    vpred = _value_pred(spec)
    if spec.name is not None:
        s = slots.slot(spec.name)
        if vpred is None:

            def capture(key: Sequence[Any], value: Any, env: Env) -> bool:
                env[s] = value
                return True

            parts.append(capture)
        else:
            p = vpred

            def test_capture(key: Sequence[Any], value: Any, env: Env) -> bool:
                if not p(value):
                    return False
                env[s] = value
                return True

            parts.append(test_capture)
    elif vpred is not None:
        q = vpred
        parts.append(lambda k, v, e: q(v))
    parts.extend(compile_where(b, slots) for b in spec.all_of)
    if spec.any_of:
        parts.append(_any([compile_where(b, slots) for b in spec.any_of]))
    return _all(parts)


def untyped_value_bindings(spec: WhereSpec) -> set[str]:
    """Names bound to the event's value (``name``) anywhere in the clause tree, except
    where the same clause has a ``type``: those are known to be strings or numbers."""
    names = {spec.name} if spec.name is not None and spec.type is None else set()
    for b in (*spec.all_of, *spec.any_of):
        names |= untyped_value_bindings(b)
    return names


def first_literal(spec: WhereSpec) -> tuple[int, Any] | None:
    """(key length, first key literal) every match requires, for dispatch; None if the
    clause has no top-level key or the key starts with a binding."""
    if spec.key is None or isinstance(spec.key[0], Binding):
        return None
    return len(spec.key), spec.key[0]
