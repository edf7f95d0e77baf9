"""Per-process state of the logs area."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LogsService:
    # Whether kube-apiserver accepts `stream` (PodLogOptions, the PodLogsQuerySplitStreams
    # gate); learnt from the first read that asks for it.
    split_streams: bool | None = None
    # Whether each node's kubelet really splits. One without the gate (or kwok's fake
    # kubelet) ignores `stream` and answers the combined log for both: learnt per node
    # from the first of its pods that has output.
    node_splits: dict[str, bool] = field(default_factory=dict)
