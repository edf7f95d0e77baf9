"""Label and annotation keys Caravan puts on the objects it manages."""

from typing import Final

GROUP: Final = "caravan.dev"
VERSION: Final = "v1alpha1"
JOB_PLURAL: Final = "jobs"

JOB_LABEL: Final = "caravan.dev/job"
TASK_GROUP_LABEL: Final = "caravan.dev/task-group"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "caravan"
FIELD_MANAGER: Final = "caravan"

# Per-allocation logger overrides (JSON), delivered to the pod through a downward-API file.
LOGGERS_ANNOTATION: Final = "caravan.dev/loggers"
# Bumped on every task pod when Caravan's loggers or settings ConfigMap changes, so the
# kubelet rewrites the pod's ConfigMap volumes at once (caravan/operator/refresh.py).
CONFIG_REVISION_ANNOTATION: Final = "caravan.dev/config-revision"
# When each task group was last restarted (JSON {group: time}), on the Job: written by the
# restart route, copied by the operator into the group's pod template (as `kubectl rollout
# restart` does), so the Deployment replaces its allocations one by one.
RESTARTED_AT_ANNOTATION: Final = "caravan.dev/restarted-at"
