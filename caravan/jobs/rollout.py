"""The rollout policy of a task group: how a new version replaces running allocations.

Kubernetes counts a pod without a readiness probe as ready as soon as it starts, so a
plain rolling update replaces a working allocation with one that crashes a second
later. As Nomad's update stanza does (`min_healthy_time`, `healthy_deadline`), a new
allocation must stay ready for `minHealthySeconds` before it counts (the Deployment's
`minReadySeconds`), and with `maxUnavailable` 0 no old allocation is removed before a
new one counts. A rollout that has not progressed for `progressDeadlineSeconds` is
stalled: Kubernetes marks the Deployment `ProgressDeadlineExceeded`, reported as a
problem of the group, and with `autoRevert` the job goes back to its last version that
became healthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIN_HEALTHY_SECONDS = 10
PROGRESS_DEADLINE_SECONDS = 300
MAX_SURGE = 1
MAX_UNAVAILABLE = 0


@dataclass(frozen=True)
class RolloutPolicy:
    min_healthy_seconds: int = MIN_HEALTHY_SECONDS
    progress_deadline_seconds: int = PROGRESS_DEADLINE_SECONDS
    max_surge: int = MAX_SURGE
    max_unavailable: int = MAX_UNAVAILABLE
    auto_revert: bool = False

    def deployment_fields(self) -> dict[str, Any]:
        """What the policy sets in the group's Deployment spec."""
        return {
            "minReadySeconds": self.min_healthy_seconds,
            "progressDeadlineSeconds": self.progress_deadline_seconds,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": self.max_surge,
                    "maxUnavailable": self.max_unavailable,
                },
            },
        }


DEFAULT_ROLLOUT = RolloutPolicy()


def _int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def read_rollout(raw: Any) -> RolloutPolicy:
    """A group's `rollout` (absent fields take the safe defaults; the CRD checks ranges)."""
    if not isinstance(raw, Mapping):
        return RolloutPolicy()
    return RolloutPolicy(
        min_healthy_seconds=_int(raw, "minHealthySeconds", MIN_HEALTHY_SECONDS),
        progress_deadline_seconds=_int(raw, "progressDeadlineSeconds", PROGRESS_DEADLINE_SECONDS),
        max_surge=_int(raw, "maxSurge", MAX_SURGE),
        max_unavailable=_int(raw, "maxUnavailable", MAX_UNAVAILABLE),
        auto_revert=raw.get("autoRevert") is True,
    )
