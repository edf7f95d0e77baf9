"""The pod-template decorator that delivers logger levels to every task container.

One projected volume, mounted read-only in every container at `MOUNT_PATH`:

- `defaults.json`: the `loggers.json` key of the loggers ConfigMap (`optional`, so pods
  start before anyone stored defaults; the file is then absent);
- `overrides.json`: the pod's own `caravan.dev/loggers` annotation (downward API).

The kubelet refreshes both in place (no restart): the annotation within seconds, the
ConfigMap at its next sync (about a minute). Mounting with `subPath` would stop the
updates, so the directory itself is mounted.
"""

from __future__ import annotations

from typing import Any, Final

from caravan import labels
from caravan.jobs.spec import JobSpec, TaskGroupSpec, TemplateDecorator

VOLUME_NAME: Final = "caravan-loggers"
MOUNT_PATH: Final = "/etc/caravan/loggers"
DEFAULTS_FILE: Final = "defaults.json"
OVERRIDES_FILE: Final = "overrides.json"
DEFAULTS_KEY: Final = "loggers.json"


def loggers_volume(configmap: str) -> dict[str, Any]:
    return {
        "name": VOLUME_NAME,
        "projected": {
            "sources": [
                {
                    "configMap": {
                        "name": configmap,
                        "optional": True,
                        "items": [{"key": DEFAULTS_KEY, "path": DEFAULTS_FILE}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": OVERRIDES_FILE,
                                "fieldRef": {
                                    "fieldPath": (
                                        f"metadata.annotations['{labels.LOGGERS_ANNOTATION}']"
                                    )
                                },
                            }
                        ]
                    }
                },
            ]
        },
    }


def add_loggers_volume(template: dict[str, Any], configmap: str) -> None:
    """Adds the volume, its mounts and an empty overrides annotation; idempotent.

    The annotation starts as `{}` so `overrides.json` is valid JSON from the first
    moment; an annotation the job's own template sets is kept.
    """
    meta = template.setdefault("metadata", {})
    annotations = meta.get("annotations") or {}
    annotations.setdefault(labels.LOGGERS_ANNOTATION, "{}")
    meta["annotations"] = annotations
    spec = template.setdefault("spec", {})
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") != VOLUME_NAME]
    volumes.append(loggers_volume(configmap))
    spec["volumes"] = volumes
    for container in spec.get("containers") or []:
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != VOLUME_NAME]
        mounts.append({"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": True})
        container["volumeMounts"] = mounts


def loggers_decorator(configmap: str) -> TemplateDecorator:
    """The decorator the operator applies to every task group's pod template."""

    def decorate(template: dict[str, Any], job: JobSpec, group: TaskGroupSpec) -> None:
        add_loggers_volume(template, configmap)

    return decorate
