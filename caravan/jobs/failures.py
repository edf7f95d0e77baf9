"""Why an allocation or a task group is not running, in Kubernetes' words.

Pure: reads pods and Deployments as the API server returns them. A pod's problem is one
(reason, message) pair, small on purpose: the store keeps it for every pod (memory).
`reason` is Kubernetes' own word (CrashLoopBackOff, ErrImagePull, OOMKilled,
Unschedulable, FailedCreate, ...); `message` says it for a person.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from caravan.jobs.shapes import Problem, TaskState, TaskView, Termination
from caravan.jobs.times import rfc3339_utc

# Waiting reasons that are a normal step of starting, not a problem.
_STARTING = frozenset({"ContainerCreating", "PodInitializing"})
# Longest message kept (the scheduler's can list every node): the store holds one per pod.
MAX_MESSAGE = 300

NONE: tuple[str, str] = ("", "")


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _exit_words(code: Any) -> str:
    if not isinstance(code, int):
        return "ended"
    if code > 128:
        return f"was killed by signal {code - 128} (exit code {code})"
    return f"exited with code {code}"


def _last_line(text: Any) -> str:
    """The last non-empty line of a termination message (e.g. the last stderr line)."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _memory_limit(pod: Mapping[str, Any], container: str) -> str:
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == container:
            return str(((c.get("resources") or {}).get("limits") or {}).get("memory") or "")
    return ""


def _termination_words(pod: Mapping[str, Any], who: str, term: Mapping[str, Any]) -> str:
    name = who.rpartition(" ")[2]
    if term.get("reason") == "OOMKilled":
        limit = _memory_limit(pod, name)
        within = f" of {limit}" if limit else ""
        return f"{who} was killed for using more than its memory limit{within} (OOMKilled)"
    words = f"{who} {_exit_words(term.get('exitCode'))}"
    last = _last_line(term.get("message"))
    return f"{words}: {last}" if last else words


def _container_problem(
    pod: Mapping[str, Any], status: Mapping[str, Any], init: bool
) -> tuple[str, str]:
    who = f"{'init task' if init else 'task'} {status.get('name', '')}"
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    waiting = state.get("waiting")
    if waiting is not None:
        reason = str(waiting.get("reason") or "")
        if not reason or reason in _STARTING:
            return NONE
        if reason == "CrashLoopBackOff":
            if last.get("reason") == "OOMKilled":
                # The cause is the more useful word; CrashLoopBackOff is its consequence.
                return "OOMKilled", _termination_words(pod, who, last) + "; restarting"
            words = _termination_words(pod, who, last) if last else f"{who} keeps ending"
            return reason, f"{words}; Kubernetes restarts it after a growing delay"
        detail = str(waiting.get("message") or "")
        return reason, f"{who}: {detail}" if detail else f"{who} is waiting: {reason}"
    terminated = state.get("terminated")
    if terminated is not None:
        reason = str(terminated.get("reason") or "")
        if reason == "Completed" or terminated.get("exitCode") == 0:
            return NONE  # ended well (a Deployment restarts it; the next state tells)
        if reason != "OOMKilled" and int(status.get("restartCount") or 0) > 0:
            # Ended again after restarts: the moment between two runs of a crash loop,
            # named as the loop (not "Error" one instant, CrashLoopBackOff the next).
            reason = "CrashLoopBackOff"
        return reason or "Error", _termination_words(pod, who, terminated)
    return NONE


