"""Operations: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from caravan.api.area import Area
from caravan.api.deps import StateDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Caches are synced and the cluster is reachable",
    responses={503: {"description": "Not ready yet"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    errors = [f"{i.kind}: {i.last_error}" for i in state.informers if i.last_error]
    if state.synced and not errors:
        return JSONResponse({"status": "ready"})
    pending = [i.kind for i in state.informers if not i.synced.is_set()]
    return JSONResponse(
        {"error": "not ready", "details": [*(f"{k}: not synced" for k in pending), *errors]},
        status_code=503,
    )


area = Area("health", router)
