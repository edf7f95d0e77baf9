"""The typed, immutable form of events documents (what the parser produces).

Kept apart from the parser so the compiler (`program`, `where`) depends on the shapes
only, not on how they were read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

Scalar = str | int | float
JsonScalar = str | int | float | bool | None

SUPPORTED_MAJOR_VERSION: Final = "1"
SOURCES: Final = frozenset({"userinput"})
OPERATIONS: Final = ("$count", "$sum", "$min", "$max", "$average")
COMPARISONS: Final = ("$eq", "$neq", "$gt", "$gte", "$lt", "$lte")
WHERE_FIELDS: Final = frozenset(
    {
        "key",
        "name",
        "type",
        *COMPARISONS,
        "$in",
        "$search",
        "$searchIn",
        "$caseSensitive",
        "$or",
        "$and",
    }
)
MAP_FIELDS: Final = frozenset({"id", "source", "where", "key", "value"})
REDUCTION_FIELDS: Final = frozenset({"id", "where", "key", "value", "period"})
DOCUMENT_FIELDS: Final = frozenset({"version", "event"})
CHANNEL_FIELDS: Final = frozenset({"maps", "reductions"})
# A day: longer windows would hold viewer input (and memory) for longer than is useful.
MAX_PERIOD_MS: Final = 86_400_000

_BINDING = re.compile(r"^<([^<>]+)>$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class Binding:
    """A ``"<name>"`` placeholder: captures a value in a where clause, is substituted in
    a key or value template."""

    name: str

    def __str__(self) -> str:
        return f"<{self.name}>"


# An element of a key pattern or template: a literal string/number or a binding.
Term = Binding | str | int | float


@dataclass(frozen=True, slots=True)
class WhereSpec:
    """One where clause; every part present must hold (implicit AND)."""

    path: str
    key: tuple[Term, ...] | None = None
    name: str | None = None
    type: str | None = None
    comparisons: tuple[tuple[str, JsonScalar], ...] = ()
    in_: tuple[JsonScalar, ...] | None = None
    search: str | None = None
    search_in: tuple[str, ...] | None = None
    case_sensitive: bool = False
    all_of: tuple[WhereSpec, ...] = ()
    any_of: tuple[WhereSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class MapSpec:
    id: str
    path: str
    where: WhereSpec
    key: tuple[Term, ...]
    value: Any  # a Binding or any JSON literal
    source: str = "userinput"


@dataclass(frozen=True, slots=True)
class ReductionSpec:
    id: str
    path: str
    where: WhereSpec
    key: tuple[Term, ...]
    operations: tuple[str, ...]
    period_ms: int


@dataclass(slots=True)
class ChannelSpec:
    """All maps and reductions of one channel, merged across documents."""

    name: str
    maps: list[MapSpec] = field(default_factory=list)
    reductions: list[ReductionSpec] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    index: int
    version: str
    channels: tuple[ChannelSpec, ...]


def binding_name(value: object) -> str | None:
    """The name of a ``"<name>"`` string, else None."""
    if isinstance(value, str):
        m = _BINDING.match(value)
        if m:
            return m.group(1)
    return None
