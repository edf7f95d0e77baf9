"""Caravan's settings: schema, defaults, validation, installation schemas (pure logic).

Nothing here talks to Kubernetes or HTTP; see docs/settings.md for the rules.
"""

from caravan.settings.configmap import parse_settings_configmap_value
from caravan.settings.defaults import defaults_from_schema, fill_defaults, load_builtin_schema
from caravan.settings.installation import (
    build_installation_schema,
    check_custom_schema,
    merge_installation_schema,
)
from caravan.settings.runtime import RuntimeSettings, SettingsDocumentError
from caravan.settings.validation import SettingsError, json_path, validate_settings

__all__ = [
    "RuntimeSettings",
    "SettingsDocumentError",
    "SettingsError",
    "build_installation_schema",
    "check_custom_schema",
    "defaults_from_schema",
    "fill_defaults",
    "json_path",
    "load_builtin_schema",
    "merge_installation_schema",
    "parse_settings_configmap_value",
    "validate_settings",
]
