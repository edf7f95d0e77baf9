"""Validation errors for events documents.

Every error carries a JSON-path-like location (``mapreduce[0].event.game.maps[1].where.$gt``)
so that ``POST /v1/events`` can answer 422 with every problem at once, not just the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventsError:
    """One problem in an events document: where it is and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class EventsValidationError(ValueError):
    """Raised by :func:`caravan.events.compile_documents` when documents are invalid."""

    def __init__(self, errors: Sequence[EventsError]) -> None:
        self.errors: tuple[EventsError, ...] = tuple(errors)
        super().__init__(format_errors(self.errors))


def format_errors(errors: Sequence[EventsError]) -> str:
    """One line per error; this is the ``errors`` string of ``GET /v1/events``."""
    return "\n".join(str(e) for e in errors)
