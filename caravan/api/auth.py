"""API access control: `none` (loopback only) or `kubernetes` (TokenReview + SubjectAccessReview).

Each route declares the Kubernetes action it is equivalent to, e.g.
`Depends(authorize("patch", "jobs", group="caravan.dev"))`; in `kubernetes` mode the
caller's bearer token must be valid and their own RBAC must allow that action in the
served namespace, so the API never lets anyone do more than kubectl would.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from caravan.api.errors import ApiError
from caravan.api.state import AppState
from caravan.kube.client import KubeClient, KubeError

TOKEN_TTL_SECONDS = 30.0
DECISION_TTL_SECONDS = 10.0


@dataclass(frozen=True)
class Caller:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


ANONYMOUS_LOCAL = Caller("caravan:local")


@dataclass
class AccessReviewer:
    """Asks kube-apiserver who a token is and what they may do, with short-lived caches."""

    kube: KubeClient
    namespace: str
    clock: Callable[[], float] = time.monotonic
    _tokens: dict[str, tuple[float, Caller | None]] = field(default_factory=dict)
    _decisions: dict[tuple[Any, ...], tuple[float, bool, str]] = field(default_factory=dict)

    async def caller(self, token: str) -> Caller | None:
        key = hashlib.sha256(token.encode()).hexdigest()  # never keep tokens themselves
        cached = self._tokens.get(key)
        if cached and cached[0] > self.clock():
            return cached[1]
        review = await self.kube.create(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )
        status = review.get("status") or {}
        who: Caller | None = None
        if status.get("authenticated"):
            user = status.get("user") or {}
            who = Caller(
                username=str(user.get("username", "")),
                uid=str(user.get("uid", "")),
                groups=tuple(user.get("groups") or ()),
                extra=tuple(sorted((k, tuple(v)) for k, v in (user.get("extra") or {}).items())),
            )
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[key] = (self.clock() + TOKEN_TTL_SECONDS, who)
        return who

    async def allowed(
        self, who: Caller, verb: str, resource: str, group: str, subresource: str, name: str
    ) -> tuple[bool, str]:
        key = (who, verb, resource, group, subresource, name)
        cached = self._decisions.get(key)
        if cached and cached[0] > self.clock():
            return cached[1], cached[2]
        attributes = {
            "namespace": self.namespace,
            "verb": verb,
            "group": group,
            "resource": resource,
        }
        if subresource:
            attributes["subresource"] = subresource
        if name:
            attributes["name"] = name
        review = await self.kube.create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": who.username,
                    "uid": who.uid,
                    "groups": list(who.groups),
                    "extra": {k: list(v) for k, v in who.extra},
                    "resourceAttributes": attributes,
                },
            },
        )
        status = review.get("status") or {}
        decision = bool(status.get("allowed")) and not status.get("denied")
        reason = str(status.get("reason") or "")
        if len(self._decisions) > 10_000:
            self._decisions.clear()
        self._decisions[key] = (self.clock() + DECISION_TTL_SECONDS, decision, reason)
        return decision, reason


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(request: Request) -> Caller:
    """Who the caller is (401 without a valid bearer token); no permission is checked."""
    state: AppState = request.app.state.caravan
    if state.config.auth_mode == "none":
        return ANONYMOUS_LOCAL
    reviewer: AccessReviewer = state.services["auth"]
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'")
    try:
        who = await reviewer.caller(token)
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
    reviewer: AccessReviewer = state.services["auth"]
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


def authorize(
    verb: str, resource: str, *, group: str = "", subresource: str = ""
) -> Callable[[Request], Awaitable[Caller]]:
    """A route dependency: the caller must be allowed `verb` on `resource`."""

    async def dependency(request: Request) -> Caller:
        return await check_access(request, verb, resource, group=group, subresource=subresource)

    return dependency


async def start_auth(state: AppState) -> None:
    if state.config.auth_mode == "kubernetes":
        state.services["auth"] = AccessReviewer(state.kube, state.config.namespace)
