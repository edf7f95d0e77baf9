"""Events engine throughput: ``python bench/bench_events.py [--events N] [--no-profile]``.

A vote/cheer document (2 maps, 2 reductions, period 250 ms) fed with 10,000 distinct keys
(5,000 vote options and 5,000 cheer teams), on one core. The clock is simulated so that
periods close while events flow (every batch advances it), which includes the cost of
building the results messages. Prints events/s and a cProfile summary.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from caravan.events.service import EventsService
from tests.samples import Clock, vote_cheer

# The sample vote/cheer document, every 250 ms, the cheers summed only.
DOCUMENT = vote_cheer(period=250)
DOCUMENT["event"]["game"]["reductions"][1]["value"] = ["$sum"]

DISTINCT_KEYS = 10_000
BATCH = 1_000
# Simulated time per batch: 1,000 events per 5 ms is 200,000 events/s of "viewer" load.
MS_PER_BATCH = 5


def make_events(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    half = DISTINCT_KEYS // 2
    options = [f"option-{i}" for i in range(half)]
    teams = [f"team-{i}" for i in range(half)]
    events: list[dict[str, Any]] = []
    for _ in range(n):
        if rnd.random() < 0.5:
            events.append({"key": ["vote"], "value": rnd.choice(options)})
        else:
            events.append({"key": ["cheer", rnd.choice(teams)], "value": rnd.randint(0, 10)})
    return events


def run(events: list[dict[str, Any]]) -> tuple[float, int, int]:
    clock = Clock()
    svc = EventsService(clock=clock)
    assert not svc.replace([DOCUMENT])
    svc.results(0)  # collection on, so messages are really logged
    accepted = 0
    start = time.perf_counter()
    for off in range(0, len(events), BATCH):
        clock.now += MS_PER_BATCH
        accepted += svc.ingest("game", events[off : off + BATCH]).accepted
        svc.results(svc.results_log.end)  # keep the log alive, as a poller would
    svc.tick(clock.now + 250)
    elapsed = time.perf_counter() - start
    return elapsed, accepted, svc.stats().messages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    events = make_events(args.events)
    run(events[:50_000])  # warm up
    best = None
    for _ in range(3):
        elapsed, accepted, messages = run(events)
        best = elapsed if best is None else min(best, elapsed)
    assert best is not None
    assert accepted == len(events), (accepted, len(events))
    print(f"events: {len(events):,}  distinct keys: {DISTINCT_KEYS:,}  batch: {BATCH}")
    print(f"results messages: {messages}")
    print(f"best of 3: {best:.3f} s  ->  {len(events) / best:,.0f} events/s")
    if args.no_profile:
        return
    prof = cProfile.Profile()
    prof.enable()
    run(events[:200_000])
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
    print("\ncProfile (200,000 events, by own time):")
    print(out.getvalue())


if __name__ == "__main__":
    main()
