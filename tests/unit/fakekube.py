"""An in-memory stand-in for kube-apiserver, for unit tests of the machinery.

It keeps objects by path with resourceVersions, answers like the real API where the
machinery depends on it (409 on a stale resourceVersion or precondition, 404, 409
AlreadyExists), records every call, lets a test inject failures, and hands every write
to a watcher (a Store) as a watch would. Never used in the cluster tier.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from caravan.kube.client import JSON, KubeClient
from caravan.kube.errors import KubeError


def _kind_of(path: str) -> str:
    """The store kind an object path belongs to (as caravan.runner's informers name it)."""
    parts = path.strip("/").split("/")
    plural, name = parts[-2], parts[-1]
    if plural == "configmaps":
        return f"configmap:{name}"
    return {"jobs": "job", "pods": "pod", "secrets": "secret"}.get(plural, plural)


def merge(target: JSON, patch: JSON) -> JSON:
    """JSON merge patch (RFC 7386)."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class FakeKube:
    def __init__(self, watcher: Any = None) -> None:
        self.objects: dict[str, JSON] = {}
        self.calls: list[tuple[str, str]] = []
        # verb -> errors raised by the next calls of that verb, in order
        self.failures: dict[str, list[KubeError]] = {}
        # verb -> callbacks run before the next call of that verb (e.g. a rival writer)
        self.before: dict[str, list[Callable[[], object]]] = {}
        self.watcher = watcher  # gets apply_event(kind, type, object) on every write
        self.deliver = True  # False: writes land but the "watch" does not deliver them
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)
        self.responses: dict[str, Callable[[JSON], JSON]] = {}  # POST path -> answer

    @property
    def client(self) -> KubeClient:
        return cast(KubeClient, self)

    def fail(self, verb: str, *errors: KubeError) -> None:
        self.failures.setdefault(verb, []).extend(errors)

    def put_object(self, path: str, body: JSON) -> JSON:
        """Stores `body` at `path` as another writer would (a new version, delivered);
        without a uid in `body`, the object keeps its own (or gets one, if new)."""
        body = copy.deepcopy(body)
        metadata = body.setdefault("metadata", {})
        if not metadata.get("uid"):
            known = self.objects.get(path, {}).get("metadata", {}).get("uid")
            metadata["uid"] = known or f"uid-{next(self._uids)}"
        return self._store(path, body, "MODIFIED" if path in self.objects else "ADDED")

    def version(self, path: str) -> str:
        return str(self.objects[path]["metadata"]["resourceVersion"])

    # The KubeClient verbs the machinery uses ------------------------------------------

    async def get(self, path: str) -> JSON:
        self._enter("get", path)
        if path not in self.objects:
            raise KubeError(404, "NotFound")
        return copy.deepcopy(self.objects[path])

    async def create(self, collection: str, body: JSON) -> JSON:
        self._enter("create", collection)
        if collection in self.responses:
            return self.responses[collection](copy.deepcopy(body))
        path = f"{collection}/{body['metadata']['name']}"
        if path in self.objects:
            raise KubeError(409, "Conflict", {"reason": "AlreadyExists"})
        body = copy.deepcopy(body)
        body["metadata"]["uid"] = f"uid-{next(self._uids)}"
        return self._store(path, body, "ADDED")

    async def replace(self, path: str, body: JSON) -> JSON:
        self._enter("replace", path)
        current = self._current(path)
        self._check_version(current, body["metadata"].get("resourceVersion"))
        body = copy.deepcopy(body)
        body["metadata"]["uid"] = current["metadata"].get("uid")
        return self._store(path, body, "MODIFIED")

    async def merge_patch(self, path: str, patch: JSON, field_manager: str | None = None) -> JSON:
        self._enter("merge_patch", path)
        path = path.removesuffix("/status")  # the status subresource: the same object
        current = self._current(path)
        self._check_version(current, (patch.get("metadata") or {}).get("resourceVersion"))
        return self._store(path, merge(current, patch), "MODIFIED")

    async def json_patch(
        self, path: str, operations: list[JSON], field_manager: str | None = None
    ) -> JSON:
        """``test`` and ``replace`` of object members (what caravan.kube.rmw sends); a
        failed test answers 422, as kube-apiserver does."""
        self._enter("json_patch", path)
        body = copy.deepcopy(self._current(path))
        for op in operations:
            *parents, last = op["path"].strip("/").split("/")
            holder = body
            for key in parents:
                holder = holder[key]
            if op["op"] == "test" and holder.get(last) != op["value"]:
                raise KubeError(422, "Invalid", {"message": f"test of {op['path']} failed"})
            if op["op"] == "replace":
                holder[last] = copy.deepcopy(op["value"])
        return self._store(path, body, "MODIFIED")

    async def apply(self, path: str, body: JSON, field_manager: str) -> JSON:
        self._enter("apply", path)
        current = self.objects.get(path, {})
        return self._store(path, merge(current, body), "MODIFIED" if current else "ADDED")

    async def delete(self, path: str, *, preconditions: JSON | None = None, **_: Any) -> JSON:
        self._enter("delete", path)
        current = self._current(path)
        if preconditions:
            meta = current["metadata"]
            if preconditions.get("uid") not in (None, meta.get("uid")):
                raise KubeError(409, "Conflict", {"message": "uid precondition"})
            self._check_version(current, preconditions.get("resourceVersion"))
        del self.objects[path]
        if self.watcher is not None and self.deliver:
            self.watcher.apply_event(_kind_of(path), "DELETED", copy.deepcopy(current))
        return {"kind": "Status", "status": "Success"}

    async def list_items(self, path: str, **query: Any) -> JSON:
        self._enter("list", path)
        items = [copy.deepcopy(o) for p, o in sorted(self.objects.items()) if p.startswith(path)]
        return {"metadata": {"resourceVersion": str(next(self._versions))}, "items": items}

    async def watch(self, path: str, **_: Any) -> AsyncIterator[JSON]:  # pragma: no cover
        await asyncio.Event().wait()
        yield {}

    async def close(self) -> None:
        return None

    # Internals -------------------------------------------------------------------------

    def _enter(self, verb: str, path: str) -> None:
        self.calls.append((verb, path))
        for callback in self.before.pop(verb, []):
            callback()
        errors = self.failures.get(verb)
        if errors:
            raise errors.pop(0)

    def _current(self, path: str) -> JSON:
        if path not in self.objects:
            raise KubeError(404, "NotFound")
        return self.objects[path]

    @staticmethod
    def _check_version(current: JSON, sent: Any) -> None:
        if sent is not None and str(sent) != str(current["metadata"]["resourceVersion"]):
            raise KubeError(409, "Conflict", {"message": "the object has been modified"})

    def _store(self, path: str, body: JSON, event: str) -> JSON:
        body.setdefault("metadata", {})["resourceVersion"] = str(next(self._versions))
        body["metadata"].setdefault("name", path.rsplit("/", 1)[-1])
        self.objects[path] = body
        if self.watcher is not None and self.deliver:
            self.watcher.apply_event(_kind_of(path), event, copy.deepcopy(body))
        return copy.deepcopy(body)
