"""Optimistic concurrency in one place: retry on conflict, with the strategies writers need.

Writers in this process are serialized per object by a lock (so 50 parallel requests do
not fight each other), and every write carries what was read (a resourceVersion, or
delete preconditions), so a writer in another process makes us re-read and decide again
instead of overwriting.

- `retry_on_conflict`: the loop itself, around any one attempt (read, decide, write).
- `read_modify_write`: GET, mutate, PUT of an object that is ours to send back whole.
- `swap_spec`: GET, mutate the spec, then a JSON patch that tests the spec read: for
  objects whose status another writer keeps moving (a Job and the operator).
- `patch_with_precondition`: GET, then a merge patch carrying the resourceVersion read,
  for objects whose other fields are not ours (a pod's annotation).
- `delete_with_precondition`: GET, check, then DELETE of exactly that uid and version.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

from caravan.kube.client import JSON, KubeClient
from caravan.kube.errors import Conflict, Invalid, NotFound

Mutation = Callable[[JSON], JSON]
T = TypeVar("T")

ATTEMPTS = 20

_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def object_lock(path: str) -> asyncio.Lock:
    """One lock per object path: writers of this process take turns on an object."""
    lock = _locks.get(path)
    if lock is None:
        lock = asyncio.Lock()
        _locks[path] = lock
    return lock


async def retry_on_conflict(
    path: str, attempt: Callable[[], Awaitable[T]], *, attempts: int = ATTEMPTS
) -> T:
    """Runs `attempt` under the lock of `path` until it does not raise `Conflict`.

    After `attempts` conflicts the last one is raised (the object kept changing).
    """
    async with object_lock(path):
        last: Conflict | None = None
        for _ in range(attempts):
            try:
                return await attempt()
            except Conflict as exc:
                last = exc
        assert last is not None
        raise last


async def read_modify_write(
    kube: KubeClient,
    path: str,
    mutate: Mutation,
    *,
    create: Callable[[], JSON] | None = None,
    collection_path: str | None = None,
    attempts: int = ATTEMPTS,
    cached: JSON | None = None,
) -> JSON:
    """GET path, apply `mutate`, PUT it back; retry on 409. Returns the stored object.

    With `create`, a missing object is created from `create()` (then mutated) by POST to
    `collection_path`. `mutate` may raise to abort: nothing is written then. `cached` (a
    copy from a watch) saves the first GET: a stale copy only costs a 409 and a re-read,
    and what it makes look unneeded or refused is decided again on a fresh read.
    """
    first = [cached] if cached is not None and _version(cached) else []

    async def put(read: JSON, updated: JSON) -> JSON:
        return await kube.replace(path, _with_version(updated, read))

    async def attempt() -> JSON:
        if (written := await _write_cached(first, mutate, put)) is not None:
            return written
        try:
            current = await kube.get(path)
        except NotFound:
            if create is None or collection_path is None:
                raise
            # AlreadyExists (a Conflict) if someone created it first: read it again.
            return await kube.create(collection_path, mutate(create()))
        updated = mutate(current)
        if updated == current:
            return current
        return await put(current, updated)

    return await retry_on_conflict(path, attempt, attempts=attempts)


async def _write_cached(
    first: list[JSON], mutate: Mutation, write: Callable[[JSON, JSON], Awaitable[JSON]]
) -> JSON | None:
    """The first attempt, on the watch's copy (taken from ``first``): ``write(read,
    updated)`` when the mutation changes it; None when the caller must read afresh (no
    copy, or the copy makes the write look unneeded or refused: maybe only stale)."""
    if not first:
        return None
    stale = first.pop()
    try:
        updated = mutate(stale)
    except Exception:
        return None
    if updated == stale:
        return None
    return await write(stale, updated)


async def swap_spec(
    kube: KubeClient,
    path: str,
    mutate: Mutation,
    *,
    attempts: int = ATTEMPTS,
    cached: JSON | None = None,
) -> JSON:
    """GET path (or take `cached`), apply `mutate` (which changes the spec only), then a
    JSON patch that tests the uid and the spec read and replaces the spec. Only a change
    of the spec itself makes it read again: not the status or metadata writes of others,
    which would make a PUT's resourceVersion stale (the operator writes a Job's status
    whenever its pods move). A stale `cached` copy decides nothing, as above."""
    first = [cached] if cached is not None and _uid(cached) else []

    async def swap(read: JSON, updated: JSON) -> JSON:
        return await _swap(kube, path, read, updated)

    async def attempt() -> JSON:
        if (written := await _write_cached(first, mutate, swap)) is not None:
            return written
        current = await kube.get(path)
        updated = mutate(current)
        if updated == current:
            return current
        return await swap(current, updated)

    return await retry_on_conflict(path, attempt, attempts=attempts)


async def _swap(kube: KubeClient, path: str, read: JSON, updated: JSON) -> JSON:
    if _without_spec(updated) != _without_spec(read):
        raise ValueError(f"swap_spec of {path}: the mutation changed more than the spec")
    operations: list[JSON] = [
        {"op": "test", "path": "/metadata/uid", "value": _uid(read)},
        {"op": "test", "path": "/spec", "value": read.get("spec")},
        {"op": "replace", "path": "/spec", "value": updated.get("spec")},
    ]
    try:
        return await kube.json_patch(path, operations)
    except Invalid:
        # A failed test answers 422, as an invalid spec does: a fresh read tells which.
        now = await kube.get(path)
        if _uid(now) != _uid(read) or now.get("spec") != read.get("spec"):
            raise Conflict(409, f"{path}: its spec changed since it was read") from None
        raise


def _uid(body: JSON) -> str:
    return str((body.get("metadata") or {}).get("uid") or "")


def _without_spec(body: JSON) -> JSON:
    return {k: v for k, v in body.items() if k != "spec"}


async def patch_with_precondition(
    kube: KubeClient,
    path: str,
    patch_for: Callable[[JSON], JSON | None],
    *,
    attempts: int = ATTEMPTS,
) -> JSON:
    """GET path, merge-patch what `patch_for(current)` returns (None: nothing to change),
    with the resourceVersion read as a precondition; retry on 409. Returns the object."""

    async def attempt() -> JSON:
        current = await kube.get(path)
        patch = patch_for(current)
        if patch is None:
            return current
        metadata = dict(patch.get("metadata") or {})
        metadata["resourceVersion"] = _version(current)
        return await kube.merge_patch(path, {**patch, "metadata": metadata})

    return await retry_on_conflict(path, attempt, attempts=attempts)


async def delete_with_precondition(
    kube: KubeClient,
    path: str,
    check: Callable[[JSON], None] = lambda current: None,
    *,
    attempts: int = ATTEMPTS,
) -> JSON:
    """GET path, `check(current)` (raise to refuse), then DELETE that very object (its uid
    and resourceVersion as preconditions); retry on 409. Returns DELETE's answer: the
    object (still there while finalizers run) or a Status."""

    async def attempt() -> JSON:
        current = await kube.get(path)
        check(current)
        metadata = current.get("metadata") or {}
        preconditions = {"uid": metadata.get("uid"), "resourceVersion": _version(current)}
        return await kube.delete(path, preconditions=preconditions)

    return await retry_on_conflict(path, attempt, attempts=attempts)


def _version(obj: JSON) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


def _with_version(updated: JSON, read: JSON) -> JSON:
    updated.setdefault("metadata", {})["resourceVersion"] = _version(read)
    return updated
