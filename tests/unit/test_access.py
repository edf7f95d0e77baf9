"""The access reviewer: TokenReview and SubjectAccessReview answers, cached briefly."""

from __future__ import annotations

from typing import Any

import pytest

from caravan.api.access import DECISION_TTL_SECONDS, TOKEN_TTL_SECONDS, AccessReviewer, Caller
from caravan.kube.errors import KubeError, Unavailable
from tests.unit.fakekube import FakeKube

TOKENS = "/apis/authentication.k8s.io/v1/tokenreviews"
REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def reviewer(allowed_verbs: set[str]) -> tuple[AccessReviewer, FakeKube, Clock, list[Any]]:
    kube, clock, asked = FakeKube(), Clock(), []

    def token_review(body: dict[str, Any]) -> dict[str, Any]:
        token = body["spec"]["token"]
        user = {"username": "alice", "uid": "1", "groups": ["dev"], "extra": {"k": ["v"]}}
        return {"status": {"authenticated": token == "good", "user": user}}

    def access_review(body: dict[str, Any]) -> dict[str, Any]:
        asked.append(body["spec"])
        verb = body["spec"]["resourceAttributes"]["verb"]
        if verb in allowed_verbs:
            return {"status": {"allowed": True}}
        return {"status": {"allowed": False, "reason": "no RBAC rule"}}

    kube.responses = {TOKENS: token_review, REVIEWS: access_review}
    return AccessReviewer(kube.client, "ns", clock=clock), kube, clock, asked


def count(kube: FakeKube, path: str) -> int:
    return sum(p == path for _, p in kube.calls)


async def test_a_token_is_reviewed_once_per_ttl_and_never_kept() -> None:
    access, kube, clock, _ = reviewer(set())
    who = await access.caller("good")
    assert who == Caller("alice", "1", ("dev",), (("k", ("v",)),))
    assert await access.caller("good") == who
    assert count(kube, TOKENS) == 1
    assert not any("good" in key for key in access._tokens)  # hashed
    clock.now += TOKEN_TTL_SECONDS
    await access.caller("good")
    assert count(kube, TOKENS) == 2


async def test_an_invalid_token_is_none_and_cached_too() -> None:
    access, kube, _, _ = reviewer(set())
    assert await access.caller("bad") is None
    assert await access.caller("bad") is None
    assert count(kube, TOKENS) == 1


async def test_decisions_are_asked_as_the_caller_and_cached_per_action() -> None:
    access, kube, clock, asked = reviewer({"get"})
    who = Caller("alice", "1", ("dev",))
    assert await access.allowed(who, "get", "pods", "", "log", "") == (True, "")
    assert await access.allowed(who, "get", "pods", "", "log", "") == (True, "")
    assert count(kube, REVIEWS) == 1
    denied = await access.allowed(who, "delete", "secrets", "", "", "s1")
    assert denied == (False, "no RBAC rule")
    attributes = asked[-1]["resourceAttributes"]
    assert attributes == {
        "namespace": "ns",
        "verb": "delete",
        "group": "",
        "resource": "secrets",
        "name": "s1",
    }
    assert asked[-1]["user"] == "alice" and asked[-1]["groups"] == ["dev"]
    clock.now += DECISION_TTL_SECONDS
    await access.allowed(who, "get", "pods", "", "log", "")
    assert count(kube, REVIEWS) == 3


async def test_a_cluster_away_is_raised_not_cached() -> None:
    access, kube, _, _ = reviewer({"get"})
    kube.fail("create", KubeError(0, "connection refused"))
    with pytest.raises(Unavailable):
        await access.caller("good")
    assert await access.caller("good") is not None
