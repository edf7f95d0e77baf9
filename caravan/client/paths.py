"""Every Cluster API path the client calls, in one place.

A name a user types (a job, a log, a secret id, an allocation) becomes one path segment:
`segment` escapes every reserved character, `/` included, so a name can never reach
another route.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote


def segment(text: str) -> str:
    """`text` as one path segment (nothing is left unescaped, not even `/`)."""
    return quote(text, safe="")


# -- jobs ------------------------------------------------------------------------------------

JOBS = "/v1/jobs"
UPDATE_COUNTS = "/v1/jobs/updatecounts"
JOBSDEFS = "/v1/jobsdefs"


def job(name: str) -> str:
    return f"{JOBS}/{segment(name)}"


def job_allocations(name: str) -> str:
    return f"{job(name)}/allocations"


def job_activity(name: str) -> str:
    return f"{job(name)}/activity"


def job_restart(name: str) -> str:
    return f"{JOBS}/restart/{segment(name)}"


def alloc_restart(alloc: str) -> str:
    return f"/v1/allocations/{segment(alloc)}/restart"


def start_or_stop(verb: Literal["start", "stop"], name: str | None = None) -> str:
    """Start/Stop All without a name; one job's start/stop with one."""
    return f"{JOBS}/{verb}" if name is None else f"{JOBS}/{verb}/{segment(name)}"


def jobsdef(name: str) -> str:
    return f"/v1/jobsdef/{segment(name)}"


def job_versions(name: str) -> str:
    return f"{job(name)}/versions"


def job_version(name: str, version: int) -> str:
    return f"{job_versions(name)}/{int(version)}"


def job_revert(name: str) -> str:
    return f"{job(name)}/revert"


# -- logs and levels -------------------------------------------------------------------------

LOG_DEFINITIONS = "/v1/log/logs"
LOG_DEFAULTS = "/v1/log/defaults"


def log_meta(log: str) -> str:
    return f"/v1/log/meta/{segment(log)}"


def log_read(alloc: str, task: str, fs: Literal["stdout", "stderr"]) -> str:
    return f"/v1/log/fs/{segment(alloc)}/{segment(task)}/{fs}"


def logger_defaults(logger_id: str) -> str:
    return f"{LOG_DEFAULTS}/{segment(logger_id)}"


def alloc_levels(alloc: str) -> str:
    return f"/v1/log/allocs/{segment(alloc)}"


def alloc_logger_levels(alloc: str, logger_id: str) -> str:
    return f"{alloc_levels(alloc)}/{segment(logger_id)}"


# -- settings, secrets, events, UI -----------------------------------------------------------

SETTINGS = "/v1/settings"
SETTINGS_SCHEMA = "/v1/schemas/settings.json"
SECRETS = "/v1/secrets/list"


def secret(secret_id: str) -> str:
    return f"/v1/secrets/secret/{segment(secret_id)}"


EVENTS = "/v1/events"
EVENTS_SEND = "/v1/events/send"


def events_results(counter: int) -> str:
    return f"{EVENTS}/results/{counter}"


UI = "/ui/"
