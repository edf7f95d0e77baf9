"""Which version of each object the store has seen, and waiters on it (no polling).

A writer that stored version V of an object waits here until the watch brought V (or a
later version, or the object's deletion) into the store; a deleter waits until the
object is gone. Waiters are futures resolved by the informer's own event delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

Key = tuple[str, str]  # (kind, name)


def reached(seen: str, wanted: str) -> bool:
    """Whether version `seen` is `wanted` or later.

    resourceVersions are opaque strings; kube-apiserver's are etcd revisions (integers),
    so a later one compares greater. Anything else counts only when equal.
    """
    if seen == wanted:
        return True
    return seen.isdigit() and wanted.isdigit() and int(seen) >= int(wanted)


@dataclass
class _Waiter:
    version: str | None  # None: waits for the object to be gone
    future: asyncio.Future[None]


@dataclass
class ObjectVersions:
    _seen: dict[Key, str] = field(default_factory=dict)
    _waiters: dict[Key, list[_Waiter]] = field(default_factory=dict)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def names(self, kind: str) -> set[str]:
        return {n for k, n in self._seen if k == kind}

    def version(self, key: Key) -> str | None:
        return self._seen.get(key)

    def saw(self, key: Key, version: str) -> None:
        """The store now holds `version` of the object."""
        self._seen[key] = version
        self._resolve(key, lambda w: w.version is not None and reached(version, w.version))

    def removed(self, key: Key) -> None:
        """The object left the store: every waiter on it is answered."""
        self._seen.pop(key, None)
        self._resolve(key, lambda w: True)

    def satisfied(self, key: Key, version: str | None) -> bool:
        seen = self._seen.get(key)
        if version is None:
            return seen is None
        return seen is not None and reached(seen, version)

    async def wait(self, key: Key, version: str | None, timeout: float) -> bool:
        """Until the store holds `version` (or later, or deleted the object) or, with
        `version` None, until the object is gone. False when `timeout` passed first."""
        if self.satisfied(key, version):
            return True
        waiter = _Waiter(version, asyncio.get_running_loop().create_future())
        self._waiters.setdefault(key, []).append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter.future
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(key, None)

    def _resolve(self, key: Key, done: Callable[[_Waiter], bool]) -> None:
        for waiter in self._waiters.get(key, ()):
            if done(waiter) and not waiter.future.done():
                waiter.future.set_result(None)
