"""Who a bearer token is (TokenReview) and what they may do (SubjectAccessReview), cached.

The caches are bounded LRUs with a time to live: a flood of new tokens evicts the oldest
entries one by one, never every caller at once. Identical reviews asked concurrently are
sent once and shared. A client address whose tokens keep failing review is refused (429)
for a while rather than costing the apiserver one TokenReview per guess.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from caravan.kube.client import KubeClient

TOKEN_TTL_SECONDS = 30.0
DECISION_TTL_SECONDS = 10.0
CACHE_ENTRIES = 10_000
# Failed TokenReviews one client address may cost in a window; beyond, 429 until it ends.
FAILED_REVIEWS_PER_WINDOW = 20
FAILED_REVIEW_WINDOW_SECONDS = 60.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class Caller:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


ANONYMOUS_LOCAL = Caller("caravan:local")


class TooManyFailures(Exception):
    """This client address's tokens failed review too often; retry after `retry_after`."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many invalid tokens from this address; retry in {retry_after:.0f}s")
        self.retry_after = retry_after


class LruCache(Generic[K, V]):
    """At most `capacity` entries, each valid `ttl` seconds; the least recently used goes
    first when full."""

    def __init__(self, capacity: int, ttl: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self.clock():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    def put(self, key: K, value: V, expires: float | None = None) -> None:
        """`expires`: when the entry ends (clock time), if not `ttl` from now."""
        self._entries[key] = (self.clock() + self.ttl if expires is None else expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


class Coalescer(Generic[K, V]):
    """One call per key at a time: concurrent askers of the same key share its answer."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            value = await call()
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without askers
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._running[key]


@dataclass
class AccessReviewer:
    """Asks kube-apiserver who a token is and what they may do, with short-lived caches."""

    kube: KubeClient
    namespace: str
    # The audience tokens must be issued for (TokenReview `audiences`); None: the
    # apiserver's own.
    audience: str | None = None
    clock: Callable[[], float] = time.monotonic
    capacity: int = CACHE_ENTRIES
    _tokens: LruCache[str, Caller | None] = field(init=False)
    _decisions: LruCache[tuple[Any, ...], tuple[bool, str]] = field(init=False)
    _failures: LruCache[str, tuple[float, int]] = field(init=False)
    _token_reviews: Coalescer[str, Caller | None] = field(default_factory=Coalescer)
    _access_reviews: Coalescer[tuple[Any, ...], tuple[bool, str]] = field(default_factory=Coalescer)

    def __post_init__(self) -> None:
        self._tokens = LruCache(self.capacity, TOKEN_TTL_SECONDS, self.clock)
        self._decisions = LruCache(self.capacity, DECISION_TTL_SECONDS, self.clock)
        self._failures = LruCache(self.capacity, FAILED_REVIEW_WINDOW_SECONDS, self.clock)

    async def caller(self, token: str, client: str = "") -> Caller | None:
        """Who `token` is, None when it is not valid. Raises TooManyFailures when
        `client` (an address) sent too many invalid tokens lately."""
        key = hashlib.sha256(token.encode()).hexdigest()  # never keep tokens themselves
        found, cached = self._tokens.get(key)
        if found:
            return cached
        self._check_failures(client)
        who = await self._token_reviews.run(key, lambda: self._review_token(token))
        self._tokens.put(key, who)
        if who is None:
            self._note_failure(client)
        return who

    def _check_failures(self, client: str) -> None:
        found, entry = self._failures.get(client)
        if found and entry is not None and entry[1] >= FAILED_REVIEWS_PER_WINDOW:
            raise TooManyFailures(max(1.0, entry[0] + FAILED_REVIEW_WINDOW_SECONDS - self.clock()))

    def _note_failure(self, client: str) -> None:
        found, entry = self._failures.get(client)
        if found and entry is not None:
            # The window runs from the first failure: the entry keeps its start and end.
            start, count = entry
            self._failures.put(client, (start, count + 1), start + FAILED_REVIEW_WINDOW_SECONDS)
        else:
            self._failures.put(client, (self.clock(), 1))

    async def _review_token(self, token: str) -> Caller | None:
        spec: dict[str, Any] = {"token": token}
        if self.audience:
            spec["audiences"] = [self.audience]
        review = await self.kube.create(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
        )
        status = review.get("status") or {}
        if not status.get("authenticated"):
            return None
        if self.audience and self.audience not in (status.get("audiences") or []):
            return None
        user = status.get("user") or {}
        return Caller(
            username=str(user.get("username", "")),
            uid=str(user.get("uid", "")),
            groups=tuple(user.get("groups") or ()),
            extra=tuple(sorted((k, tuple(v)) for k, v in (user.get("extra") or {}).items())),
        )

    async def allowed(
        self, who: Caller, verb: str, resource: str, group: str, subresource: str, name: str
    ) -> tuple[bool, str]:
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
        return await self._decide(who, {"resourceAttributes": attributes})

    async def allowed_path(self, who: Caller, verb: str, path: str) -> tuple[bool, str]:
        """A non-resource URL such as /metrics (ClusterRole `nonResourceURLs`)."""
        return await self._decide(who, {"nonResourceAttributes": {"path": path, "verb": verb}})

    async def _decide(self, who: Caller, attributes: dict[str, Any]) -> tuple[bool, str]:
        key = (who, repr(sorted((k, sorted(v.items())) for k, v in attributes.items())))
        found, cached = self._decisions.get(key)
        if found and cached is not None:
            return cached
        decision = await self._access_reviews.run(key, lambda: self._review(who, attributes))
        self._decisions.put(key, decision)
        return decision

    async def _review(self, who: Caller, attributes: dict[str, Any]) -> tuple[bool, str]:
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
                    **attributes,
                },
            },
        )
        status = review.get("status") or {}
        decision = bool(status.get("allowed")) and not status.get("denied")
        return decision, str(status.get("reason") or "")
