"""Conflict retry and its strategies (caravan.kube.rmw) on an in-memory API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from caravan.kube.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    Unavailable,
)
from caravan.kube.rmw import (
    Decision,
    changes,
    delete_with_precondition,
    patch_with_precondition,
    read_modify_write,
    swap_spec,
)
from tests.unit.fakekube import FakeKube

PATH = "/api/v1/namespaces/ns/configmaps/doc"
COLLECTION = "/api/v1/namespaces/ns/configmaps"


def doc(value: int) -> dict[str, Any]:
    return {"metadata": {"name": "doc"}, "data": {"n": str(value)}}


def add(delta: int) -> Any:
    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        data = dict(body.get("data") or {})
        data["n"] = str(int(data.get("n", "0")) + delta)
        return {**body, "data": data}

    return changes(mutate)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (404, None, NotFound),
        (409, None, Conflict),
        (409, {"reason": "AlreadyExists"}, AlreadyExists),
        (410, None, Gone),
        (403, None, Forbidden),
        (400, None, Invalid),
        (422, None, Invalid),
        (0, None, Unavailable),
        (429, None, Unavailable),
        (500, None, Unavailable),
        (503, None, Unavailable),
    ],
)
def test_errors_are_typed_by_status(status: int, body: Any, kind: type[KubeError]) -> None:
    error = KubeError(status, "reason", body)
    assert type(error) is kind and isinstance(error, KubeError)
    assert error.status == status


async def test_a_rival_write_between_read_and_put_is_reapplied_not_lost() -> None:
    kube = FakeKube()
    kube.put_object(PATH, doc(1))
    # Another process writes n=10 right after our GET: our PUT carries a stale version.
    kube.before["replace"] = [lambda: kube.put_object(PATH, doc(10))]
    stored = (await read_modify_write(kube.client, PATH, add(1))).stored
    assert stored["data"]["n"] == "11"
    assert [verb for verb, _ in kube.calls] == ["get", "replace", "get", "replace"]


async def test_concurrent_writers_of_this_process_take_turns() -> None:
    kube = FakeKube()
    kube.put_object(PATH, doc(0))
    await asyncio.gather(*(read_modify_write(kube.client, PATH, add(1)) for _ in range(20)))
    assert kube.objects[PATH]["data"]["n"] == "20"
    assert sum(verb == "replace" for verb, _ in kube.calls) == 20  # no conflict at all


async def test_a_stale_cached_copy_costs_one_conflict_and_a_fresh_read() -> None:
    kube = FakeKube()
    cached = kube.put_object(PATH, doc(1))
    kube.put_object(PATH, doc(5))
    stored = (await read_modify_write(kube.client, PATH, add(1), cached=cached)).stored
    assert stored["data"]["n"] == "6"
    assert [verb for verb, _ in kube.calls] == ["replace", "get", "replace"]


async def test_a_missing_object_is_created_and_a_creation_race_rereads() -> None:
    kube = FakeKube()
    stored = await read_modify_write(
        kube.client, PATH, add(2), create=lambda: doc(0), collection_path=COLLECTION
    )
    assert stored.stored["data"]["n"] == "2"
    other = "/api/v1/namespaces/ns/configmaps/other"
    kube.before["create"] = [lambda: kube.put_object(other, {"metadata": {"name": "other"}})]
    stored = await read_modify_write(
        kube.client,
        other,
        add(3),
        create=lambda: {"metadata": {"name": "other"}},
        collection_path=COLLECTION,
    )
    assert stored.stored["data"]["n"] == "3"


async def test_a_refusing_mutation_writes_nothing_and_unchanged_is_not_written() -> None:
    kube = FakeKube()
    kube.put_object(PATH, doc(1))

    def refuse(body: dict[str, Any]) -> Decision[str]:
        return Decision(None, "refused")

    refused = await read_modify_write(kube.client, PATH, refuse)
    assert refused.result == "refused" and not refused.written
    unchanged = await read_modify_write(kube.client, PATH, changes(lambda body: body))
    assert not unchanged.written and unchanged.stored["data"]["n"] == "1"
    assert all(verb == "get" for verb, _ in kube.calls)


async def test_a_refusal_on_a_stale_copy_is_decided_again_on_a_fresh_read() -> None:
    kube = FakeKube()
    cached = kube.put_object(PATH, doc(0))
    kube.put_object(PATH, doc(1))

    def positive_only(body: dict[str, Any]) -> Decision[str]:
        n = int(body["data"]["n"])
        if n <= 0:
            return Decision(None, "refused")
        return Decision({**body, "data": {"n": str(n + 1)}}, "done")

    outcome = await read_modify_write(kube.client, PATH, positive_only, cached=cached)
    assert outcome.result == "done" and outcome.stored["data"]["n"] == "2"
    assert [verb for verb, _ in kube.calls] == ["get", "replace"]


async def test_an_error_in_a_decision_is_not_swallowed_on_the_cached_copy() -> None:
    kube = FakeKube()
    cached = kube.put_object(PATH, doc(0))

    def broken(body: dict[str, Any]) -> Decision[None]:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await read_modify_write(kube.client, PATH, broken, cached=cached)
    assert kube.calls == []


async def test_an_object_that_keeps_changing_ends_in_conflict() -> None:
    kube = FakeKube()
    kube.put_object(PATH, doc(1))
    kube.fail("replace", *(KubeError(409, "Conflict") for _ in range(3)))
    with pytest.raises(Conflict):
        await read_modify_write(kube.client, PATH, add(1), attempts=3)
    with pytest.raises(NotFound):
        await read_modify_write(kube.client, PATH + "x", add(1))


async def test_a_precondition_patch_sends_the_version_read_and_retries() -> None:
    kube = FakeKube()
    kube.put_object(PATH, doc(1))
    kube.before["merge_patch"] = [lambda: kube.put_object(PATH, doc(7))]

    def annotate(body: dict[str, Any]) -> dict[str, Any] | None:
        return {"metadata": {"annotations": {"seen": body["data"]["n"]}}}

    stored = await patch_with_precondition(kube.client, PATH, annotate)
    assert stored["metadata"]["annotations"] == {"seen": "7"}  # decided on the fresh read
    assert stored["data"] == {"n": "7"}
    calls = len(kube.calls)
    await patch_with_precondition(kube.client, PATH, lambda body: None)
    assert [verb for verb, _ in kube.calls[calls:]] == ["get"]


async def test_a_precondition_delete_removes_only_what_was_checked() -> None:
    kube = FakeKube()
    kube.put_object(PATH, doc(1))

    def only_small(body: dict[str, Any]) -> None:
        if int(body["data"]["n"]) > 5:
            raise PermissionError("not ours")

    # Replaced between our check and our delete: the precondition fails, we look again.
    kube.before["delete"] = [lambda: kube.put_object(PATH, doc(9))]
    with pytest.raises(PermissionError):
        await delete_with_precondition(kube.client, PATH, only_small)
    assert PATH in kube.objects
    kube.put_object(PATH, doc(2))
    await delete_with_precondition(kube.client, PATH, only_small)
    assert PATH not in kube.objects
    with pytest.raises(NotFound):
        await delete_with_precondition(kube.client, PATH)


JOB = "/apis/caravan.dev/v1alpha1/namespaces/ns/jobs/web"


def job(count: int, uid: str = "u1", status: str = "pending") -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "uid": uid},
        "spec": {"taskGroups": [{"name": "g", "count": count}]},
        "status": {"status": status},
    }


def plus(delta: int) -> Any:
    return changes(spec_plus(delta))


def spec_plus(delta: int) -> Any:
    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        groups = [{**g, "count": g["count"] + delta} for g in body["spec"]["taskGroups"]]
        return {**body, "spec": {**body["spec"], "taskGroups": groups}}

    return mutate


def count_of(kube: FakeKube) -> int:
    return int(kube.objects[JOB]["spec"]["taskGroups"][0]["count"])


async def test_a_status_write_between_read_and_swap_costs_nothing() -> None:
    kube = FakeKube()
    kube.put_object(JOB, job(1))
    # The operator writes the status right after our GET: the PUT's version would be stale.
    kube.before["json_patch"] = [lambda: kube.put_object(JOB, job(1, status="running"))]
    stored = (await swap_spec(kube.client, JOB, plus(1))).stored
    assert [verb for verb, _ in kube.calls] == ["get", "json_patch"]
    assert stored["spec"]["taskGroups"][0]["count"] == 2 == count_of(kube)
    assert kube.objects[JOB]["status"] == {"status": "running"}  # theirs, kept


async def test_a_rival_spec_change_is_read_again_and_reapplied() -> None:
    kube = FakeKube()
    cached = kube.put_object(JOB, job(1))
    kube.put_object(JOB, job(10))  # the cached copy is stale
    swapped = await swap_spec(kube.client, JOB, plus(1), cached=cached)
    assert swapped.stored["metadata"]["uid"] == "u1"
    assert count_of(kube) == 11
    # the swap of the cached copy failed its test; a read told it was a conflict
    assert [verb for verb, _ in kube.calls] == ["json_patch", "get", "get", "json_patch"]


async def test_a_job_made_again_under_its_name_is_not_swapped_blindly() -> None:
    kube = FakeKube()
    cached = kube.put_object(JOB, job(3))
    kube.put_object(JOB, job(3, uid="u2"))  # same spec, another object
    await swap_spec(kube.client, JOB, plus(1), cached=cached)
    assert count_of(kube) == 4 and kube.objects[JOB]["metadata"]["uid"] == "u2"
    assert [verb for verb, _ in kube.calls] == ["json_patch", "get", "get", "json_patch"]


async def test_an_invalid_spec_is_refused_not_retried() -> None:
    kube = FakeKube()
    kube.put_object(JOB, job(1))
    kube.fail("json_patch", KubeError(422, "Invalid", {"message": "count: must be >= 0"}))
    with pytest.raises(Invalid) as refused:
        await swap_spec(kube.client, JOB, plus(-5))
    assert "must be" in refused.value.message
    assert count_of(kube) == 1


async def test_a_mutation_beyond_the_spec_is_a_programming_error() -> None:
    kube = FakeKube()
    kube.put_object(JOB, job(1))

    def relabel(body: dict[str, Any]) -> dict[str, Any]:
        return {**spec_plus(1)(body), "metadata": {**body["metadata"], "labels": {"a": "b"}}}

    with pytest.raises(ValueError, match="more than the spec"):
        await swap_spec(kube.client, JOB, changes(relabel))
    assert count_of(kube) == 1
