"""The Lease elector on an in-memory API with a hand-moved clock."""

from __future__ import annotations

from caravan.kube.errors import KubeError
from caravan.operator.leader import LeaseElector
from tests.unit.fakekube import FakeKube


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(kube: FakeKube, identity: str, clock: Clock, events: list[str]) -> LeaseElector:
    return LeaseElector(
        kube.client,
        "ns",
        identity,
        lease_seconds=15,
        renew_seconds=5,
        clock=clock,
        on_started_leading=lambda: events.append(f"{identity} leads"),
        on_stopped_leading=lambda: events.append(f"{identity} stops"),
    )


def holder(kube: FakeKube, a: LeaseElector) -> str:
    return str(kube.objects[a.path]["spec"]["holderIdentity"])


async def test_one_leader_and_a_takeover_only_after_a_whole_silent_lease() -> None:
    kube, clock, events = FakeKube(), Clock(), list[str]()
    a, b = elector(kube, "a", clock, events), elector(kube, "b", clock, events)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 10
    assert await a.try_acquire_or_renew()  # renewed: b's observation starts again
    clock.now += 10
    assert not await b.try_acquire_or_renew()
    clock.now += 15  # a went silent for a whole lease, as b measured it
    assert await b.try_acquire_or_renew()
    spec = kube.objects[a.path]["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert not await a.try_acquire_or_renew()  # a sees b's fresh lease and stands by


async def test_a_renewal_landing_between_a_rivals_read_and_write_keeps_the_leader() -> None:
    kube, clock, events = FakeKube(), Clock(), list[str]()
    a, b = elector(kube, "a", clock, events), elector(kube, "b", clock, events)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 20  # b has seen no renewal for longer than a lease
    renewed = kube.objects[a.path]
    renewed["spec"] = {**renewed["spec"], "renewTime": "later"}
    # a's renewal lands after b read the (expired-looking) Lease: b's write is stale.
    kube.before["replace"] = [lambda: kube.put_object(a.path, renewed)]
    assert not await b.try_acquire_or_renew()
    assert holder(kube, a) == "a"


async def test_a_released_lease_is_taken_at_once() -> None:
    kube, clock, events = FakeKube(), Clock(), list[str]()
    a, b = elector(kube, "a", clock, events), elector(kube, "b", clock, events)
    assert await a.try_acquire_or_renew()
    a._set_leading(True)
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert events == ["a leads", "a stops"]
    assert await b.try_acquire_or_renew()  # no need to wait out the lease
    assert holder(kube, a) == "b"


async def test_a_conflicting_write_loses_the_round_and_an_outage_is_survived() -> None:
    kube, clock, events = FakeKube(), Clock(), list[str]()
    a = elector(kube, "a", clock, events)
    kube.fail("create", KubeError(409, "Conflict", {"reason": "AlreadyExists"}))
    assert not await a.try_acquire_or_renew()
    assert await a.try_acquire_or_renew()
    kube.fail("replace", KubeError(409, "Conflict"))
    assert not await a.try_acquire_or_renew()
    kube.fail("get", KubeError(0, "connection refused"))
    try:
        await a.try_acquire_or_renew()
    except KubeError as exc:
        assert exc.status == 0  # run() decides: leading only while the lease may hold


async def test_a_resigning_leader_releases_and_never_renews_again() -> None:
    kube, clock, events = FakeKube(), Clock(), list[str]()
    a, b = elector(kube, "a", clock, events), elector(kube, "b", clock, events)
    assert await a.try_acquire_or_renew()
    a._set_leading(True)
    await a.resign()
    assert holder(kube, a) == ""
    await a.run()  # returns at once: a resigned elector takes no further round
    assert holder(kube, a) == ""
    assert events == ["a leads", "a stops"]
    assert await b.try_acquire_or_renew()
