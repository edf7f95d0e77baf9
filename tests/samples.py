"""The vote/cheer events document the tests and the events bench share (the one in
examples/events/vote-cheer.json, and variants of it each derived by a named change), and
the manual clock they inject."""

from __future__ import annotations

import copy
import functools
import json
import pathlib
from typing import Any

VOTE_CHEER_EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples/events/vote-cheer.json"


@functools.cache
def _example() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(VOTE_CHEER_EXAMPLE.read_text())["mapreduce"][0]
    return document


def vote_cheer(period: int | None = None) -> dict[str, Any]:
    """A fresh copy of the example: channel "game", maps "votes" and "cheers", reductions
    "vote-count" and "cheer-sum"; `period` (ms), when given, replaces every reduction's."""
    document = copy.deepcopy(_example())
    if period is not None:
        for reduction in document["event"]["game"]["reductions"]:
            reduction["period"] = period
    return document


def without(document: dict[str, Any], *ids: str) -> dict[str, Any]:
    """`document` with the maps and reductions of channel "game" named in `ids` removed."""
    game = document["event"]["game"]
    for part in ("maps", "reductions"):
        game[part] = [item for item in game[part] if item["id"] not in ids]
    return document


def votes_only(reduction: str = "vote-count", period: int = 100) -> dict[str, Any]:
    """The example without cheers: map "votes" and one count reduction, named `reduction`."""
    document = without(vote_cheer(period), "cheers", "cheer-sum")
    document["event"]["game"]["reductions"][0]["id"] = reduction
    return document


class Clock:
    """A clock (milliseconds) for the events service and results log: set `now` to move it."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now
