"""`caravan load`: Genvid project files (HCL) → a plan of API writes. Pure, plain data.

A Genvid project describes itself with blocks such as `log "web" {...}`, `config {...}`,
`secrets { disco { KEY = "..." } }`, `job "web" { autostart = true dependencies = [...] }`
and `link "web" {...}`. `read_project` parses them (python-hcl2) into plain dicts; a
YAML or JSON file among them holds job definitions (the map `caravan jobsdefs get -o
json` prints), so a project can carry the jobs its logs and `job` blocks name.
`make_plan` compares all that with what the API holds and says what would be created,
replaced or left unchanged, and every error, before anything is written.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions
from lark.exceptions import LarkError

from caravan.client.logtargets import groups_of, listed, log_group, log_target_problem
from caravan.client.plan_view import Row, field_changes, path_changes, plural, unified
from caravan.jobs.definitions import definition_of, new_job, with_definition
from caravan.jobs.definitions import problems as definition_problems
from caravan.jobs.order import find_cycle
from caravan.logs.definitions import check_list
from caravan.secrets.model import validate_secret_id, validate_secret_key
from caravan.settings.defaults import fill_defaults
from caravan.settings.validation import validate_settings

_BLOCK = "__is_block__"
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=True, strip_string_quotes=True)
KNOWN_BLOCKS = ("log", "config", "secrets", "job", "link")
DEFINITION_FILES = (".yaml", ".yml", ".json")
JOB_ATTRIBUTES = ("autostart", "dependencies")


class ProjectError(ValueError):
    """A project file that cannot be read at all (HCL syntax, a wrong block shape)."""


@dataclass
class Project:
    logs: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # `job` blocks
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # whole jobs
    notes: list[str] = field(default_factory=list)


def _is_block(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_BLOCK) is True


def _is_labelled(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and _is_block(next(iter(value.values())))


def plain(value: Any) -> Any:
    """python-hcl2's output as plain data: repeated blocks merged into one mapping."""
    if isinstance(value, list) and value and all(_is_block(v) or _is_labelled(v) for v in value):
        merged: dict[str, Any] = {}
        for item in value:
            if _is_block(item):
                merged = deep_merge(merged, plain(item))
            else:
                (label, body), *_ = item.items()
                merged[label] = deep_merge(merged.get(label, {}), plain(body))
        return merged
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != _BLOCK}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, objects merged at every depth, anything else replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_hcl(text: str, name: str) -> dict[str, Any]:
    try:
        parsed = hcl2.loads(text, serialization_options=_OPTIONS)
    except (LarkError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProjectError(f"{name}: not valid HCL: {first}") from None
    result = plain(parsed)
    if not isinstance(result, dict):
        raise ProjectError(f"{name}: not a project file")
    return result


def parse_definitions(text: str, name: str) -> dict[str, dict[str, Any]]:
    """A job definitions file: a map of job name to definition, in YAML or JSON."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProjectError(f"{name}: not valid YAML or JSON: {exc}") from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in document.items()
    ):
        raise ProjectError(
            f"{name}: expected a map of job name to definition (as `caravan jobsdefs get "
            "-o json` prints)"
        )
    return document


def read_project(files: Iterable[tuple[str, str]]) -> Project:
    """Every file's blocks, later files on top of earlier ones (as Genvid loads them)."""
    project = Project()
    for name, text in files:
        if name.endswith(DEFINITION_FILES):
            project.definitions.update(parse_definitions(text, name))
            continue
        blocks = parse_hcl(text, name)
        for kind, content in blocks.items():
            if kind not in KNOWN_BLOCKS:
                project.notes.append(f"{name}: {kind!r} is not a Genvid project block; ignored")
                continue
            if not isinstance(content, dict):
                raise ProjectError(f"{name}: {kind} must be a block, not an attribute")
            if kind == "config":
                project.config = deep_merge(project.config, content)
            elif kind == "link":
                for link in content:
                    project.notes.append(
                        f"{name}: link {link!r} is not converted: Caravan has no links; the "
                        "Cluster UI (caravan monitor) lists the jobs"
                    )
            else:
                target = {"log": project.logs, "secrets": project.secrets, "job": project.jobs}
                for label, body in content.items():
                    if not isinstance(body, dict):
                        raise ProjectError(f"{name}: {kind} {label!r} must be a block")
                    target[kind][label] = deep_merge(target[kind].get(label, {}), body)
    return project


# -- the plan --------------------------------------------------------------------------------


@dataclass
class Current:
    """What the API holds now."""

    logs: list[dict[str, Any]]
    settings: dict[str, Any]
    schema: dict[str, Any]
    secrets: dict[str, dict[str, str] | None]  # the project's secret ids; None: absent
    jobsdefs: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Change:
    kind: str  # log, settings, secret, job
    name: str
    action: str  # create, replace, unchanged
    detail: str = ""  # what changed, in one line
    diff: tuple[str, ...] = ()  # the unified diff of a replaced document

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "detail": self.detail,
            "diff": list(self.diff),
        }

    def row(self) -> Row:
        return Row(self.action, self.kind, self.name, self.detail, self.diff)


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logs: list[dict[str, Any]] | None = None  # the new whole list, when it changes
    settings: dict[str, Any] | None = None  # the document to POST, when it changes
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # definitions to POST

    @property
    def writes(self) -> int:
        return sum(1 for c in self.changes if c.action != "unchanged")

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "errors": self.errors,
            "notes": self.notes,
        }


