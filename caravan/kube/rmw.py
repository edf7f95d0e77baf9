"""Read-modify-write with optimistic concurrency: no concurrent writer loses an update.

Writers in this process are serialized per object by a lock (so 50 parallel requests do
not fight each other), and PUT carries the resourceVersion read, so a writer in another
process makes us re-read and re-apply instead of overwriting.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from caravan.kube.client import JSON, KubeClient, KubeError

Mutation = Callable[[JSON], JSON]

_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def object_lock(path: str) -> asyncio.Lock:
    """One lock per object path: writers of this process take turns on an object."""
    lock = _locks.get(path)
    if lock is None:
        lock = asyncio.Lock()
        _locks[path] = lock
    return lock


async def read_modify_write(
    kube: KubeClient,
    path: str,
    mutate: Mutation,
    *,
    create: Callable[[], JSON] | None = None,
    collection_path: str | None = None,
    attempts: int = 20,
    cached: JSON | None = None,
) -> JSON:
    """GET path, apply `mutate`, PUT it back; retry on 409. Returns the stored object.

    With `create`, a missing object is created from `create()` (then mutated) by POST to
    `collection_path`. `mutate` may raise to abort: nothing is written then. `cached` (a
    copy from a watch) saves the first GET: a stale copy only costs a 409 and a re-read,
    and what it makes look unneeded or refused is decided again on a fresh read.
    """
    async with object_lock(path):
        last: KubeError | None = None
        if cached is not None and cached.get("metadata", {}).get("resourceVersion"):
            try:
                updated = mutate(cached)
            except Exception:
                updated = cached  # maybe only stale: the fresh read below decides
            if updated != cached:
                updated.setdefault("metadata", {})["resourceVersion"] = cached["metadata"][
                    "resourceVersion"
                ]
                try:
                    return await kube.replace(path, updated)
                except KubeError as exc:
                    if exc.status != 409:
                        raise
                    last = exc
        for _ in range(attempts):
            try:
                current = await kube.get(path)
            except KubeError as exc:
                if exc.status != 404 or create is None or collection_path is None:
                    raise
                current = None
            if current is None:
                assert create is not None and collection_path is not None
                body = mutate(create())
                try:
                    return await kube.create(collection_path, body)
                except KubeError as exc:
                    if exc.status != 409:  # AlreadyExists: someone created it; re-read
                        raise
                    last = exc
                    continue
            updated = mutate(current)
            if updated == current:
                return current
            updated.setdefault("metadata", {})["resourceVersion"] = current["metadata"][
                "resourceVersion"
            ]
            try:
                return await kube.replace(path, updated)
            except KubeError as exc:
                if exc.status != 409:
                    raise
                last = exc
        assert last is not None
        raise last
