"""The settings service's start and writes: the pure caravan.settings.service fed from the
store's watch of two ConfigMaps, the runtime knobs published to every other service, and
the settings ConfigMap written (a post, a refill, the defaults when nothing is stored)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from caravan.errors import InvalidError, MalformedError
from caravan.kube.client import CONFIGMAPS, KubeError
from caravan.kube.configmaps import write_configmap_key
from caravan.services.state import ServerState
from caravan.services.writes import Writes
from caravan.settings import RuntimeSettings, defaults_from_schema
from caravan.settings.service import (
    SCHEMA_KEY,
    SETTINGS_KEY,
    SettingsService,
    schema_from_text,
    serialize,
)

log = logging.getLogger(__name__)


class Settings:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        names = state.config.configmaps
        self._refills: set[asyncio.Task[None]] = set()
        self.service = SettingsService(
            names.settings, names.settings_schema, on_runtime=self._publish, on_refill=self._refill
        )

    async def start(self) -> None:
        state, names = self.state, self.state.config.configmaps
        state.set_runtime_settings(self.service.runtime)
        state.store.on_configmap(self.service.on_configmap)
        # The watch may already have delivered them before we listened.
        for name in (names.settings_schema, names.settings):
            if name in state.store.configmaps:
                self.service.on_configmap(name, state.store.configmaps[name])
        await self._store_defaults_if_missing()

    # Reads (what the watch last delivered) ---------------------------------------------

    @property
    def schema(self) -> dict[str, Any]:
        return self.service.schema

    def defaults(self) -> dict[str, Any]:
        return self.service.defaults()

    @property
    def document(self) -> dict[str, Any]:
        """The document in force, defaults filled in."""
        return self.service.document

    @property
    def error_count(self) -> int:
        return self.service.error_count

    def all_errors(self) -> dict[str, Any]:
        return self.service.all_errors()

    # Writes ----------------------------------------------------------------------------

    async def post(self, writes: Writes, text: str) -> None:
        """Fills missing values from the defaults, validates, stores; in force at once."""
        checked = self.service.check(text)
        if checked.document is None:
            details = [e.to_dict() for e in checked.errors]
            if checked.malformed:
                raise MalformedError(
                    f"malformed settings document: {details[0]['message']}", details
                )
            count = len(details)
            raise InvalidError(
                f"the settings document is invalid ({count} error{'s' if count != 1 else ''})",
                details,
            )
        stored = serialize(checked.document)
        await writes.configmap_key(self.service.settings_configmap, SETTINGS_KEY, stored)
        # In force at once (the watch will deliver the same text again, a no-op).
        self.service.set_settings_text(stored)

    def _publish(self, runtime: RuntimeSettings) -> None:
        self.state.set_runtime_settings(runtime)

    def _refill(self, seen: str, filled: str) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._write_refill(seen, filled))
        except RuntimeError:
            return  # No loop: nothing can be written anyway.
        self._refills.add(task)  # A reference, or the task may be collected mid-flight.
        task.add_done_callback(self._refills.discard)

    async def _write_refill(self, seen: str, filled: str) -> None:
        """Stores the filled document in place of `seen`, unless the text changed meanwhile."""
        state = self.state
        try:
            await write_configmap_key(
                state.kube,
                state.namespace,
                state.config.configmaps.settings,
                SETTINGS_KEY,
                lambda current: filled if current == seen else (current or ""),
            )
        except KubeError as exc:
            log.warning("could not store the filled settings document: %s", exc)

    async def _store_defaults_if_missing(self) -> None:
        """Writes the defaults document when nothing is stored yet, so that the file task
        pods mount is complete from the start. An existing text, even an invalid one, is
        kept."""
        state = self.state
        names, namespace = state.config.configmaps, state.namespace
        try:
            schema_text: str | None = None
            with contextlib.suppress(KubeError):
                found = await state.kube.get(CONFIGMAPS.item(namespace, names.settings_schema))
                schema_text = (found.get("data") or {}).get(SCHEMA_KEY)
            schema, _ = schema_from_text(schema_text)
            defaults = serialize(defaults_from_schema(schema))
            await write_configmap_key(
                state.kube,
                namespace,
                names.settings,
                SETTINGS_KEY,
                lambda current: current if current and current.strip() else defaults,
            )
        except KubeError as exc:
            log.warning(
                "could not store the default settings in ConfigMap %s: %s", names.settings, exc
            )