def _action(before: Any, after: Any) -> str:
    if before is None:
        return "create"
    return "unchanged" if before == after else "replace"


def _log_summary(entry: Mapping[str, Any]) -> str:
    levels = ", live levels" if entry.get("logLevel") else ""
    return (
        f"{entry.get('job')}/{entry.get('group')}/{entry.get('task')} "
        f"{entry.get('fileName')}{levels}"
    )


def _plan_logs(
    project: Project, current: Current, plan: Plan, jobs: Mapping[str, dict[str, Any]]
) -> None:
    if not project.logs:
        return
    by_id = {str(entry.get("id")): entry for entry in current.logs}
    wanted: dict[str, dict[str, Any]] = {}
    targetless: set[str] = set()
    for log_id, attrs in sorted(project.logs.items()):
        entry = {
            "id": log_id,
            "job": attrs.get("job"),
            "group": log_group(attrs, jobs),
            "task": attrs.get("task"),
            "fileName": attrs.get("fileName", "stdout"),
            "logLevel": attrs.get("logLevel", False),
        }
        problem = log_target_problem(entry, jobs)
        if problem:
            plan.errors.append(f"log {log_id!r}: {problem}")
            targetless.add(log_id)
        entry = {k: v for k, v in entry.items() if v is not None}  # absent: "is required"
        unknown = sorted(set(attrs) - {"job", "group", "task", "fileName", "logLevel"})
        if unknown:
            plan.notes.append(f"log {log_id!r}: {', '.join(unknown)} not converted")
        wanted[log_id] = entry
        before = by_id.get(log_id)
        action = _action(before, entry)
        if before is None:
            plan.changes.append(Change("log", log_id, action, _log_summary(entry)))
        else:
            keys = ("job", "group", "task", "fileName", "logLevel")
            plan.changes.append(Change("log", log_id, action, field_changes(before, entry, keys)))
    merged = [wanted.get(str(e.get("id")), e) for e in current.logs]
    merged += [e for i, e in wanted.items() if i not in by_id]
    _, problems = check_list(merged)
    # A log already said to point at nothing is not said wrong twice.
    said = {f"[{i}]." for i, e in enumerate(merged) if str(e.get("id")) in targetless}
    plan.errors += [
        f"log definitions {p.field}: {p.message}"
        for p in problems
        if not p.field.startswith(tuple(said))
    ]
    if any(c.kind == "log" and c.action != "unchanged" for c in plan.changes):
        plan.logs = merged


