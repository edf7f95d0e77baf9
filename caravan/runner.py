"""`caravan run`: the API server and the operator in one process, stopping together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import pathlib
import signal
import sys
from collections.abc import Generator
from typing import Any

import uvicorn

from caravan import labels
from caravan.api.app import create_app
from caravan.api.draining import Draining
from caravan.api.readiness import keep_ready_file
from caravan.api.serving import uvicorn_limits
from caravan.api.state import AppState
from caravan.config import Config
from caravan.kube.client import CONFIGMAPS, DEPLOYMENTS, EVENTS, JOBS, PODS, SECRETS, KubeClient
from caravan.kube.informer import Informer
from caravan.listener import shared_socket
from caravan.metrics import time_garbage_collections
from caravan.operator.decorators import template_decorators
from caravan.operator.leader import LeaseElector
from caravan.operator.runner import OperatorThread
from caravan.store import Store
from caravan.store.store import (
    KIND_CONFIGMAP,
    KIND_DEPLOYMENT,
    KIND_EVENT,
    KIND_JOB,
    KIND_POD,
    KIND_SECRET,
)
from caravan.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def build_informers(kube: KubeClient, store: Store, config: Config) -> list[Informer]:
    ns = config.namespace
    idle = config.watch_idle_seconds
    informers = [
        Informer(kube, KIND_JOB, JOBS.collection(ns), store, idle_seconds=idle),
        Informer(
            kube,
            KIND_POD,
            PODS.collection(ns),
            store,
            label_selector=labels.JOB_LABEL,
            idle_seconds=idle,
        ),
        # The task groups' Deployments: what they say of pods they could not create.
        Informer(
            kube,
            KIND_DEPLOYMENT,
            DEPLOYMENTS.collection(ns),
            store,
            label_selector=labels.JOB_LABEL,
            idle_seconds=idle,
        ),
        # The namespace's Events, for the jobs' activity (caravan.store.activity bounds them).
        Informer(kube, KIND_EVENT, EVENTS.collection(ns), store, idle_seconds=idle),
        Informer(
            kube,
            KIND_SECRET,
            SECRETS.collection(ns),
            store,
            # Only Caravan's own Secrets are ever listed; and the store keeps only names.
            label_selector=f"{labels.MANAGED_BY_LABEL}={labels.MANAGED_BY_VALUE}",
            idle_seconds=idle,
        ),
    ]
    for name in config.configmaps.all():
        informers.append(
            Informer(
                kube,
                f"{KIND_CONFIGMAP}:{name}",
                CONFIGMAPS.collection(ns),
                store,
                field_selector=f"metadata.name={name}",
                idle_seconds=idle,
            )
        )
    return informers


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `serve()` owns SIGINT/SIGTERM and stops
    both halves in order (uvicorn would re-raise the signal after its own shutdown)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Caravan:
    """One Caravan instance: informers + API server in this loop, Kopf in its own thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state: AppState | None = None
        self.server: _Server | None = None
        self.operator: OperatorThread | None = None
        self.elector: LeaseElector | None = None
        self._stopped = False
        self._resigning: asyncio.Task[None] | None = None
        self.serving = False  # listening (start() may end early on a stop signal)
        self._tasks: list[asyncio.Task[Any]] = []
        self.port = config.port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> None:
        config = self.config
        config.check()
        # Bound before anything starts, so a port taken fails here with nothing to stop.
        sockets = [shared_socket(config.host, config.port)] if config.reuse_port else None
        kube = await KubeClient.connect(config.kubeconfig, config.context)
        store = Store()
        self.state = state = AppState(config=config, kube=kube, store=store)
        state.informers = build_informers(kube, store, config)
        self._tasks = [
            asyncio.create_task(i.run(), name=f"informer-{i.kind}") for i in state.informers
        ]
        self.server = _Server(
            uvicorn.Config(
                Draining(create_app(state), state.stopping),
                host=config.host,
                port=config.port,
                log_config=None,
                access_log=False,
                lifespan="on",  # the app's lifespan starts and stops the areas' services
                # What is still in flight once the server stops listening: long polls and
                # streams ended already (begin_stop).
                timeout_graceful_shutdown=3,
                # Security: bounded request heads, idle and slow connections, concurrency.
                **uvicorn_limits(config.limits),
            )
        )
        if config.run_operator and config.leader_election:
            self.elector = LeaseElector(
                kube,
                config.namespace,
                config.identity,
                lease_seconds=config.lease_seconds,
                renew_seconds=config.lease_seconds / 3,
                on_started_leading=self._start_leading,
                on_stopped_leading=self._stop_leading,
            )
            self._tasks.append(asyncio.create_task(self.elector.run(), name="leader-election"))
        elif config.run_operator:
            self._start_leading()
        if sockets is not None:
            # A process sharing the port gets new connections as soon as it listens: it
            # joins the group once its view is synced, as a Service adds only ready pods.
            await asyncio.gather(*(i.synced.wait() for i in state.informers))
        self._tasks.append(asyncio.create_task(self.server.serve(sockets), name="uvicorn"))
        while not self.server.started:
            if self._tasks[-1].done():
                # uvicorn logs the cause (e.g. the port is taken) and exits the task.
                await self.stop()
                raise RuntimeError(f"the API server could not start on {self.url}")
            await asyncio.sleep(0.02)
        sockets = [s for server in self.server.servers for s in server.sockets]
        if not sockets:
            # A stop signal came while starting: uvicorn is already down again, and the
            # caller's wait_stopped() and stop() finish the rest (exit 0, no traceback).
            log.info("stopped while starting")
            return
        self.port = sockets[0].getsockname()[1]
        self.serving = True
        if config.ready_file:
            # Once serving (the services started); the server's task stays the last one.
            ready_file = keep_ready_file(state, pathlib.Path(config.ready_file))
            self._tasks.insert(-1, asyncio.create_task(ready_file, name="ready-file"))
        if self.operator is not None and not self.operator.is_alive():
            self.server.should_exit = True  # the operator died during start-up
        log.info("caravan serving namespace %s on %s", config.namespace, self.url)

    def _start_leading(self) -> None:
        self._start_operator()
        assert self.state is not None
        self.state.set_leading(True)

    def _stop_leading(self) -> None:
        assert self.state is not None
        self.state.set_leading(False)
        self._stop_operator_soon()

    def _start_operator(self) -> None:
        loop = asyncio.get_running_loop()
        server = self.server

        def operator_exited(error: BaseException | None) -> None:
            # If the operator half ends by itself, the API half must not go on alone
            # (kopf #755). A stop we asked for (shutdown, leadership lost) is not that.
            if thread.stopping or server is None or server.should_exit:
                return
            log.error("operator exited (%r); stopping the API server", error)
            loop.call_soon_threadsafe(setattr, server, "should_exit", True)

        assert self.state is not None
        thread = OperatorThread(
            self.config,
            self.state.store,
            decorators=template_decorators(self.config),
            on_exit=operator_exited,
        )
        self.operator = thread
        thread.start()

    def _stop_operator_soon(self) -> None:
        operator, self.operator = self.operator, None
        if operator is not None:
            operator.stop()
            self._tasks.insert(0, asyncio.create_task(asyncio.to_thread(operator.join, 30)))

    async def wait_ready(self, timeout: float = 60) -> None:
        """Waits for the caches to sync and (if running) the operator to be ready."""
        assert self.state is not None
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(i.synced.wait() for i in self.state.informers))
            if self.operator is not None and self.elector is None:
                await asyncio.to_thread(self.operator.ready_flag.wait, timeout)

    async def wait_stopped(self) -> None:
        """Returns when the API server exits (a signal, or the operator half dying)."""
        await self._tasks[-1]

    def begin_stop(self) -> None:
        """SIGTERM: leave without cutting anyone off (docs/upgrading.md). Not ready at once,
        long polls answered and streams ended, the Lease left; ordinary requests still
        served for the shutdown delay (the endpoints drop the pod meanwhile); then the
        server stops. A second call stops the server at once."""
        server = self.server
        if self.state is None or server is None:
            self.leave_lease_soon()
            return
        if self.state.stopping.is_set():
            server.should_exit = True
            return
        self._drain()
        self.leave_lease_soon()
        if self.config.reuse_port:
            # Leave the shared port's group now: new connections go to the other replicas
            # (no endpoints to drop here); kept-alive ones are still answered meanwhile.
            for listener in getattr(server, "servers", []):
                listener.close()
        delay = self.config.shutdown_delay_seconds
        log.info("stopping: not ready; the server stops in %.3g s", delay)
        asyncio.get_running_loop().call_later(delay, setattr, server, "should_exit", True)

    def _drain(self) -> None:
        assert self.state is not None
        self.state.stopping.set()  # /readyz answers 503; streams end (api/draining.py)
        self.state.store.jobs_waiters.close()  # long polls answer now

    def leave_lease_soon(self) -> None:
        """First thing on a stop: the operator half stops, then the Lease is given up, so
        a successor never reconciles beside this replica yet takes over at once; and all
        before the API drained, while the RBAC to write the Lease surely still exists
        (`helm uninstall` deletes the Role right after the Deployment)."""
        if self._resigning is None:
            self._resigning = asyncio.create_task(self._leave_lease(), name="lease-resign")

    async def _leave_lease(self) -> None:
        operator, self.operator = self.operator, None
        if operator is not None:
            operator.stop()
            await asyncio.to_thread(operator.join, 30)
        if self.elector is not None:
            await self.elector.resign()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.state is not None:
            self._drain()
        if self.server is not None:
            self.server.should_exit = True
        self.leave_lease_soon()
        assert self._resigning is not None
        await self._resigning
        await cancel_and_wait(self._tasks[:-1])  # informers, the elector
        if self.elector is not None:
            await self.elector.release()
        await asyncio.gather(*self._tasks[-1:], return_exceptions=True)  # the server exits
        if self.state is not None:
            await self.state.kube.close()
        log.info("caravan stopped")


