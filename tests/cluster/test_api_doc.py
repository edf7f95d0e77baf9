"""docs/api.md describes exactly the routes Caravan serves: every operation of the served
/openapi.json has its heading there, and every heading names a served operation (except
the few routes the heading itself marks as outside the OpenAPI document)."""

from __future__ import annotations

import pathlib
import re

import httpx

ROOT = pathlib.Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"
HEADING = re.compile(r"^###\s+`(GET|POST|PUT|PATCH|DELETE|WS)\s+(\S+)`(.*)$")
PARAMETER = re.compile(r"\{[^}]*\}")
OUTSIDE = "outside the OpenAPI document"


def _operation(method: str, path: str) -> str:
    """`POST /v1/jobs/{}`: parameter names do not matter, their places do."""
    shape = PARAMETER.sub("{}", path.rstrip("/") or "/")
    return f"{method.upper()} {shape}"


def documented() -> tuple[set[str], set[str]]:
    """(operations the doc says are in the OpenAPI document, those it says are outside)."""
    inside: set[str] = set()
    outside: set[str] = set()
    for line in API_DOC.read_text().splitlines():
        match = HEADING.match(line)
        if match:
            method, path, rest = match.groups()
            (outside if OUTSIDE in rest else inside).add(_operation(method, path))
    return inside, outside


async def test_every_served_route_is_documented_and_every_documented_one_is_served(
    api: httpx.AsyncClient,
) -> None:
    answer = await api.get("/openapi.json")
    assert answer.status_code == 200
    served = {
        _operation(method, path)
        for path, item in answer.json()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    inside, outside = documented()
    assert served, "the OpenAPI document lists no route"
    assert sorted(served - inside) == [], "served but not described in docs/api.md"
    assert sorted(inside - served) == [], "described in docs/api.md but not served"
    assert not outside & served, "marked as outside the OpenAPI document, yet in it"
    # The routes outside the document do answer (the UI, metrics; the WebSocket is
    # proven by the events tests).
    for operation in sorted(outside):
        method, path = operation.split(" ", 1)
        if method == "GET":
            reply = await api.get(path, follow_redirects=True)
            assert reply.status_code in (200, 401, 403), f"{operation}: {reply.status_code}"