def settings_document(
    config: Mapping[str, Any], schema: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The config block as a settings document: sections Caravan's schema does not
    define go under `app`, the installation's own part."""
    known = set((schema.get("properties") or {}).keys())
    document: dict[str, Any] = {}
    notes = []
    for key, value in config.items():
        if key in known or not known:
            document[key] = value
        else:
            document = deep_merge(document, {"app": {key: value}})
            notes.append(f"config {key!r} → settings app.{key} (the installation's own part)")
    return document, notes


def _plan_settings(project: Project, current: Current, plan: Plan) -> None:
    if not project.config:
        return
    document, notes = settings_document(project.config, current.schema)
    plan.notes += notes
    merged = deep_merge(current.settings, document)
    filled = fill_defaults(merged, current.schema)
    errors = validate_settings(filled, current.schema)
    plan.errors += [f"settings {e.path}: {e.message}" for e in errors]
    action = "unchanged" if filled == current.settings else "replace"
    detail = path_changes(current.settings, filled).summary()
    diff = tuple(unified(current.settings, filled, "settings")) if action != "unchanged" else ()
    plan.changes.append(Change("settings", "settings", action, detail, diff))
    if action != "unchanged":
        plan.settings = merged


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _plan_secrets(project: Project, current: Current, plan: Plan) -> None:
    for secret_id, attrs in sorted(project.secrets.items()):
        problem = validate_secret_id(secret_id)
        if problem:
            plan.errors.append(f"secret {secret_id!r}: {problem}")
        values: dict[str, str] = {}
        for key, value in attrs.items():
            key_problem = validate_secret_key(key)
            text = _scalar(value)
            if key_problem:
                plan.errors.append(f"secret {secret_id!r} key {key!r}: {key_problem}")
            elif text is None:
                plan.errors.append(f"secret {secret_id!r} key {key!r}: must be a string")
            else:
                values[key] = text
        before = current.secrets.get(secret_id)
        action = _action(before, values)
        # Key names only: a plan never shows a secret's values.
        if before is None:
            detail = f"{plural(len(values), 'key')}: {listed(values)}"
        else:
            detail = path_changes(before, values).summary()
        plan.changes.append(Change("secret", secret_id, action, detail))
        if action != "unchanged":
            plan.secrets[secret_id] = values


def normalized_definition(name: str, definition: Mapping[str, Any]) -> dict[str, Any]:
    """A definition as the API answers it (defaults filled in), so that loading the
    output of `caravan jobsdefs get -o json` compares equal."""
    return dict(definition_of(with_definition(new_job(name), definition)))


def _definition_shape(definition: Mapping[str, Any]) -> str | None:
    groups = (definition.get("template") or {}).get("taskGroups")
    if not isinstance(groups, list) or not groups:
        return "needs template.taskGroups, a list of task groups"
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            return f"template.taskGroups[{i}] needs a name"
        if not isinstance(group.get("countMax"), int):
            return f"template.taskGroups[{i}] needs countMax, a number"
    return None


def _groups_summary(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    old = {str(g.get("name")): g for g in groups_of(before)}
    new = {str(g.get("name")): g for g in groups_of(after)}
    parts = [f"group {n} changed" for n in sorted(set(old) & set(new)) if old[n] != new[n]]
    parts += [f"group {n} added" for n in sorted(set(new) - set(old))]
    parts += [f"group {n} removed" for n in sorted(set(old) - set(new))]
    return ", ".join(parts)


def _create_summary(definition: Mapping[str, Any]) -> str:
    groups = ", ".join(
        f"{g.get('name')} ({g.get('countInit', 1)}/{g.get('countMax')})"
        for g in groups_of(definition)
    )
    needs = definition.get("dependencies") or []
    after = f"; after {', '.join(needs)}" if needs else ""
    start = "" if definition.get("autostart", True) else "; not in Start All"
    return f"groups (init/max) {groups}{after}{start}; stopped until started"


def _plan_definitions(project: Project, plan: Plan) -> dict[str, dict[str, Any]]:
    """The job definitions the project carries, checked and in the API's shape."""
    wanted: dict[str, dict[str, Any]] = {}
    for name, definition in sorted(project.definitions.items()):
        shape = _definition_shape(definition)
        if shape:
            plan.errors.append(f"job definition {name!r}: {shape}")
            continue
        found = definition_problems(name, definition)
        plan.errors += [f"job definition {name!r} {p.field}: {p.message}" for p in found]
        wanted[name] = normalized_definition(name, definition)
    return wanted


def _plan_jobs(project: Project, current: Current, plan: Plan) -> dict[str, dict[str, Any]]:
    """Plans the jobs; returns every job the project will leave (for the log checks)."""
    wanted = _plan_definitions(project, plan)
    for name, attrs in sorted(project.jobs.items()):
        other = sorted(set(attrs) - set(JOB_ATTRIBUTES))
        if other:
            plan.notes.append(
                f"job {name!r}: {', '.join(other)} not converted (Nomad job templates are not "
                "converted: give the task groups in a job definitions file)"
            )
        base = wanted.get(name) or current.jobsdefs.get(name)
        if base is None:
            plan.errors.append(
                f"job {name!r} does not exist in Caravan nor in the project's job definitions: "
                "add it to a job definitions file (YAML or JSON) given to load, or create it "
                "first (caravan jobsdefs load); Nomad job templates are not converted"
            )
            continue
        updated = copy.deepcopy(base)
        autostart = attrs.get("autostart", base.get("autostart", True))
        if not isinstance(autostart, bool):
            plan.errors.append(f"job {name!r}: autostart must be true or false")
        dependencies = attrs.get("dependencies", base.get("dependencies") or [])
        if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
            plan.errors.append(f"job {name!r}: dependencies must be a list of job names")
            dependencies = []
        updated["autostart"] = autostart
        updated["dependencies"] = list(dependencies)
        wanted[name] = updated
    every = {**current.jobsdefs, **wanted}
    for name, definition in sorted(wanted.items()):
        for dependency in definition.get("dependencies") or []:
            if dependency not in every:
                plan.notes.append(f"job {name!r} depends on {dependency!r}, which is not a job")
        existing = current.jobsdefs.get(name)
        action = _action(existing, definition)
        if existing is None:
            change = Change("job", name, action, _create_summary(definition))
        else:
            detail = ", ".join(
                part
                for part in (
                    field_changes(existing, definition, JOB_ATTRIBUTES),
                    _groups_summary(existing, definition),
                )
                if part
            )
            diff = unified(existing, definition, f"job {name}") if action != "unchanged" else []
            change = Change("job", name, action, detail, tuple(diff))
        plan.changes.append(change)
        if action != "unchanged":
            plan.jobs[name] = definition
    cycle = find_cycle({n: list(d.get("dependencies") or []) for n, d in every.items()})
    if cycle:
        plan.errors.append("job dependency cycle: " + " → ".join(cycle))
    return every


def make_plan(project: Project, current: Current) -> Plan:
    plan = Plan(notes=list(project.notes))
    _plan_settings(project, current, plan)
    jobs = _plan_jobs(project, current, plan)
    _plan_logs(project, current, plan, jobs)
    _plan_secrets(project, current, plan)
    return plan
