"""Domain errors: what a service refuses, in words, without HTTP or Kubernetes.

Services and pure logic raise these; the HTTP layer turns each class into its status in
one table (caravan.api.errors). The sentences for "not found" are made here, once.
"""

from __future__ import annotations

import json
from typing import Any

# Names quoted in messages are cut to this many characters: messages stay readable.
_MAX_QUOTED = 60


def quote(name: str) -> str:
    """A name as JSON, shortened: safe to put in a message whatever it holds."""
    text = json.dumps(name, ensure_ascii=True)
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 2] + '…"'


class DomainError(Exception):
    """Something a caller asked that Caravan refuses; `message` is one sentence."""

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class MalformedError(DomainError):
    """The request cannot be read (a bad id, a body that is not what it must be)."""


class NotFoundError(DomainError):
    """What the request names does not exist (or is not Caravan's to show)."""


class ConflictError(DomainError):
    """The current state forbids it (a stopped job, a started job, a foreign object)."""


class InvalidError(DomainError):
    """Well-formed but refused by the rules; `details` lists every problem."""


class UnavailableError(DomainError):
    """Not possible right now; the caller may try again shortly."""


def no_such(kind: str, name: str) -> NotFoundError:
    """The one "not found" sentence: `no job "web"`, `no allocation "web-g-1"`."""
    return NotFoundError(f"no {kind} {quote(name)}")


class ClusterRefusal(DomainError):
    """Kubernetes refused what a service asked, told in the service's own words; the
    answer's status is the one Kubernetes' error maps to (`cause`)."""

    def __init__(self, message: str, cause: Exception) -> None:
        super().__init__(message)
        self.cause = cause
