"""The job definitions service (Genvid's `jobsdefs`): jobs created, replaced and deleted
from definitions.

A definition is a Job resource seen through Genvid's shape (caravan.jobs.definitions);
jobs made with kubectl are definitions too. A write that would change or delete a started
job is refused unless forced (Genvid's "service running check"). Every write decides on
what the apiserver holds now, never on the store, which may lag behind a write that just
answered. Creating, updating and deleting are distinct rights: the caller's `may` is
asked for each verb a write will use, once that is known from the fresh read.

Before anything is written, each Job the write would store is sent to the apiserver as a
server-side dry run: the CRD's admission rules answer, with the apiserver's own message
(the one kubectl gets). The rules across jobs (a dependency on a missing job, a cycle)
are checked here, on every job as it would be after the write. A plan (`dry_run`) goes
through the same checks and answers what the write would do instead of doing it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from caravan.errors import ConflictError, InvalidError, no_such, quote
from caravan.jobs import definitions
from caravan.jobs.plans import plan_job
from caravan.jobs.spec import read_job
from caravan.kube.client import DEPLOYMENTS, JOBS, JSON
from caravan.kube.errors import Conflict, Invalid, NotFound
from caravan.kube.recorder import EventRecorder, job_regarding
from caravan.kube.rmw import Decision
from caravan.retry import Backoff, retrying
from caravan.services.state import ServerState
from caravan.services.writes import Writes
from caravan.store.store import KIND_JOB

log = logging.getLogger(__name__)

# How many times a definition's trial is sent again while status writes move its Job.
DRY_RUN_ATTEMPTS = 10

# Raises unless the caller may use this verb on jobs (create, update, delete).
May = Callable[[str], Awaitable[object]]


class JobDefinitions:
    def __init__(self, state: ServerState, recorder: EventRecorder | None = None) -> None:
        self.state = state
        # Refused Events on the existing Jobs a definition write could not change.
        self.recorder = recorder

    # Reads -------------------------------------------------------------------------------

    def all(self) -> dict[str, JSON]:
        """Every job's definition, by job name."""
        return {n: definitions.definition_of(b) for n, b in sorted(self._bodies().items())}

    def one(self, name: str) -> JSON:
        body = self._bodies().get(name)
        if body is None:
            raise no_such("job", name)
        return definitions.definition_of(body)

    # Writes ------------------------------------------------------------------------------

    async def put_all(
        self, writes: Writes, named: dict[str, JSON], force: bool, may: May
    ) -> dict[str, JSON]:
        """Creates or replaces every job named; deletes the jobs not named."""
        _, creates, replaces, deletes = await self._checked_all(named, force, may)
        for name in sorted(creates + replaces):
            await self._put(writes, name, named[name], force)
        for name in sorted(deletes):
            await self._delete(writes, name, force)
        return self.all()

    async def plan_all(self, named: dict[str, JSON], may: May) -> JSON:
        """What `put_all` would do, each job's action and diff; nothing is written."""
        current, _, _, deletes = await self._checked_all(named, True, may, tell=False)
        after = {n: _after(current.get(n), n, named[n]) for n in named}
        return _plans(sorted({*named, *deletes}), current, after)

    async def _checked_all(
        self, named: dict[str, JSON], force: bool, may: May, *, tell: bool = True
    ) -> tuple[dict[str, JSON], list[str], list[str], list[str]]:
        """Every check of `put_all`: (the jobs now, creates, replaces, deletes). `tell`:
        a refused new definition of an existing job is told on it (not for a plan)."""
        current = await self._listed()
        _refuse_invalid(named)
        creates = [n for n in named if n not in current]
        after = {n: _after(current.get(n), n, named[n]) for n in named}
        replaces = [
            n
            for n in named
            if n in current and definitions.changes_definition(current[n], after[n])
        ]
        deletes = [n for n in current if n not in named]
        for verb, names in (("create", creates), ("update", replaces), ("delete", deletes)):
            if names:
                await may(verb)
        await self._admit({n: after[n] for n in creates + replaces}, tell)
        # The jobs it does not name are deleted: the rules across jobs see the named ones.
        _refuse_across({n: after[n] for n in named}, named)
        if not force:
            started = [
                n
                for n in [*deletes, *replaces]
                if definitions.is_running(current[n])
                and (n in deletes or definitions.changes_what_runs(current[n], after[n]))
            ]
            _refuse_running(started, "replace or delete")
        await self._refuse_bad_templates(
            {n: named[n] for n in creates + replaces},
            {n: current[n] for n in replaces} if tell else {},
        )
        return current, creates, replaces, deletes

    async def delete_all(self, writes: Writes, force: bool, may: May) -> None:
        current = await self._listed()
        if current:
            await may("delete")
        if not force:
            _refuse_running([n for n, b in current.items() if definitions.is_running(b)], "delete")
        for name in sorted(current):
            await self._delete(writes, name, force)

    async def put_one(
        self, writes: Writes, name: str, definition: JSON, force: bool, may: May
    ) -> JSON:
        """Creates or replaces one job; the verb asked is the one the fresh read calls for."""
        await self._checked_one(name, definition, may)
        stored = await self._put(writes, name, definition, force)
        return definitions.definition_of(stored)

    async def plan_one(self, name: str, definition: JSON, may: May) -> JSON:
        """What `put_one` would do (the running check aside: `restartsAllocations` says
        whether the write needs force); nothing is written."""
        current = await self._checked_one(name, definition, may, tell=False)
        return _plans(
            [name], {name: current} if current else {}, {name: _after(current, name, definition)}
        )

    async def replace(self, writes: Writes, name: str, definition: JSON) -> None:
        """An existing job's definition replaced, running or not (a revert); a job that
        is gone is not made again."""
        if await self._fresh(name) is None:
            raise no_such("job", name)
        await self._put(writes, name, definition, force=True, create=False)

    async def _checked_one(
        self, name: str, definition: JSON, may: May, *, tell: bool = True
    ) -> JSON | None:
        """Every check of `put_one`; the job as it is now (None: a new one). `tell`: as
        in `_checked_all`."""
        current = await self._fresh(name)
        await may("create" if current is None else "update")
        _refuse_invalid({name: definition})
        after = _after(current, name, definition)
        await self._admit({name: after}, tell)
        others = {n: b for n, b in self._bodies().items() if n != name}
        _refuse_across({**others, name: after}, [name])
        await self._refuse_bad_templates(
            {name: definition}, {name: current} if tell and current is not None else {}
        )
        return current

    async def delete_one(self, writes: Writes, name: str, force: bool) -> None:
        if await self._fresh(name) is None:
            raise no_such("job", name)
        await self._delete(writes, name, force)

    # Helpers -----------------------------------------------------------------------------

    def _bodies(self) -> dict[str, JSON]:
        bodies = self.state.store.job_bodies
        return {n: b for n, b in bodies.items() if definitions.defined(b)}

    async def _listed(self) -> dict[str, JSON]:
        """Every job definition as the apiserver has it now."""
        listed = await self.state.kube.list_items(JOBS.collection(self.state.namespace))
        return {
            str(b["metadata"]["name"]): b
            for b in listed.get("items") or []
            if definitions.defined(b)
        }

    async def _fresh(self, name: str) -> JSON | None:
        try:
            body = await self.state.kube.get(JOBS.item(self.state.namespace, name))
        except NotFound:
            return None
        return body if definitions.defined(body) else None

    async def _admit(self, bodies: dict[str, JSON], tell: bool) -> None:
        """Refused, with the apiserver's own messages, unless it would store every one of
        `bodies` (Jobs sent as server-side dry runs: the CRD's rules answer). `tell`: an
        existing job refused a new definition says so in a Refused Event."""
        found: list[definitions.Problem] = []
        found_messages: list[str] = []
        namespace = self.state.namespace
        for name, body in sorted(bodies.items()):
            exists = bool((body.get("metadata") or {}).get("resourceVersion"))
            path = JOBS.item(namespace, name) if exists else JOBS.collection(namespace)
            try:
                await self._dry_run("PUT" if exists else "POST", path, body)
            except Invalid as exc:
                if exists and tell:
                    self._tell_refused(body, exc.message)
                causes = exc.causes or [{"field": "", "message": exc.message}]
                found += [
                    definitions.Problem(
                        f"{name}.{c.get('field')}" if c.get("field") else name,
                        str(c.get("message") or exc.message),
                    )
                    for c in causes
                ]
                found_messages.append(exc.message)
            except Conflict:
                continue  # changed meanwhile: the write itself reads and checks again
        if found:
            raise InvalidError(
                "the job definitions are invalid: " + "; ".join(found_messages),
                [p.to_json() for p in found],
            )

    async def _dry_run(self, method: str, path: str, body: JSON) -> None:
        """The write as a server-side dry run. A dry run judges the definition, not the
        version it was read at: when a status write moved the Job meanwhile (409, as
        the operator's do while pods come and go), it is tried again on the current
        version, with backoff, up to DRY_RUN_ATTEMPTS times."""

        async def send(trial: JSON) -> None:
            await self.state.kube.request(
                method, path, query={"dryRun": "All"}, body=trial, content_type="application/json"
            )

        if method != "PUT":
            await send(body)  # a create: a Conflict says the job exists already
            return
        trial = body

        async def attempt() -> None:
            nonlocal trial
            try:
                await send(trial)
            except Conflict:
                current = await self.state.kube.get(path)
                version = current["metadata"]["resourceVersion"]
                trial = {**trial, "metadata": {**trial["metadata"], "resourceVersion": version}}
                raise

        await retrying(
            attempt,
            (Conflict,),
            Backoff(0.02, 0.5),
            what=f"the trial of {path}",
            log=log,
            level=logging.DEBUG,
            attempts=DRY_RUN_ATTEMPTS,
        )

    async def _refuse_bad_templates(
        self, named: dict[str, JSON], existing: dict[str, JSON]
    ) -> None:
        """Refused unless Kubernetes accepts every group's pod template (server-side dry
        runs). A refused job of `existing` (its body now) says so in a Refused Event."""
        found: list[definitions.Problem] = []
        collection = DEPLOYMENTS.collection(self.state.namespace)
        for name, definition in sorted(named.items()):
            for i, group in enumerate(definition["template"]["taskGroups"]):
                trial = definitions.trial_deployment(name, group)
                try:
                    await self.state.kube.request(
                        "POST",
                        collection,
                        query={"dryRun": "All"},
                        body=trial,
                        content_type="application/json",
                    )
                except Invalid as exc:
                    where = f"{name}.template.taskGroups[{i}].template"
                    found.append(definitions.Problem(where, exc.message))
                    if name in existing:
                        self._tell_refused(existing[name], f"{where}: {exc.message}")
        if found:
            raise InvalidError(
                "Kubernetes refuses the pod template: "
                + "; ".join(f"{p.field}: {p.message}" for p in found),
                [p.to_json() for p in found],
            )

    def _tell_refused(self, body: JSON, why: str) -> None:
        """A Refused Event on the job: its new definition was not taken, and why."""
        if self.recorder is not None:
            note = f"a new definition was refused, the job is unchanged: {why}"
            self.recorder.record(job_regarding(body), "Warning", "Refused", note, "Update")

    async def _put(
        self, writes: Writes, name: str, definition: JSON, force: bool, create: bool = True
    ) -> JSON:
        """Creates or replaces one job from its definition; re-checks on every fresh read."""
        namespace = self.state.namespace

        def decide(current: JSON) -> Decision[ConflictError | None]:
            if not definitions.defined(current):
                return Decision(None, _being_deleted(name))
            updated = definitions.with_definition(current, definition)
            if (
                not force
                and definitions.is_running(current)
                and definitions.changes_what_runs(current, updated)
            ):
                return Decision(None, _running([name], "replace"))
            return Decision(updated, None)

        outcome = await writes.put(
            KIND_JOB,
            JOBS.item(namespace, name),
            decide,
            create=(lambda: definitions.new_job(name)) if create else None,
            collection_path=JOBS.collection(namespace) if create else None,
            cached=self.state.store.job_bodies.get(name),
        )
        if outcome.result is not None:
            raise outcome.result
        return outcome.stored

    async def _delete(self, writes: Writes, name: str, force: bool) -> None:
        """Deletes the job as it is now: read afresh (the running check decides on it),
        then deleted with that uid and resourceVersion as preconditions; if anything
        changed meanwhile (a status write, a job recreated), it is read and decided again."""

        def check(current: JSON) -> None:
            if not definitions.defined(current):
                return  # already being deleted: deleting again changes nothing
            if not force and definitions.is_running(current):
                raise _running([name], "delete")

        try:
            await writes.delete(KIND_JOB, JOBS.item(self.state.namespace, name), check)
        except NotFound:
            return
        except Conflict as exc:
            raise ConflictError(f"job {quote(name)} kept changing; try again") from exc


