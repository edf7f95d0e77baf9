"""A typed, immutable view of the settings Caravan itself reads.

The rest of Caravan takes a `RuntimeSettings` instead of digging in the raw document, so a
renamed knob breaks here, once, and not in every caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from caravan.settings.defaults import defaults_from_schema, load_builtin_schema
from caravan.settings.validation import json_path


class SettingsDocumentError(ValueError):
    """A knob Caravan reads is missing or has the wrong type (the document was not valid)."""


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    cluster_name: str
    cluster_description: str
    long_poll_default_wait_seconds: int
    long_poll_max_wait_seconds: int
    events_results_idle_timeout_seconds: float
    events_max_results_messages: int
    events_max_keys_per_reduction: int
    logs_max_read_bytes: int
    logs_follow_idle_timeout_seconds: float

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Self:
        """Read the knobs from a filled, valid settings document.

        Raises SettingsDocumentError naming the first bad knob: a document that passed
        `validate_settings` against a checked schema never does.
        """
        return cls(
            cluster_name=_string(document, "info", "name"),
            cluster_description=_string(document, "info", "description"),
            long_poll_default_wait_seconds=_integer(
                document, "jobs", "longPoll", "defaultWaitSeconds"
            ),
            long_poll_max_wait_seconds=_integer(document, "jobs", "longPoll", "maxWaitSeconds"),
            events_results_idle_timeout_seconds=_number(
                document, "events", "resultsIdleTimeoutSeconds"
            ),
            events_max_results_messages=_integer(document, "events", "maxResultsMessages"),
            events_max_keys_per_reduction=_integer(document, "events", "maxKeysPerReduction"),
            logs_max_read_bytes=_integer(document, "logs", "maxReadBytes"),
            logs_follow_idle_timeout_seconds=_number(document, "logs", "followIdleTimeoutSeconds"),
        )

    @classmethod
    def defaults(cls) -> Self:
        """The settings of an installation that stored nothing (Caravan's own defaults)."""
        return cls.from_document(defaults_from_schema(load_builtin_schema()))


def _value(document: Mapping[str, Any], path: tuple[str, ...]) -> object:
    node: object = document
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            raise SettingsDocumentError(f"{json_path(path)} is missing")
        node = node[name]
    return node


def _string(document: Mapping[str, Any], *path: str) -> str:
    value = _value(document, path)
    if not isinstance(value, str):
        raise SettingsDocumentError(f"{json_path(path)} must be a string")
    return value


def _integer(document: Mapping[str, Any], *path: str) -> int:
    value = _value(document, path)
    # JSON Schema counts 5.0 as an integer; so do we, but bool is not a number in JSON.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsDocumentError(f"{json_path(path)} must be an integer")
    return value


def _number(document: Mapping[str, Any], *path: str) -> float:
    value = _value(document, path)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SettingsDocumentError(f"{json_path(path)} must be a number")
    return float(value)
