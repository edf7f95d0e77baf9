"""This replica's side of the events cluster, in figures (the events section of /metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ClusterStats:
    connected: bool = False
    epoch: int = 0
    partials_published: int = 0
    partials_lost: int = 0  # dropped from a full outbox, or never sent (crash)
    watermarks_published: int = 0
    publish_retries: int = 0
    finals_received: int = 0
    merging: bool = False
    finals_published: int = 0
    finals_deduplicated: int = 0  # a re-merged period JetStream already held
    late_partials: int = 0  # arrived after their period was merged (past the grace)
    duplicate_partials: int = 0
    open_periods: int = 0
    merged_by_replica: dict[str, int] = field(default_factory=dict)
    live_replicas: int = 0
    last_merge_lag_ms: int = 0
