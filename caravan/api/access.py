"""Who a bearer token is (TokenReview) and what they may do (SubjectAccessReview), cached."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from caravan.kube.client import KubeClient

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
