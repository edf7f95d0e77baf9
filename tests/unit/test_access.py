"""The access reviewer: TokenReview and SubjectAccessReview answers, cached briefly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from caravan.api.access import (
    DECISION_TTL_SECONDS,
    FAILED_REVIEW_WINDOW_SECONDS,
    FAILED_REVIEWS_PER_WINDOW,
    TOKEN_TTL_SECONDS,
    AccessReviewer,
    Caller,
    TooManyFailures,
)
from caravan.kube.errors import KubeError, Unavailable
from tests.unit.fakekube import FakeKube

TOKENS = "/apis/authentication.k8s.io/v1/tokenreviews"
REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def reviewer(
    allowed_verbs: set[str], capacity: int = 10_000, audience: str | None = None
) -> tuple[AccessReviewer, FakeKube, Clock, list[Any]]:
    kube, clock, asked = FakeKube(), Clock(), []

    def token_review(body: dict[str, Any]) -> dict[str, Any]:
        token = body["spec"]["token"]
        user = {"username": "alice", "uid": "1", "groups": ["dev"], "extra": {"k": ["v"]}}
        asked.append(body["spec"])
        audiences = (
            ["caravan"]
            if token == "good" and "caravan" in body["spec"].get("audiences", ["caravan"])
            else []
        )
        return {
            "status": {
                "authenticated": token in ("good", "other"),
                "user": user,
                "audiences": audiences,
            }
        }

    def access_review(body: dict[str, Any]) -> dict[str, Any]:
        asked.append(body["spec"])
        attributes = body["spec"].get("resourceAttributes") or body["spec"]["nonResourceAttributes"]
        verb = attributes["verb"]
        if verb in allowed_verbs:
            return {"status": {"allowed": True}}
        return {"status": {"allowed": False, "reason": "no RBAC rule"}}

    kube.responses = {TOKENS: token_review, REVIEWS: access_review}
    access = AccessReviewer(kube.client, "ns", clock=clock, capacity=capacity, audience=audience)
    return access, kube, clock, asked


def count(kube: FakeKube, path: str) -> int:
    return sum(p == path for _, p in kube.calls)


async def test_a_token_is_reviewed_once_per_ttl_and_never_kept() -> None:
    access, kube, clock, _ = reviewer(set())
    who = await access.caller("good")
    assert who == Caller("alice", "1", ("dev",), (("k", ("v",)),))
    assert await access.caller("good") == who
    assert count(kube, TOKENS) == 1
    assert not any("good" in key for key in access._tokens._entries)  # hashed
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


async def test_a_flood_of_tokens_evicts_the_oldest_not_everyone() -> None:
    access, kube, _, _ = reviewer(set(), capacity=100)
    await access.caller("good")
    for i in range(99):
        await access.caller(f"bad-{i}", client=f"10.0.0.{i}")
    assert await access.caller("good") is not None  # used lately: kept
    for i in range(99, 150):
        await access.caller(f"bad-{i}", client=f"10.0.1.{i}")
    reviews = count(kube, TOKENS)
    assert await access.caller("good") is not None  # still cached: no review
    assert await access.caller("bad-149", client="10.0.1.149") is None
    assert count(kube, TOKENS) == reviews
    # Unused while 100 others came: the oldest goes, the others stay.
    for i in range(150, 250):
        await access.caller(f"bad-{i}", client=f"10.0.2.{i}")
    reviews = count(kube, TOKENS)
    await access.caller("good")
    await access.caller("bad-249", client="10.0.2.249")
    assert count(kube, TOKENS) == reviews + 1
    assert len(access._tokens) == 100


async def test_identical_reviews_asked_at_once_are_sent_once() -> None:
    access, kube, _, _ = reviewer({"get"})
    who = Caller("alice")
    answers = await asyncio.gather(
        *(access.allowed(who, "get", "pods", "", "", "") for _ in range(20)),
        *(access.caller("good") for _ in range(20)),
    )
    assert count(kube, REVIEWS) == 1
    assert count(kube, TOKENS) == 1
    assert answers[0] == (True, "") and answers[-1] is not None


async def test_failed_token_reviews_are_limited_per_client_address() -> None:
    access, kube, clock, _ = reviewer(set())
    for i in range(FAILED_REVIEWS_PER_WINDOW):
        assert await access.caller(f"guess-{i}", client="203.0.113.9") is None
    with pytest.raises(TooManyFailures):
        await access.caller("guess-next", client="203.0.113.9")
    assert count(kube, TOKENS) == FAILED_REVIEWS_PER_WINDOW  # the refusal cost no review
    # Another address, and a known token, are not affected.
    assert await access.caller("good", client="198.51.100.1") is not None
    clock.now += FAILED_REVIEW_WINDOW_SECONDS
    assert await access.caller("guess-next", client="203.0.113.9") is None


async def test_an_audience_is_asked_for_and_checked() -> None:
    access, _, _, asked = reviewer(set(), audience="caravan")
    assert await access.caller("good") is not None
    assert asked[-1]["audiences"] == ["caravan"]
    # Authenticated, but not for this audience.
    assert await access.caller("other") is None


async def test_non_resource_urls_are_reviewed_as_such() -> None:
    access, _, _, asked = reviewer({"get"})
    assert await access.allowed_path(Caller("alice"), "get", "/metrics") == (True, "")
    assert asked[-1]["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}
    assert "resourceAttributes" not in asked[-1]
