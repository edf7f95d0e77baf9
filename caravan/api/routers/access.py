"""`GET /v1/access`: what the caller may do, so a client (the UI) can disable the rest.

Each action is the Kubernetes permission the API itself checks for the routes behind it
(docs/install.md's table). The answers come from the same SubjectAccessReviews, through
the same reviewer and its short-lived decision cache (`auth.DECISION_TTL_SECONDS`), so
the page and the API never disagree for longer than that.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from caravan.api.area import Area
from caravan.api.auth import AccessReviewer, Caller, authenticate
from caravan.api.deps import StateDep
from caravan.api.errors import ApiError, ClusterError
from caravan.api.models import responses
from caravan.config import Config
from caravan.labels import GROUP

router = APIRouter(prefix="/v1", tags=["access"])


@dataclass(frozen=True)
class Action:
    """One thing a client may want to do, and the Kubernetes action the API checks for it."""

    id: str
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    name: str = ""
    routes: str = ""

    @property
    def target(self) -> str:
        """`pods/log`, `jobs.caravan.dev`, `configmaps/caravan-settings`: as kubectl says it."""
        text = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        if self.group:
            text += f".{self.group}"
        if self.name:
            text += f" named {self.name}"
        return text


def actions(config: Config) -> list[Action]:
    """Every action of the API, in the order of docs/install.md's permission table."""
    settings = config.configmaps.settings
    return [
        Action("jobs.read", "list", "jobs", GROUP, routes="GET /v1/jobs"),
        Action("jobs.write", "patch", "jobs", GROUP, routes="start, stop, updatecounts, restart"),
        Action("allocations.read", "list", "pods", routes="allocations, GET /v1/log/meta"),
        Action("allocations.restart", "delete", "pods", routes="POST /v1/allocations/{id}/restart"),
        Action(
            "versions.read",
            "get",
            "controllerrevisions",
            "apps",
            routes="GET /v1/jobs/{id}/versions, GET /v1/jobs/{id}/versions/{n}",
        ),
        Action("jobs.revert", "update", "jobs", GROUP, routes="POST /v1/jobs/{id}/revert"),
        Action("logs.read", "get", "pods", subresource="log", routes="GET /v1/log/fs"),
        Action("logs.definitions.read", "get", "configmaps", routes="GET /v1/log/logs"),
        Action("loggers.defaults.write", "update", "configmaps", routes="POST /v1/log/defaults"),
        Action("loggers.overrides.read", "get", "pods", routes="GET /v1/log/allocs"),
        Action("loggers.overrides.write", "patch", "pods", routes="POST/DELETE /v1/log/allocs"),
        Action("events.read", "get", "configmaps", routes="GET /v1/events, stream"),
        Action("events.write", "update", "configmaps", routes="POST /v1/events, send"),
        Action("settings.read", "get", "configmaps", name=settings, routes="GET /v1/settings"),
        Action("settings.write", "update", "configmaps", name=settings, routes="POST settings"),
        Action("secrets.list", "list", "secrets", routes="GET /v1/secrets/list"),
        Action("secrets.read", "get", "secrets", routes="GET /secrets/secret/{id}"),
        Action("secrets.create", "create", "secrets", routes="POST (new secret)"),
        Action("secrets.update", "update", "secrets", routes="POST (existing secret)"),
        Action("secrets.delete", "delete", "secrets", routes="DELETE /secrets/secret/{id}"),
    ]


class ActionView(BaseModel):
    allowed: bool
    needs: str = Field(
        description="The Kubernetes permission checked, e.g. `patch jobs.caravan.dev`"
    )
    reason: str = Field(description="Why not, as a sentence; empty when allowed.")


class AccessView(BaseModel):
    mode: str = Field(description="`none` (loopback, no authentication) or `kubernetes`")
    user: str = Field(description="Who the token belongs to (`caravan:local` in mode none)")
    namespace: str
    actions: dict[str, ActionView]


def denial(who: Caller, action: Action, namespace: str, reason: str) -> str:
    sentence = f"{who.username} may not {action.verb} {action.target} in namespace {namespace}"
    return sentence + (f": {reason}" if reason else "")


async def decide(
    reviewer: AccessReviewer | None, who: Caller, action: Action, namespace: str
) -> ActionView:
    needs = f"{action.verb} {action.target}"
    if reviewer is None:  # mode none: everything the process itself may do
        return ActionView(allowed=True, needs=needs, reason="")
    allowed, reason = await reviewer.allowed(
        who, action.verb, action.resource, action.group, action.subresource, action.name
    )
    return ActionView(
        allowed=allowed,
        needs=needs,
        reason="" if allowed else denial(who, action, namespace, reason),
    )


@router.get(
    "/access",
    response_model=AccessView,
    responses=responses(),
    summary="What the caller may do: one SubjectAccessReview per action (cached briefly)",
)
async def get_access(request: Request, state: StateDep) -> AccessView:
    # Any authenticated caller may ask what they themselves may do (as `kubectl auth
    # can-i` does); no permission beyond a valid token is needed.
    who = await authenticate(request)
    config = state.config
    reviewer: AccessReviewer | None = state.auth if config.auth_mode == "kubernetes" else None
    todo = actions(config)
    try:
        views = await asyncio.gather(*(decide(reviewer, who, a, config.namespace) for a in todo))
    except ClusterError as exc:
        raise ApiError(503, f"could not review access: {exc.message}") from exc
    return AccessView(
        mode=config.auth_mode,
        user=who.username,
        namespace=config.namespace,
        actions={a.id: v for a, v in zip(todo, views, strict=True)},
    )


area = Area("access", router)
