"""The status subresource of a Job: what kubectl shows at a glance."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from caravan.jobs.failures import DeploymentFacts
from caravan.jobs.spec import JobSpec
from caravan.jobs.summary import PodFacts
from caravan.jobs.view import job_view


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(
    previous: Mapping[str, Mapping[str, Any]],
    kind: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = previous.get(kind, {})
    # lastTransitionTime moves only when the status flips, as Kubernetes conditions do.
    since = old.get("lastTransitionTime") if old.get("status") == status else None
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or now,
        "observedGeneration": generation,
    }


def job_status_body(
    spec: JobSpec,
    pods_by_group: Mapping[str, Iterable[PodFacts]],
    generation: int,
    previous: Mapping[str, Any] | None = None,
    now: str | None = None,
    apply_error: str | None = None,
    refusal: str | None = None,
    dependency_problem: str | None = None,
    deployments: Mapping[str, DeploymentFacts] | None = None,
) -> dict[str, Any]:
    """The status subresource; `apply_error` is why Kubernetes refused the Deployments,
    `refusal` why Caravan did (the pod policy), `dependency_problem` what is wrong with
    the job's dependencies among the other jobs, `deployments` what each group's
    Deployment says (by group)."""
    now = now or _now()
    view = job_view(spec, pods_by_group, deployments)
    running = sum(g["summary"]["running"] for g in view["taskGroups"])
    desired = sum(g["count"] for g in view["taskGroups"])
    groups = [
        {"name": g["name"], "count": g["count"], "summary": g["summary"]}
        for g in view["taskGroups"]
    ]
    previous_conditions = {
        c.get("type", ""): c
        for c in (previous or {}).get("conditions") or []
        if isinstance(c, dict)
    }
    available = not spec.suspend and running >= desired
    lagging = [g["name"] for g in view["taskGroups"] if g["summary"]["running"] < g["count"]]
    # Each group's problems, most widespread first: the Degraded condition names them all,
    # its reason is the first one's (Kubernetes' own word).
    problems = sorted(
        ((g["name"], p) for g in view["taskGroups"] for p in g["problems"]),
        key=lambda gp: -gp[1]["allocations"],
    )
    conditions = [
        # As a Deployment's: `kubectl wait --for=condition=Available cjob/NAME`.
        _condition(
            previous_conditions,
            "Available",
            available,
            "Stopped" if spec.suspend else ("AllRunning" if available else "Waiting"),
            "job is stopped"
            if spec.suspend
            else (
                "every allocation is running" if available else f"waiting for {', '.join(lagging)}"
            ),
            generation,
            now,
        ),
        _condition(
            previous_conditions,
            "Degraded",
            bool(problems),
            problems[0][1]["reason"] if problems else "NoProblems",
            "; ".join(f"{g}: {p['reason']}: {p['message']}" for g, p in problems)[:1000]
            if problems
            else "no task group reports a problem",
            generation,
            now,
        ),
        # Says on the Job itself when its task groups cannot be applied (an invalid pod
        # template, a quota): otherwise only the operator's log would tell.
        _condition(
            previous_conditions,
            "Reconciled",
            apply_error is None and refusal is None,
            "Refused" if refusal else ("ApplyFailed" if apply_error else "Applied"),
            (f"refused by the pod policy: {refusal}" if refusal else None)
            or apply_error
            or "every task group's Deployment matches the spec",
            generation,
            now,
        ),
        # Rules across jobs, which admission cannot check: kubectl can write a job that
        # depends on a missing job, or close a cycle.
        _condition(
            previous_conditions,
            DEPENDENCIES_CONDITION,
            dependency_problem is None,
            dependency_reason(dependency_problem),
            dependency_problem or "every job it depends on exists, without a cycle",
            generation,
            now,
        ),
    ]
    return {
        "status": view["status"],
        # One line for `kubectl get cjob`: the first problem and where.
        "problem": _headline(problems),
        "running": running,
        "desired": desired,
        "groupCount": len(groups),
        "observedGeneration": generation,
        "taskGroups": groups,
        "conditions": conditions,
    }


DEPENDENCIES_CONDITION = "DependenciesResolved"


def dependency_reason(problem: str | None) -> str:
    if problem is None:
        return "Resolved"
    return "DependencyCycle" if "cycle" in problem else "MissingDependency"


def dependency_condition_of(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """A status with only its DependenciesResolved condition (a copy): all that
    dependency_condition_stale reads, kept per job without the rest of the status."""
    return {
        "conditions": [
            dict(condition)
            for condition in (status or {}).get("conditions") or []
            if isinstance(condition, Mapping) and condition.get("type") == DEPENDENCIES_CONDITION
        ]
    }


def dependency_condition_stale(status: Mapping[str, Any] | None, problem: str | None) -> bool:
    """Whether a job's DependenciesResolved condition no longer says `problem` (another
    job appeared, went, or changed its dependencies): its job needs a pass."""
    for condition in (status or {}).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == DEPENDENCIES_CONDITION:
            was = None if condition.get("status") == "True" else condition.get("message")
            return bool(was != problem)
    return problem is not None


def _headline(problems: list[tuple[str, Any]]) -> str:
    if not problems:
        return ""
    group, first = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{first['reason']} in {group}{more}"


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Compares what matters, so a status write never triggers another one."""
    if not old:
        return True
    keys = (
        "status",
        "problem",
        "running",
        "desired",
        "groupCount",
        "observedGeneration",
        "taskGroups",
    )
    if any(old.get(k) != new.get(k) for k in keys):
        return True
    return _timeless(old.get("conditions")) != _timeless(new.get("conditions"))


def _timeless(conditions: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions or []]
