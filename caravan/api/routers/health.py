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
    summary="Caches are synced, the cluster is reachable and the process is not stopping",
    responses={503: {"description": "Not ready yet, or stopping"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    if state.stopping.is_set():
        # First thing at SIGTERM: the endpoints drop this replica while it still answers.
        return JSONResponse({"error": "stopping", "details": []}, status_code=503)
    errors = [f"{i.kind}: {i.last_error}" for i in state.informers if i.last_error]
    if state.synced and not errors:
        return JSONResponse({"status": "ready"})
    pending = [i.kind for i in state.informers if not i.synced.is_set()]
    return JSONResponse(
        {"error": "not ready", "details": [*(f"{k}: not synced" for k in pending), *errors]},
        status_code=503,
    )


area = Area("health", router)
