"""The settings service: the schema in force, the current document, what is wrong.

It is fed the texts of two ConfigMaps (the stored settings, the installation's schema)
whenever they change, including kubectl edits, and never talks to Kubernetes itself:
the HTTP layer writes, the store's watch delivers. Rules (docs/settings.md):

- Schema: Caravan's, merged with the installation's (`schema.json` of the schema
  ConfigMap). If that merge is unusable, every problem is reported and Caravan's built-in
  schema stays in force: Caravan always has a schema its own knobs can be read from.
- Document: the stored text, filled with the schema's defaults and validated. If the text
  is invalid (a bad kubectl edit), the last valid document stays in force and the errors
  are reported. No text (or no ConfigMap) means the defaults document.
- Every time the document in force changes, `on_runtime` receives its `RuntimeSettings`.
- When the stored text is valid but not the filled document (a partial kubectl edit, new
  defaults from a new schema), `on_refill` is asked to store the filled one in its place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from caravan.jsondepth import nesting
from caravan.settings.configmap import parse_settings_configmap_value
from caravan.settings.defaults import defaults_from_schema, load_builtin_schema
from caravan.settings.installation import build_installation_schema
from caravan.settings.runtime import RuntimeSettings, SettingsDocumentError
from caravan.settings.validation import SettingsError

log = logging.getLogger(__name__)

SETTINGS_KEY = "settings.json"
SCHEMA_KEY = "schema.json"
# Deeper documents are refused: filling, validating and serializing them recurse, and a
# settings document has no business being that deep.
MAX_DEPTH = 64

RuntimeListener = Callable[[RuntimeSettings], None]
# (stored text, its filled form): asks the owner to store the filled form in its place.
RefillListener = Callable[[str, str], None]


@dataclass(frozen=True)
class Checked:
    """The outcome of checking a posted document: the filled document, or the errors."""

    document: dict[str, Any] | None
    errors: list[SettingsError]
    malformed: bool = False  # Not JSON at all (400), rather than schema-invalid (422).


def schema_from_text(text: str | None) -> tuple[dict[str, Any], list[str]]:
    """The schema in force for an installation schema text, and its problems.

    With problems, the schema returned is Caravan's built-in one (see the module doc).
    """
    try:
        custom, errors = parse_settings_configmap_value(text)
    except RecursionError:
        custom, errors = None, [SettingsError("$", "nested too deeply", "json")]
    limit = _limit_problem(custom) if custom is not None else None
    errors = [_printable(e) for e in (errors or ([limit] if limit else []))]
    if errors:
        return load_builtin_schema(), [f"{SCHEMA_KEY}: {e.path}: {e.message}" for e in errors]
    try:
        merged, problems = build_installation_schema(custom or None)
    except RecursionError:
        merged, problems = {}, ["the schema is nested too deeply"]
    problems = [_printable(SettingsError("$", p)).message for p in problems]
    if problems:
        return load_builtin_schema(), [f"{SCHEMA_KEY}: {p}" for p in problems]
    return merged, []


def read_document(
    text: str | None, schema: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, list[SettingsError]]:
    """`parse_settings_configmap_value`, plus the limits of what Caravan can store and serve:
    bounded depth, and strings that are Unicode text (JSON's `"\\ud800"` escape is not).
    Error messages are made printable too (they may quote such strings)."""
    try:
        document, errors = parse_settings_configmap_value(text, schema)
    except RecursionError:
        return None, [SettingsError("$", "the document is nested too deeply", "json")]
    if document is None:
        return None, [_printable(e) for e in errors]
    problem = _limit_problem(document)
    return (None, [problem]) if problem is not None else (document, [])


def _limit_problem(document: object) -> SettingsError | None:
    if nesting(document) > MAX_DEPTH:
        return SettingsError(
            "$", f"the document is nested more than {MAX_DEPTH} levels deep", "json"
        )
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        message = "strings must be Unicode text (no lone surrogate escapes such as \\ud800)"
        return SettingsError("$", message, "json")
    return None


def _printable(error: SettingsError) -> SettingsError:
    def text(value: str) -> str:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")

    return SettingsError(text(error.path), text(error.message), error.keyword)


def serialize(document: Mapping[str, Any]) -> str:
    """The stored form: indented so that `kubectl edit` and task processes can read it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


class SettingsService:
    def __init__(
        self,
        settings_configmap: str,
        schema_configmap: str,
        on_runtime: RuntimeListener | None = None,
        on_refill: RefillListener | None = None,
    ) -> None:
        self.settings_configmap = settings_configmap
        self.schema_configmap = schema_configmap
        self._on_runtime = on_runtime
        self._on_refill = on_refill
        self._schema_text: str | None = None
        self._settings_text: str | None = None
        self.schema: dict[str, Any] = load_builtin_schema()
        self.schema_problems: list[str] = []
        self.document: dict[str, Any] = defaults_from_schema(self.schema)
        self.errors: list[SettingsError] = []
        self.runtime = RuntimeSettings.from_document(self.document)

    # Inputs ---------------------------------------------------------------------------

    def on_configmap(self, name: str, data: Mapping[str, str] | None) -> None:
        """A store listener: `data` is None when the ConfigMap does not exist."""
        if name == self.schema_configmap:
            self.set_schema_text((data or {}).get(SCHEMA_KEY))
        elif name == self.settings_configmap:
            self.set_settings_text((data or {}).get(SETTINGS_KEY))

    def set_schema_text(self, text: str | None) -> None:
        if text == self._schema_text:
            return
        self._schema_text = text
        self.schema, self.schema_problems = schema_from_text(text)
        for problem in self.schema_problems:
            log.error("installation settings schema refused, using Caravan's: %s", problem)
        # The stored text is judged again: the new schema may fill or refuse it differently.
        self._evaluate()

    def set_settings_text(self, text: str | None) -> None:
        if text == self._settings_text:
            return
        self._settings_text = text
        self._evaluate()

    # Reads ----------------------------------------------------------------------------

    def defaults(self) -> dict[str, Any]:
        return defaults_from_schema(self.schema)

    def all_errors(self) -> dict[str, Any]:
        return {
            "settings": [e.to_dict() for e in self.errors],
            "schema": list(self.schema_problems),
        }

    @property
    def error_count(self) -> int:
        return len(self.errors) + len(self.schema_problems)

    def check(self, text: str) -> Checked:
        """A posted document (JSON text): filled and validated against the schema in force."""
        if not text.strip():
            # An empty body is not a document (the ConfigMap's empty text means "defaults").
            return Checked(None, [SettingsError("$", "the body is empty", "json")], True)
        document, errors = read_document(text, self.schema)
        if document is None:
            malformed = any(e.keyword == "json" for e in errors)
            return Checked(None, errors, malformed)
        return Checked(document, [])

    # Internals ------------------------------------------------------------------------

    def _evaluate(self) -> None:
        document, errors = read_document(self._settings_text, self.schema)
        if document is None:
            self.errors = errors
            log.error(
                "stored settings (ConfigMap %s) refused, keeping the last valid ones: %s",
                self.settings_configmap,
                "; ".join(f"{e.path}: {e.message}" for e in errors),
            )
            return
        self.errors = []
        try:
            runtime = RuntimeSettings.from_document(document)
        except SettingsDocumentError as exc:  # a checked schema makes this impossible
            self.errors = [SettingsError("$", str(exc), "runtime")]
            log.error("settings refused: %s", exc)
            return
        changed = document != self.document
        self.document = document
        if runtime != self.runtime:
            self.runtime = runtime
            if self._on_runtime is not None:
                self._on_runtime(runtime)
        if changed:
            log.info("settings in force updated (ConfigMap %s)", self.settings_configmap)
        filled = serialize(document)
        if self._settings_text is not None and filled != self._settings_text and self._on_refill:
            # A kubectl edit left values out (or a new schema brought new defaults): the
            # stored text should be the complete document task pods read.
            self._on_refill(self._settings_text, filled)
