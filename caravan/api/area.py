"""An area of the API: its name and its router (its service is in caravan.services)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter


@dataclass(frozen=True)
class Area:
    name: str
    router: APIRouter
