"""The loggers service: live log levels. Defaults in the loggers ConfigMap, overrides in
an annotation of each pod; task processes read both from files the operator mounts."""

from __future__ import annotations

from caravan import labels
from caravan.errors import ConflictError, no_such
from caravan.kube.client import JSON, PODS
from caravan.kube.errors import NotFound
from caravan.loggers import levels
from caravan.loggers.levels import StoredDocumentError
from caravan.loggers.template import DEFAULTS_KEY
from caravan.services.state import ServerState
from caravan.services.writes import Writes
from caravan.store.store import KIND_POD

Config = dict[str, str]
Document = dict[str, dict[str, str]]


class Loggers:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    @property
    def configmap(self) -> str:
        return self.state.config.configmaps.loggers

    def defaults(self) -> Document:
        text = self.state.store.configmaps.get(self.configmap, {}).get(DEFAULTS_KEY)
        return levels.parse_lenient(text)

    async def set_defaults(self, writes: Writes, logger_id: str, config: Config) -> None:
        """Replaces one loggerID's defaults (an empty config removes them)."""

        def update(current: str | None) -> str:
            try:
                raw = levels.parse_raw(current)
            except StoredDocumentError as exc:
                raise ConflictError(
                    f"ConfigMap {self.configmap} key {DEFAULTS_KEY} is not a JSON object "
                    f"({exc}); fix it with kubectl before changing defaults"
                ) from exc
            return levels.dump(levels.with_config(raw, logger_id, config))

        await writes.configmap_key(self.configmap, DEFAULTS_KEY, update)

    def overrides(self, alloc: str) -> Document:
        """The allocation's own overrides; {} means it uses the defaults."""
        pod = self.state.store.pods.get(alloc)
        if pod is None:
            raise no_such("allocation", alloc)
        return levels.parse_lenient(pod.loggers)

    async def set_overrides(
        self, writes: Writes, alloc: str, logger_id: str, config: Config | None
    ) -> Document:
        """Sets (or with None removes) one loggerID in the pod's overrides annotation.

        A merge patch with the resourceVersion read as precondition (the pod's spec is not
        ours to send back), so a writer in another process makes this one re-read instead
        of losing its change; writers in this process take turns per pod.
        """
        if alloc not in self.state.store.pods:
            raise no_such("allocation", alloc)

        def patch_for(pod: JSON) -> JSON | None:
            current = _annotation(pod)
            try:
                raw = levels.parse_raw(current)
            except StoredDocumentError:
                # Only this pod reads it and it is unreadable anyway: start afresh.
                raw = {}
            if config is None:
                updated = levels.without_config(raw, logger_id)
            else:
                updated = levels.with_config(raw, logger_id, config)
            text = levels.dump(updated)
            if text == current:
                return None
            return {"metadata": {"annotations": {labels.LOGGERS_ANNOTATION: text}}}

        try:
            pod = await writes.patch(KIND_POD, PODS.item(writes.namespace, alloc), patch_for)
        except NotFound as exc:
            raise no_such("allocation", alloc) from exc
        return levels.parse_lenient(_annotation(pod))


def _annotation(pod: JSON) -> str | None:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(labels.LOGGERS_ANNOTATION)
    return None if text is None else str(text)
