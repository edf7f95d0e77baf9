"""The events service: one face over the embedded engine or several replicas on NATS.

The engine (caravan.events.EventsService) is pure; this module builds it, keeps it fed
from the events ConfigMap (caravan.events.storage), and, when a NATS URL is configured,
joins it to the other replicas (caravan.events_nats, imported only then: nats-py is an
extra). Callers never ask which of the two runs: storing documents, reading results and
the stream of results messages are the same calls.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from caravan.errors import InvalidError, UnavailableError
from caravan.events.engine import IngestResult
from caravan.events.service import EventsService, monotonic_ms, wall_ms
from caravan.events.storage import EVENTS_KEY, StoredDocuments, encode
from caravan.events.subscribers import Subscription
from caravan.services.state import ServerState
from caravan.services.writes import Writes

if TYPE_CHECKING:  # nats-py is imported only when NATS is configured
    from caravan.events_nats.cluster import EventsCluster

log = logging.getLogger(__name__)

# How long storing documents waits for this replica to switch to them.
SWITCH_WAIT_SECONDS = 5.0


def ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class Events:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        settings = state.runtime_settings
        self.cluster: EventsCluster | None = None
        if state.config.nats is not None:
            self.cluster = _cluster(state)
        self.engine = EventsService(
            # Several replicas align their periods on the wall clock (one per machine).
            clock=monotonic_ms if self.cluster is None else wall_ms,
            max_keys_per_period=settings.events_max_keys_per_reduction,
            results_idle_timeout_ms=ms(settings.events_results_idle_timeout_seconds),
            results_max_messages=settings.events_max_results_messages,
            partials=self.cluster,
        )
        self.stored = StoredDocuments(self.engine, state.config.configmaps.events)
        self._publishing: set[asyncio.Task[Any]] = set()

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        state, engine, stored, cluster = self.state, self.engine, self.stored, self.cluster
        if cluster is not None:
            cluster.attach(engine)
            stored.publish = self._publish_soon
            state.leadership_listeners.append(cluster.set_leading)
            cluster.set_leading(state.leading)
            cluster.start()
        # The informers may not have synced yet: the listener applies the ConfigMap
        # whenever it arrives, and every later edit (kubectl included).
        name = stored.configmap
        if name in state.store.configmaps:
            stored.apply(state.store.configmaps[name])
        state.store.on_configmap(stored.on_change)
        # The knobs in force now (the settings started first), and every later change.
        self._set_limits(state.runtime_settings)
        state.runtime_listeners.append(self._set_limits)
        engine.start()

    async def stop(self) -> None:
        await self.engine.stop()  # flushes the open windows (to NATS, with a cluster)
        if self.cluster is not None:
            await self.cluster.stop()

    def _set_limits(self, runtime: Any) -> None:
        self.engine.set_limits(
            max_keys_per_period=runtime.events_max_keys_per_reduction,
            max_messages=runtime.events_max_results_messages,
        )
        if self.cluster is not None:
            self.cluster.set_max_messages(runtime.events_max_results_messages)

    # Documents ---------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """The documents in force and the errors of the stored ones."""
        return {"errors": self.engine.errors, "mapreduce": self.engine.documents}

    async def replace(self, writes: Writes, documents: list[Any]) -> None:
        """Validated, stored, then live: nothing runs that is not stored."""
        # One writer at a time, so the ConfigMap and the running program end in one order.
        async with self.stored.write_lock:
            errors = self.engine.validate(documents)
            if errors:
                raise InvalidError(
                    f"the events documents are invalid ({len(errors)} error(s)); "
                    "nothing was stored",
                    [e.to_dict() for e in errors],
                )
            # Store first: if the write fails, the old program keeps running and matches
            # storage.
            await writes.configmap_key(self.stored.configmap, EVENTS_KEY, encode(documents))
            if self.cluster is None:
                self.engine.replace(documents)
            else:
                await self._switch_cluster(self.cluster, documents)
            self.stored.loaded = True

    async def _switch_cluster(self, cluster: EventsCluster, documents: list[Any]) -> None:
        """Every replica switches at the documents stream's message; done once this one
        has."""
        try:
            async with asyncio.timeout(SWITCH_WAIT_SECONDS):
                seq = await cluster.publish_documents(documents)
        except (TimeoutError, RuntimeError):
            # Stored, so the ConfigMap watch publishes them once NATS answers again.
            raise UnavailableError(
                "the documents are stored but NATS did not take them yet; they apply when it does"
            ) from None
        await cluster.wait_applied(seq, SWITCH_WAIT_SECONDS)

    def _publish_soon(self, documents: list[Any]) -> None:
        """From the ConfigMap watch (synchronous): publish in the background, logged."""
        cluster = self.cluster
        assert cluster is not None

        async def publish() -> None:
            try:
                await cluster.publish_documents(documents)
            except Exception:
                log.exception("could not publish the events documents to NATS")

        task = asyncio.get_running_loop().create_task(publish())
        self._publishing.add(task)  # keep a reference until it is done
        task.add_done_callback(self._publishing.discard)

    # Events and results ------------------------------------------------------------------

    async def send(self, channel: str, events: list[Any]) -> IngestResult:
        return await self.engine.send(channel, events)

    async def results(self, counter: int) -> dict[str, Any]:
        """The results messages after position `counter` (a page, as its wire form)."""
        # The settings may change the idle timeout at any time; apply it on each read.
        timeout = ms(self.state.runtime_settings.events_results_idle_timeout_seconds)
        if self.cluster is not None:
            return dict((await self.cluster.read_results(counter, timeout)).to_wire())
        self.engine.results_log.idle_timeout_ms = timeout
        return self.engine.results(counter).to_wire()

    def subscribe(self) -> Subscription:
        """Every results message from now on; close it when the client leaves."""
        return self.engine.subscribe()


def _cluster(state: ServerState) -> EventsCluster:
    """The JetStream side (imported only when configured: nats-py is an extra)."""
    from caravan.events_nats.cluster import EventsCluster
    from caravan.events_nats.streams import Names

    nats = state.config.nats
    assert nats is not None
    names = Names.of(state.namespace, state.config.configmaps.events, nats.stream_prefix)
    return EventsCluster(
        nats,
        names,
        state.config.identity,
        results_max_messages=state.runtime_settings.events_max_results_messages,
    )
