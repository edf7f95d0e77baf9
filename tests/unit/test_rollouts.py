"""Rollouts: a Deployment's rollout state, and the verdict on a job's version."""

from __future__ import annotations

from typing import Any

from caravan.operator.rollouts import COMPLETE, PROGRESSING, STALLED, Rollout, judge, rollout_of


def deployment(
    generation: int = 2,
    observed: int = 2,
    replicas: int = 1,
    updated: int = 1,
    available: int = 1,
    total: int = 1,
    reason: str = "NewReplicaSetAvailable",
) -> dict[str, Any]:
    return {
        "metadata": {"name": "front-web", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": [{"type": "Progressing", "status": "True", "reason": reason}],
        },
    }


def test_rollout_states() -> None:
    assert rollout_of(deployment()) == Rollout("front-web", 2, COMPLETE)
    assert rollout_of(deployment(observed=1)).state == PROGRESSING  # not looked at yet
    # A new allocation started beside the old one, not yet healthy: still rolling out.
    assert rollout_of(deployment(updated=1, available=1, total=2)).state == PROGRESSING
    assert rollout_of(deployment(reason="ProgressDeadlineExceeded")).state == STALLED


def job(auto_revert: bool = True, suspend: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": "front", "generation": 3},
        "spec": {
            "suspend": suspend,
            "taskGroups": [
                {
                    "name": "web",
                    "countInit": 1,
                    "countMax": 3,
                    "rollout": {"autoRevert": auto_revert},
                    "template": {},
                }
            ],
        },
    }


def test_verdict() -> None:
    done = {"front-web": Rollout("front-web", 2, COMPLETE)}
    stalled = {"front-web": Rollout("front-web", 2, STALLED)}
    assert judge(job(), done, {"front-web": 2}).healthy
    # A rollout of an older generation than the one applied says nothing yet.
    assert not judge(job(), done, {"front-web": 3}).healthy
    assert not judge(job(), done, {}).healthy
    # A stopped job runs nothing: no version becomes healthy by being stopped.
    assert not judge(job(suspend=True), done, {"front-web": 2}).healthy
    assert judge(job(), stalled, {"front-web": 2}).stalled_auto_revert == ("web",)
    assert judge(job(auto_revert=False), stalled, {"front-web": 2}).stalled_auto_revert == ()
