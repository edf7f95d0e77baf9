"""API access control: `none` (loopback only) or `kubernetes` (TokenReview + SubjectAccessReview).

Each route declares the Kubernetes action it is equivalent to, e.g.
`Depends(authorize("patch", "jobs", group="caravan.dev"))`; in `kubernetes` mode the
caller's bearer token must be valid and their own RBAC must allow that action in the
served namespace, so the API never lets anyone do more than kubectl would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from caravan.api.access import ANONYMOUS_LOCAL, AccessReviewer, Caller, TooManyFailures
from caravan.api.errors import ApiError
from caravan.api.state import AppState
from caravan.kube.client import KubeError

__all__ = ["ANONYMOUS_LOCAL", "AccessReviewer", "Caller", "authorize", "check_access"]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _reviewer(state: AppState) -> AccessReviewer:
    if state.auth is None:
        raise ApiError(503, "access control is not running yet")
    return state.auth


async def authenticate(request: Request) -> Caller:
    """Who the caller is (401 without a valid bearer token); no permission is checked."""
    state: AppState = request.app.state.caravan
    if state.config.auth_mode == "none":
        return ANONYMOUS_LOCAL
    reviewer = _reviewer(state)
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'")
    client = request.client.host if request.client else ""
    try:
        who = await reviewer.caller(token, client)
    except TooManyFailures as exc:
        raise ApiError(429, str(exc)) from exc
    except KubeError as exc:
        raise ApiError(503, f"could not review the token: {exc.message}") from exc
    if who is None:
        raise ApiError(401, "invalid or expired bearer token")
    return who


async def check_access(
    request: Request,
    verb: str,
    resource: str,
    *,
    group: str = "",
    subresource: str = "",
    name: str = "",
) -> Caller:
    """Raises 401/403 unless the caller may do `verb` on `resource` in the namespace."""
    state: AppState = request.app.state.caravan
    if state.config.auth_mode == "none":
        return ANONYMOUS_LOCAL
    reviewer = _reviewer(state)
    who = await authenticate(request)
    try:
        ok, reason = await reviewer.allowed(who, verb, resource, group, subresource, name)
    except KubeError as exc:
        raise ApiError(503, f"could not review access: {exc.message}") from exc
    if not ok:
        target = f"{resource}/{subresource}" if subresource else resource
        if group:
            target += f".{group}"
        raise ApiError(
            403,
            f"{who.username} may not {verb} {target} in namespace {state.config.namespace}"
            + (f": {reason}" if reason else ""),
        )
    request.state.caller = who
    return who


async def check_path(request: Request, verb: str, path: str) -> Caller:
    """Raises 401/403 unless the caller may do `verb` on the non-resource URL `path` (as
    kube-rbac-proxy checks /metrics): ClusterRole rules with `nonResourceURLs`."""
    state: AppState = request.app.state.caravan
    if state.config.auth_mode == "none":
        return ANONYMOUS_LOCAL
    reviewer = _reviewer(state)
    who = await authenticate(request)
    try:
        ok, reason = await reviewer.allowed_path(who, verb, path)
    except KubeError as exc:
        raise ApiError(503, f"could not review access: {exc.message}") from exc
    if not ok:
        raise ApiError(
            403, f"{who.username} may not {verb} {path}" + (f": {reason}" if reason else "")
        )
    return who


def authorize(
    verb: str, resource: str, *, group: str = "", subresource: str = ""
) -> Callable[[Request], Awaitable[Caller]]:
    """A route dependency: the caller must be allowed `verb` on `resource`."""

    async def dependency(request: Request) -> Caller:
        return await check_access(request, verb, resource, group=group, subresource=subresource)

    return dependency