# The collector looks at young objects every 20,000 allocations rather than 700: fewer of
# the store's short-lived objects live long enough to be promoted, and so far fewer full
# collections follow (bench_jobs's 3,000-pod run: 1 instead of 19, whose longest held the
# process 275 ms), for no RSS measurable there.
GC_THRESHOLDS = (20_000, 20, 20)

# The API's loop and Kopf's thread share one GIL. A thread woken by the network waits
# for the other to let go of it, up to the switch interval: 5 ms by default, as long as
# the floor's whole scale PATCH. At 1 ms a request waits at most that behind the operator.
SWITCH_INTERVAL_SECONDS = 0.001


async def _freeze_when_synced(caravan: Caravan) -> None:
    """Once the store holds the namespace, what exists (the imports, the app, the first
    view of the cluster) lives as long as the process: the collector stops scanning it.
    A full collection scanned all of it with the GIL held, 200-500 ms every few seconds
    under pod churn at 3,000 pods (docs/performance.md). The process's own choice, so
    `serve()` makes it, not an embedded Caravan (the tests')."""
    if caravan.state is None:
        return
    await asyncio.gather(*(i.synced.wait() for i in caravan.state.informers))
    gc.collect()
    gc.freeze()


async def serve(config: Config) -> None:
    caravan = Caravan(config)
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        log.info("stop requested")
        caravan.begin_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)
    time_garbage_collections()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    await caravan.start()
    freezing = asyncio.create_task(_freeze_when_synced(caravan), name="gc-freeze")
    if caravan.serving:
        # Printed whatever the log level: the address people open first.
        print(f"caravan UI: {caravan.url}/ui/  (API pages: {caravan.url}/docs)", flush=True)
    try:
        await caravan.wait_stopped()
    finally:
        await cancel_and_wait([freezing])
        await caravan.stop()
