"""The messages replicas exchange on JetStream, as compact JSON.

Three kinds travel on the partials subject (one stream, so one order for the merger):

- a :class:`PartialReport`: one replica's :class:`~caravan.events.partial.Partial` (or a
  chunk of it, when it is large) for one program epoch;
- a :class:`Watermark`: "every period of mine ending at or before ``watermark_ms`` is
  published", sent on every tick; it is also the replica's heartbeat.

A :class:`Final` travels on the results subject: the merged results message of one
period. Python's ``json`` round-trips floats exactly (repr) and keeps integers exact, so
merged sums equal one replica's sums.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from caravan.events.partial import Partial
from caravan.events.results import ResultMessage

# (epoch, channel, reduction id, period start): what identifies one period everywhere.
PeriodKey = tuple[int, str, str, int]


class CodecError(ValueError):
    """A message on a Caravan subject that is not one Caravan writes."""


@dataclass(frozen=True, slots=True)
class PartialReport:
    replica: str
    epoch: int  # the documents' stream sequence the replica ran (see jetstream.Documents)
    chunk: int  # index of this piece of the partial
    partial: Partial

    @property
    def period(self) -> PeriodKey:
        p = self.partial
        return (self.epoch, p.channel, p.id, p.period_start_ms)

    @property
    def msg_id(self) -> str:
        """JetStream's de-duplication id: a retried publish is stored once."""
        return digest("p", self.replica, *self.period, self.chunk)


@dataclass(frozen=True, slots=True)
class Watermark:
    replica: str
    epoch: int
    watermark_ms: int


@dataclass(frozen=True, slots=True)
class Final:
    epoch: int
    message: ResultMessage
    period_ms: int
    replicas: tuple[str, ...]  # whose partials were merged
    floor: int  # partials-stream sequence a new merger resumes from (see merge.MergeBook)

    @property
    def period(self) -> PeriodKey:
        m = self.message
        return (self.epoch, m.channel, m.id, m.period_start_ms)

    @property
    def nominal_end_ms(self) -> int:
        return self.message.period_start_ms + self.period_ms

    @property
    def msg_id(self) -> str:
        return digest("f", *self.period)


def digest(*parts: Any) -> str:
    # Channel and reduction ids may hold any character; a header value may not.
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:40]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_partial(report: PartialReport) -> bytes:
    p = report.partial
    return _dumps(
        {
            "t": "partial",
            "r": report.replica,
            "e": report.epoch,
            "k": report.chunk,
            "c": p.channel,
            "i": p.id,
            "p": p.period_ms,
            "s": p.period_start_ms,
            "n": p.period_end_ms,
            "d": p.dropped,
            "m": p.max_keys,
            "x": [[list(key), acc] for key, acc in p.entries],
        }
    )


def encode_watermark(mark: Watermark) -> bytes:
    return _dumps({"t": "watermark", "r": mark.replica, "e": mark.epoch, "w": mark.watermark_ms})


def decode_report(data: bytes) -> PartialReport | Watermark:
    try:
        o = json.loads(data)
        if o["t"] == "watermark":
            return Watermark(str(o["r"]), int(o["e"]), int(o["w"]))
        if o["t"] == "partial":
            partial = Partial(
                channel=str(o["c"]),
                id=str(o["i"]),
                period_ms=int(o["p"]),
                period_start_ms=int(o["s"]),
                period_end_ms=int(o["n"]),
                entries=[(tuple(key), list(acc)) for key, acc in o["x"]],
                dropped=int(o["d"]),
                max_keys=int(o["m"]),
            )
            return PartialReport(str(o["r"]), int(o["e"]), int(o["k"]), partial)
    except (ValueError, KeyError, TypeError) as exc:
        raise CodecError(f"not a partials message: {exc}") from None
    raise CodecError(f"unknown message type {o.get('t')!r}")


def encode_final(final: Final) -> bytes:
    m = final.message
    return _dumps(
        {
            "t": "final",
            "e": final.epoch,
            "c": m.channel,
            "i": m.id,
            "s": m.period_start_ms,
            "n": m.period_end_ms,
            "p": final.period_ms,
            "r": list(final.replicas),
            "f": final.floor,
            "error": m.error,
            "value": m.value,
        }
    )


def decode_final(data: bytes) -> Final:
    try:
        o = json.loads(data)
        if o.get("t") != "final":
            raise CodecError(f"not a final message: type {o.get('t')!r}")
        message = ResultMessage(
            channel=str(o["c"]),
            id=str(o["i"]),
            period_start_ms=int(o["s"]),
            period_end_ms=int(o["n"]),
            error=str(o["error"]),
            value=str(o["value"]),
        )
        return Final(int(o["e"]), message, int(o["p"]), tuple(o["r"]), int(o["f"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CodecError(f"not a final message: {exc}") from None


def encode_read_marker(idle_ms: int) -> bytes:
    return _dumps({"t": "read", "idle": idle_ms})


def decode_read_marker(data: bytes) -> int:
    """The idle timeout (ms) a read marker carries."""
    try:
        o = json.loads(data)
        if o.get("t") == "read":
            return int(o["idle"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CodecError(f"not a read marker: {exc}") from None
    raise CodecError("not a read marker")


def encode_documents(documents: list[Any]) -> bytes:
    return _dumps({"t": "documents", "mapreduce": documents})


def decode_documents(data: bytes) -> list[Any]:
    try:
        o = json.loads(data)
        docs = o["mapreduce"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CodecError(f"not a documents message: {exc}") from None
    if not isinstance(docs, list):
        raise CodecError("not a documents message: mapreduce is not an array")
    return docs


def split_partial(partial: Partial, max_entries: int) -> list[Partial]:
    """Pieces of at most ``max_entries`` keys each (a NATS message has a size limit);
    keys are disjoint, so merging the pieces gives back the whole. Always ≥ 1 piece."""
    entries = partial.entries
    if len(entries) <= max_entries:
        return [partial]
    return [
        Partial(
            channel=partial.channel,
            id=partial.id,
            period_ms=partial.period_ms,
            period_start_ms=partial.period_start_ms,
            period_end_ms=partial.period_end_ms,
            entries=entries[off : off + max_entries],
            # The count of dropped events rides on the first piece only.
            dropped=partial.dropped if off == 0 else 0,
            max_keys=partial.max_keys,
        )
        for off in range(0, len(entries), max_entries)
    ]
