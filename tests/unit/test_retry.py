"""One retry-with-backoff for every loop that waits out an outage (caravan.retry)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from caravan.retry import Backoff, retrying

log = logging.getLogger(__name__)


def recorded() -> tuple[list[float], Backoff]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return slept, Backoff(0.1, 0.5, jitter=0.0, sleep=sleep)


async def test_delays_double_up_to_the_maximum_and_start_again_after_a_success() -> None:
    slept, backoff = recorded()
    for _ in range(5):
        await backoff.wait()
    assert slept == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    backoff.reset()
    await backoff.wait()
    assert slept[-1] == pytest.approx(0.1)


def test_jitter_only_lengthens_a_delay_a_little() -> None:
    backoff = Backoff(1.0, 1.0, jitter=0.1)
    delays = [backoff.next_delay() for _ in range(50)]
    assert all(1.0 <= d <= 1.1 for d in delays)


async def test_retrying_waits_out_the_listed_errors_only() -> None:
    slept, backoff = recorded()
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("away")
        return "done"

    assert await retrying(flaky, (ConnectionError,), backoff, what="flaky", log=log) == "done"
    assert len(calls) == 3 and slept == pytest.approx([0.1, 0.2])

    async def broken() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await retrying(broken, (ConnectionError,), backoff, what="broken", log=log)


async def test_retrying_gives_up_after_its_attempts() -> None:
    slept, backoff = recorded()

    async def away() -> None:
        raise ConnectionError("away")

    with pytest.raises(ConnectionError):
        await retrying(away, (ConnectionError,), backoff, what="away", log=log, attempts=3)
    assert len(slept) == 2


def test_the_app_does_not_import_nats_unless_configured() -> None:
    code = (
        "import sys\n"
        "import caravan.runner, caravan.api.app, caravan.api.state\n"
        "print('nats' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
