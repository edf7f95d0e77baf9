"""Kubernetes timestamps as the API shows them."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339_utc(timestamp: str) -> str:
    """Kubernetes timestamps as RFC 3339 in UTC with a `Z` (`2026-01-01T00:00:00Z`).

    An empty or unreadable timestamp stays as given ("" for a pod the API server has not
    stamped yet), rather than inventing a time.
    """
    if not timestamp:
        return ""
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    utc = parsed.astimezone(UTC)
    spec = "seconds" if utc.microsecond == 0 else "microseconds"
    return utc.isoformat(timespec=spec).replace("+00:00", "Z")
