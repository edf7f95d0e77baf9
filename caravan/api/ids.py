"""The ids of path parameters, with the patterns the OpenAPI document declares.

Kubernetes names the objects behind most ids, so a schema-valid id is one Kubernetes
accepts; anything else is refused with 400 before any lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# A DNS subdomain (RFC 1123): the names of Jobs, Pods, Secrets.
SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A DNS label (RFC 1123): the names of containers (tasks).
LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Free-form ids of Caravan's own documents (log ids, loggerIDs): non-empty, no control
# characters.
FREE = r"^[^\x00-\x1f\x7f]+$"

JobId = Annotated[
    str, Path(pattern=SUBDOMAIN, max_length=253, description="The job (a Job resource name)")
]
AllocId = Annotated[
    str, Path(pattern=SUBDOMAIN, max_length=253, description="The allocation (a pod name)")
]
TaskName = Annotated[str, Path(pattern=LABEL, max_length=63, description="The task (container)")]
SecretId = Annotated[
    str, Path(pattern=SUBDOMAIN, max_length=253, description="The secret (a Secret name)")
]
LogId = Annotated[str, Path(pattern=FREE, max_length=253, description="A log id of /v1/log/logs")]
LoggerId = Annotated[
    str, Path(pattern=FREE, max_length=253, description="A loggerID (a log id of /v1/log/logs)")
]
