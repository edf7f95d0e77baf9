"""The jobs routes' write-through of replicas: one patch at a time per Deployment, never
an older generation's count after a newer one's, and failures left to the operator."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from caravan.kube.client import JSON, KubeClient
from caravan.kube.errors import NotFound, Unavailable
from caravan.kube.scaler import FIELD_MANAGER, DeploymentScaler

pytestmark = pytest.mark.unit


class RecordingKube:
    """merge_patch only: records what reached 'the server', the first call held back."""

    def __init__(self) -> None:
        self.patched: list[tuple[str, int, str | None]] = []
        self.release_first = asyncio.Event()
        self.fail_with: Exception | None = None

    async def merge_patch(self, path: str, patch: JSON, field_manager: str | None = None) -> JSON:
        if not self.patched and not self.release_first.is_set():
            await self.release_first.wait()
        if self.fail_with is not None:
            raise self.fail_with
        deployment, subresource = path.rsplit("/", 2)[-2:]
        assert subresource == "scale"  # as `kubectl scale`: the scale subresource
        self.patched.append((deployment, patch["spec"]["replicas"], field_manager))
        return {}


def scaler_over(kube: RecordingKube) -> DeploymentScaler:
    return DeploymentScaler(cast(KubeClient, kube), "ns")


async def test_a_later_generation_is_never_overwritten_by_an_earlier_one() -> None:
    kube = RecordingKube()
    scaler = scaler_over(kube)
    first = asyncio.create_task(scaler.scale({"web-a": 3}, "uid", 7))
    await asyncio.sleep(0.01)  # generation 7 is in flight, held back
    newer = asyncio.create_task(scaler.scale({"web-a": 5}, "uid", 9))
    older = asyncio.create_task(scaler.scale({"web-a": 4}, "uid", 8))
    await asyncio.sleep(0.01)
    kube.release_first.set()
    await asyncio.gather(first, newer, older)
    assert kube.patched == [("web-a", 3, FIELD_MANAGER), ("web-a", 5, FIELD_MANAGER)]


async def test_a_job_made_again_under_its_name_is_written_from_generation_one() -> None:
    kube = RecordingKube()
    kube.release_first.set()
    scaler = scaler_over(kube)
    await scaler.scale({"web-a": 3}, "old-uid", 12)
    await scaler.scale({"web-a": 1}, "new-uid", 2)
    assert [r for _, r, _ in kube.patched] == [3, 1]


@pytest.mark.parametrize(
    "error", [NotFound(404, "deployments web-a not found"), Unavailable(503, "down")]
)
async def test_failures_are_left_to_the_operator(error: Any) -> None:
    kube = RecordingKube()
    kube.release_first.set()
    kube.fail_with = error
    await scaler_over(kube).scale({"web-a": 3}, "uid", 1)  # does not raise
    assert kube.patched == []
