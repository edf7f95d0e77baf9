"""Keeping the events documents in the ``caravan-events`` ConfigMap (key ``events.json``).

The stored text is ``{"mapreduce": [<document>, ...]}``. The Helm chart creates the
ConfigMap empty, so a missing ConfigMap, a missing key or a blank value all mean "no
documents". Pure like the rest of ``caravan.events``: the events router writes the text
this module encodes, and the store's watch hands back what the ConfigMap holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from caravan.events.document import MAX_WHERE_DEPTH
from caravan.events.errors import format_errors
from caravan.events.service import EventsService
from caravan.jsondepth import nesting

log = logging.getLogger(__name__)

EVENTS_KEY = "events.json"
# Stored documents nesting deeper than this are refused whole: a where clause at its own
# limit, with the levels of a document around it, stays well under.
MAX_NESTING = 2 * MAX_WHERE_DEPTH + 16


class StoredTextError(ValueError):
    """The stored text is not ``{"mapreduce": [...]}`` JSON."""


def parse_stored(data: dict[str, str] | None) -> list[Any]:
    """The documents held by a ConfigMap's data (``None``: the ConfigMap is absent)."""
    text = (data or {}).get(EVENTS_KEY, "")
    if not text.strip():
        return []
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise StoredTextError(f"{EVENTS_KEY} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("mapreduce"), list):
        raise StoredTextError(f'{EVENTS_KEY} must be an object {{"mapreduce": [<document>, ...]}}')
    documents: list[Any] = parsed["mapreduce"]
    return documents


def encode(documents: list[Any]) -> str:
    # Indented: people read and edit this with `kubectl edit`.
    return json.dumps({"mapreduce": documents}, indent=2, ensure_ascii=False) + "\n"


@dataclass
class StoredDocuments:
    """Applies what the ConfigMap holds to the running service, on every change of it.

    - Before anything valid was loaded (start-up), invalid documents are *restored*: they
      are shown by ``GET /v1/events`` with their errors and nothing runs.
    - Afterwards, an invalid edit (e.g. with kubectl) only sets the ``errors`` report: the
      last valid program keeps running until the ConfigMap is fixed.
    - Documents equal to the running ones change nothing, so the watch echo of our own
      ``POST /v1/events`` does not flush the open windows a second time.
    """

    service: EventsService
    configmap: str
    loaded: bool = False  # a valid program came from the ConfigMap or a POST
    # Held by POST /v1/events: writes are applied in the order they are stored.
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Several replicas: valid new documents go to the documents stream (every replica
    # switches from there, in one order) instead of straight into this replica's engine.
    publish: Callable[[list[Any]], None] | None = None

    def on_change(self, name: str, data: dict[str, str] | None) -> None:
        """A store listener: called from the informer, which a bug here must not stop."""
        if name != self.configmap:
            return
        try:
            self.apply(data)
        except Exception:
            log.exception("could not apply ConfigMap %s", name)

    def apply(self, data: dict[str, str] | None) -> None:
        where = f"ConfigMap {self.configmap}, key {EVENTS_KEY}"
        try:
            documents = parse_stored(data)
        except StoredTextError as exc:
            self._keep_running(f"{where}: {exc}")
            return
        if nesting(documents) > MAX_NESTING:
            # Not even shown: copying or serializing it would exhaust the stack.
            self._keep_running(
                f"{where}: nested more than {MAX_NESTING} levels deep "
                f"(where clauses nest at most {MAX_WHERE_DEPTH} levels)"
            )
            return
        errors = self.service.validate(documents)
        if errors and not self.loaded:
            self.service.restore(documents)
            return
        if errors:
            self._keep_running(f"{where} is invalid:\n{format_errors(errors)}")
            return
        elif self.publish is not None:
            # Always: the documents stream may hold others (the ConfigMap is the truth),
            # and publishing documents it already ends with is a no-op.
            self.publish(documents)
            self.service.report_errors("")
        elif documents == self.service.documents:
            self.service.report_errors("")  # e.g. an invalid edit was reverted
        else:
            self.service.replace(documents)
        self.loaded = True

    def _keep_running(self, problem: str) -> None:
        running = "the previous definitions keep running" if self.loaded else "nothing runs"
        self.service.report_errors(f"{problem}\n({running} until it is fixed)")