def pod_problem(pod: Mapping[str, Any]) -> tuple[str, str]:
    """(reason, message) of what keeps the pod from running; ("", "") when nothing."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return NONE  # going away: what it suffered no longer matters
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Failed":
        reason = str(status.get("reason") or "Failed")
        return reason, _short(str(status.get("message") or f"the allocation failed ({reason})"))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = str(condition.get("reason") or "Unschedulable")
            message = str(condition.get("message") or "no node can take it")
            return reason, _short(message)
    for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses")):
        for container in status.get(key) or []:
            found = _container_problem(pod, container, init)
            if found != NONE:
                return found[0], _short(found[1])
    return NONE


def interned_problem(pod: Mapping[str, Any]) -> tuple[str, str]:
    """pod_problem with shared strings: the pods of a group usually fail alike (memory)."""
    reason, message = pod_problem(pod)
    return sys.intern(reason), sys.intern(message)


# Task views (allocations route) ------------------------------------------------------


def _termination(term: Mapping[str, Any] | None) -> Termination | None:
    if not term:
        return None
    code = term.get("exitCode")
    return {
        "reason": str(term.get("reason") or ""),
        "exitCode": code if isinstance(code, int) else None,
        "finishedAt": rfc3339_utc(str(term.get("finishedAt") or "")),
    }


def task_view(pod: Mapping[str, Any], name: str, status: Mapping[str, Any] | None) -> TaskView:
    """One task (container) of an allocation: its state and how it last ended."""
    status = status or {}
    state = status.get("state") or {}
    last = _termination((status.get("lastState") or {}).get("terminated"))
    reason, message = _container_problem(pod, status, init=False) if status else NONE
    word: TaskState
    if "terminated" in state:
        word = "terminated"
        ended = state["terminated"] or {}
        code = ended.get("exitCode")
        exit_code = code if isinstance(code, int) else None
        reason = reason or str(ended.get("reason") or "")
    elif "running" in state:
        word, exit_code = "running", None
    else:
        word = "waiting"
        waiting = state.get("waiting") or {}
        reason = reason or str(waiting.get("reason") or "")
        # Waiting to run again after it ended: the code it ended with is the news.
        exit_code = (
            last["exitCode"] if last and reason in ("CrashLoopBackOff", "OOMKilled") else None
        )
    return {
        "name": name,
        "state": word,
        "reason": reason,
        "message": _short(message) if message else "",
        "exitCode": exit_code,
        "restarts": int(status.get("restartCount") or 0),
        "lastTermination": last,
    }


def task_views(pod: Mapping[str, Any]) -> list[TaskView]:
    spec = pod.get("spec") or {}
    statuses = {
        str(s.get("name", "")): s for s in (pod.get("status") or {}).get("containerStatuses") or []
    }
    names = [str(c.get("name", "")) for c in spec.get("containers") or []]
    return [task_view(pod, name, statuses.get(name)) for name in names]


# Deployments -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeploymentFacts:
    """What a task group's Deployment says of allocations it could not make or start."""

    name: str
    job: str
    group: str
    # The ReplicaFailure condition (copied by Kubernetes from the ReplicaSet): pods it
    # could not create, reason FailedCreate. "" when none.
    failure_reason: str = ""
    failure_message: str = ""
    # The Progressing condition's message when its reason is ProgressDeadlineExceeded.
    stalled_message: str = ""


def deployment_facts(body: Mapping[str, Any], job_label: str, group_label: str) -> DeploymentFacts:
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    failure_reason = failure_message = stalled = ""
    for condition in (body.get("status") or {}).get("conditions") or []:
        kind, reason = condition.get("type"), str(condition.get("reason") or "")
        if kind == "ReplicaFailure" and condition.get("status") == "True":
            failure_reason = sys.intern(reason or "FailedCreate")
            failure_message = sys.intern(_short(str(condition.get("message") or "")))
        elif kind == "Progressing" and reason == "ProgressDeadlineExceeded":
            stalled = _short(str(condition.get("message") or ""))
    return DeploymentFacts(
        name=str(meta.get("name", "")),
        job=str(labels.get(job_label, "")),
        group=str(labels.get(group_label, "")),
        failure_reason=failure_reason,
        failure_message=failure_message,
        stalled_message=stalled,
    )


# Task groups -------------------------------------------------------------------------


def group_problems(
    pod_problems: Iterable[tuple[str, str]],
    missing: int,
    deployment: DeploymentFacts | None,
    not_running: int = 0,
) -> list[Problem]:
    """A group's problems from its pods' (reason, message), the allocations that have no
    pod (`missing`) and its Deployment: one entry per reason (with the message of its
    first pod), sorted by reason. `not_running`: wanted allocations not running."""
    found: dict[str, Problem] = {}
    for reason, message in pod_problems:
        if not reason:
            continue
        entry = found.get(reason)
        if entry is None:
            found[reason] = {"reason": reason, "message": message, "allocations": 1}
        else:
            entry["allocations"] += 1
    if deployment is not None and deployment.failure_reason and missing > 0:
        reason = deployment.failure_reason
        message = deployment.failure_message or "Kubernetes could not create the allocations"
        found[reason] = {"reason": reason, "message": message, "allocations": missing}
    if not found and deployment is not None and deployment.stalled_message:
        found["ProgressDeadlineExceeded"] = {
            "reason": "ProgressDeadlineExceeded",
            "message": deployment.stalled_message,
            "allocations": not_running,
        }
    return [found[r] for r in sorted(found)]
