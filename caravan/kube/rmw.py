"""Optimistic concurrency in one place: retry on conflict, with the strategies writers need.

Writers in this process are serialized per object by a lock (so 50 parallel requests do
not fight each other), and every write carries what was read (a resourceVersion, or
delete preconditions), so a writer in another process makes us re-read and decide again
instead of overwriting.

- `retry_on_conflict`: the loop itself, around any one attempt (read, decide, write).
- `read_modify_write`: GET, decide, PUT of an object that is ours to send back whole.
- `swap_spec`: GET, decide the spec, then a JSON patch that tests the spec read: for
  objects whose status another writer keeps moving (a Job and the operator).

Both take a pure decision: given the object read, a `Decision` says what to store (or
nothing) and what the caller learns (its `result`, returned in the `Outcome`). A refusal
is a result, not an exception: a decision on a stale cached copy is then simply made
again on a fresh read, and the caller raises what it wants once the loop is over.
- `patch_with_precondition`: GET, then a merge patch carrying the resourceVersion read,
  for objects whose other fields are not ours (a pod's annotation).
- `delete_with_precondition`: GET, check, then DELETE of exactly that uid and version.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from caravan.kube.client import JSON, KubeClient
from caravan.kube.errors import Conflict, Invalid, NotFound

T = TypeVar("T")


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What to do with the object read: store `body` (None: write nothing), and tell the
    caller `result`."""

    body: JSON | None
    result: T


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The object as stored (or as read, when nothing was written), and the decision's
    result on that read."""

    stored: JSON
    result: T
    written: bool


Decide = Callable[[JSON], Decision[T]]
Mutation = Callable[[JSON], JSON]


def changes(mutate: Mutation) -> Decide[None]:
    """A decision from a plain mutation: store what it returns, unless that is unchanged."""

    def decide(current: JSON) -> Decision[None]:
        updated = mutate(current)
        return Decision(None if updated == current else updated, None)

    return decide


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
    decide: Decide[T],
    *,
    create: Callable[[], JSON] | None = None,
    collection_path: str | None = None,
    attempts: int = ATTEMPTS,
    cached: JSON | None = None,
) -> Outcome[T]:
    """GET path, decide, PUT it back; retry on 409.

    With `create`, a missing object is created from `create()` (then decided on) by POST
    to `collection_path`. `cached` (a copy from a watch) saves the first GET: a stale copy
    only costs a 409 and a re-read, and a decision on it to write nothing is made again on
    a fresh read (the copy may only be stale).
    """
    first = cached if cached is not None and _version(cached) else None

    async def put(read: JSON, updated: JSON) -> JSON:
        return await kube.replace(path, _with_version(updated, read))

    async def fresh() -> Outcome[T]:
        try:
            current = await kube.get(path)
        except NotFound:
            if create is None or collection_path is None:
                raise
            created = decide(create())
            if created.body is None:
                raise  # nothing to store: it stays missing
            # AlreadyExists (a Conflict) if someone created it first: read it again.
            return Outcome(await kube.create(collection_path, created.body), created.result, True)
        return await _write(current, decide(current), put)

    return await _attempts(path, first, decide, put, fresh, attempts)


async def swap_spec(
    kube: KubeClient,
    path: str,
    decide: Decide[T],
    *,
    attempts: int = ATTEMPTS,
    cached: JSON | None = None,
    field_manager: str | None = None,
) -> Outcome[T]:
    """GET path (or take `cached`), decide (a change of the spec only), then a JSON patch
    that tests the uid and the spec read and replaces the spec. Only a change of the spec
    itself makes it read again: not the status or metadata writes of others, which would
    make a PUT's resourceVersion stale (the operator writes a Job's status whenever its
    pods move). A stale `cached` copy decides nothing, as above. `field_manager` names
    the writer in the object's managedFields."""
    first = cached if cached is not None and _uid(cached) else None

    async def swap(read: JSON, updated: JSON) -> JSON:
        return await _swap(kube, path, read, updated, field_manager)

    async def fresh() -> Outcome[T]:
        current = await kube.get(path)
        return await _write(current, decide(current), swap)

    return await _attempts(path, first, decide, swap, fresh, attempts)


Write = Callable[[JSON, JSON], Awaitable[JSON]]


async def _attempts(
    path: str,
    cached: JSON | None,
    decide: Decide[T],
    write: Write,
    fresh: Callable[[], Awaitable[Outcome[T]]],
    attempts: int,
) -> Outcome[T]:
    """The conflict loop whose first attempt may be on the watch's copy: written when the
    decision on it writes something; otherwise (or after a conflict) decided afresh."""
    pending = cached

    async def attempt() -> Outcome[T]:
        nonlocal pending
        stale, pending = pending, None
        if stale is not None:
            decision = decide(stale)
            if decision.body is not None and decision.body != stale:
                return await _write(stale, decision, write)
        return await fresh()

    return await retry_on_conflict(path, attempt, attempts=attempts)


async def _write(read: JSON, decision: Decision[T], write: Write) -> Outcome[T]:
    if decision.body is None or decision.body == read:
        return Outcome(read, decision.result, False)
    return Outcome(await write(read, decision.body), decision.result, True)


async def _swap(
    kube: KubeClient, path: str, read: JSON, updated: JSON, field_manager: str | None
) -> JSON:
    if _without_spec(updated) != _without_spec(read):
        raise ValueError(f"swap_spec of {path}: the mutation changed more than the spec")
    operations: list[JSON] = [
        {"op": "test", "path": "/metadata/uid", "value": _uid(read)},
        {"op": "test", "path": "/spec", "value": read.get("spec")},
        {"op": "replace", "path": "/spec", "value": updated.get("spec")},
    ]
    try:
        return await kube.json_patch(path, operations, field_manager)
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