def _after(current: JSON | None, name: str, definition: JSON) -> JSON:
    """The Job body a write of `definition` would store."""
    return definitions.with_definition(current or definitions.new_job(name), definition)


def _plans(names: list[str], current: dict[str, JSON], after: dict[str, JSON]) -> JSON:
    return {"jobs": {n: plan_job(n, current.get(n), after.get(n)).to_json() for n in sorted(names)}}


def _invalid(found: list[definitions.Problem]) -> InvalidError:
    count = len(found)
    return InvalidError(
        f"the job definitions are invalid ({count} error{'s' if count != 1 else ''}): "
        + "; ".join(f"{p.field}: {p.message}" for p in found),
        [p.to_json() for p in found],
    )


def _refuse_invalid(named: dict[str, JSON]) -> None:
    """What the Job resource cannot say about the definitions (byCluster...)."""
    found = [p for n, d in named.items() for p in definitions.problems(n, d, n)]
    if found:
        raise _invalid(found)


def _refuse_across(bodies: dict[str, JSON], names: Iterable[str]) -> None:
    """The rules across jobs, on every job as it would be after the write."""
    graph = {n: list(read_job(b).dependencies) for n, b in bodies.items()}
    found = definitions.dependency_problems(graph, names)
    if found:
        raise _invalid(found)


def _running(names: list[str], what: str) -> ConflictError:
    listed = ", ".join(quote(n) for n in sorted(names))
    return ConflictError(
        f"would {what} started job{'s' if len(names) != 1 else ''} {listed}: stop "
        "them first, or send force=true"
    )


def _refuse_running(names: list[str], what: str) -> None:
    if names:
        raise _running(names, what)


def _being_deleted(name: str) -> ConflictError:
    return ConflictError(f"job {quote(name)} is being deleted; try again once it is gone")
