"""Operations: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from caravan.api.area import Area
from caravan.api.deps import StateDep
from caravan.api.readiness import not_ready

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
    # 503 first thing at SIGTERM: the endpoints drop this replica while it still answers.
    error, details = not_ready(state)
    if not error:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"error": error, "details": details}, status_code=503)


area = Area("health", router)
