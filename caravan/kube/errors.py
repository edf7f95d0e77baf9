"""Typed failures of Kubernetes calls, raised by the client.

`KubeError(status, reason, body)` builds the subclass that names the failure, so code
(and the fakes of unit tests) that raise by status get the same types the client raises:

| class         | status                                  | means for a caller                  |
|---------------|-----------------------------------------|-------------------------------------|
| `NotFound`    | 404                                     | the object is absent                |
| `Conflict`    | 409 (`AlreadyExists` is a subclass)     | stale read or created meanwhile     |
| `Gone`        | 410                                     | a watch or list version expired     |
| `Forbidden`   | 403                                     | RBAC refused our ServiceAccount     |
| `Invalid`     | 400, 422                                | Kubernetes refused what we sent     |
| `Unavailable` | 0 (unreachable), 429, 5xx               | the cluster is away or not ready    |
"""

from __future__ import annotations

from typing import Any


class KubeError(Exception):
    """A non-2xx answer from kube-apiserver, or the cluster being unreachable (status 0)."""

    def __new__(cls, status: int, reason: str = "", body: Any = None) -> KubeError:
        if cls is KubeError:
            cls = _class_for(status, body)
        return super().__new__(cls)

    def __init__(self, status: int, reason: str = "", body: Any = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body
        # Seconds the server asked us to wait (its Retry-After), when it said.
        self.retry_after: float | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (KubeError, (self.status, self.reason, self.body))

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and self.body.get("message"):
            return str(self.body["message"])
        return self.reason

    @property
    def causes(self) -> list[dict[str, Any]]:
        """The `details.causes` of a Status body (which field was refused, and why)."""
        if not isinstance(self.body, dict):
            return []
        causes = (self.body.get("details") or {}).get("causes") or []
        return [c for c in causes if isinstance(c, dict)]


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubeError):
    """409: the resourceVersion or precondition we sent is stale."""


class AlreadyExists(Conflict):
    """409 AlreadyExists: someone created the object first."""


class Gone(KubeError):
    """410: the resourceVersion asked for is older than etcd keeps (compaction)."""


class Forbidden(KubeError):
    """403: our credentials may not do this."""


class Invalid(KubeError):
    """400 or 422: Kubernetes refuses the request as sent (not worth retrying)."""


class Unavailable(KubeError):
    """The cluster is unreachable or not ready: status 0, 429, or any 5xx."""


def _class_for(status: int, body: Any) -> type[KubeError]:
    if status == 404:
        return NotFound
    if status == 409:
        reason = body.get("reason") if isinstance(body, dict) else None
        return AlreadyExists if reason == "AlreadyExists" else Conflict
    if status == 410:
        return Gone
    if status == 403:
        return Forbidden
    if status in (400, 422):
        return Invalid
    if status == 0 or status == 429 or status >= 500:
        return Unavailable
    return KubeError


def unreachable(cause: BaseException) -> Unavailable:
    """The error for a call that never got an answer (refused, reset, timed out)."""
    error = KubeError(0, f"cluster unreachable: {cause!r}")
    assert isinstance(error, Unavailable)
    return error
