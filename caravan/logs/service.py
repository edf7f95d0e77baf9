"""Per-process state of the logs area."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LogsService:
    # Whether the cluster splits stdout from stderr (`stream` of PodLogOptions); learnt
    # from the first read that asks for it.
    split_streams: bool | None = None
