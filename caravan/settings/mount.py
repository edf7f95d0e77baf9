"""The settings file of task pods: the settings ConfigMap mounted read-only.

Every container of every task group sees the stored (filled, valid) settings document at
`/etc/caravan/settings/settings.json`, and its path in `CARAVAN_SETTINGS_FILE`. The kubelet
refreshes a ConfigMap volume in place after a change (at once: the operator nudges the
pods, caravan/operator/refresh.py), so
processes that re-read the file see new settings without a restart. The volume is
optional: a pod still starts when the ConfigMap is missing (the file is then absent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from caravan.settings.service import SETTINGS_KEY

SETTINGS_VOLUME = "caravan-settings"
SETTINGS_DIR = "/etc/caravan/settings"
SETTINGS_FILE = f"{SETTINGS_DIR}/{SETTINGS_KEY}"
SETTINGS_FILE_ENV = "CARAVAN_SETTINGS_FILE"

# The operator's TemplateDecorator: (pod template, job spec, group spec) -> None.
Decorator = Callable[[dict[str, Any], Any, Any], None]


def settings_file_decorator(configmap_name: str) -> Decorator:
    """Mounts ConfigMap `configmap_name` (key settings.json) into every container."""

    def decorate(template: dict[str, Any], _job: Any, _group: Any) -> None:
        mount_settings_file(template, configmap_name)

    return decorate


def mount_settings_file(template: dict[str, Any], configmap_name: str) -> None:
    """Adds the volume, mounts and variable to a pod template, in place; idempotent."""
    spec = template.setdefault("spec", {})
    volume = {
        "name": SETTINGS_VOLUME,
        "configMap": {
            "name": configmap_name,
            "items": [{"key": SETTINGS_KEY, "path": SETTINGS_KEY}],
            "optional": True,
        },
    }
    # The name is Caravan's: a user volume of that name is replaced, never doubled.
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") != SETTINGS_VOLUME]
    spec["volumes"] = [*volumes, volume]
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            _mount_in(container)


def _mount_in(container: dict[str, Any]) -> None:
    mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != SETTINGS_VOLUME]
    # A container that already mounts something at our path keeps its own (two mounts on
    # one path would make the whole Deployment invalid).
    if not any(m.get("mountPath", "").rstrip("/") == SETTINGS_DIR for m in mounts):
        mounts.append({"name": SETTINGS_VOLUME, "mountPath": SETTINGS_DIR, "readOnly": True})
    container["volumeMounts"] = mounts
    env = list(container.get("env") or [])
    if not any(e.get("name") == SETTINGS_FILE_ENV for e in env):
        env.append({"name": SETTINGS_FILE_ENV, "value": SETTINGS_FILE})
    container["env"] = env
