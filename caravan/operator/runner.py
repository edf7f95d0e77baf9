"""Runs the Kopf operator in its own thread and event loop, as Kopf advises when embedded."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

import kopf

from caravan.config import Config
from caravan.operator.decorators import pod_policy
from caravan.operator.deployments import TemplateDecorator
from caravan.operator.handlers import OperatorShared, build_registry
from caravan.store import Store

log = logging.getLogger(__name__)


class OperatorThread(threading.Thread):
    """Kopf in a daemon thread; `stop()` asks it to finish, `on_exit` reports its end."""

    def __init__(
        self,
        config: Config,
        store: Store,
        decorators: Sequence[TemplateDecorator] = (),
        on_exit: Callable[[BaseException | None], None] = lambda exc: None,
    ) -> None:
        super().__init__(name="kopf-operator", daemon=True)
        self.config = config
        self.store = store  # the API half's store: pods are read there, not watched twice
        self.decorators = decorators
        self.on_exit = on_exit
        self.ready_flag = threading.Event()
        self.stop_flag = threading.Event()
        self.stopping = False  # True once stop() asked for it (not a crash)

    def run(self) -> None:
        error: BaseException | None = None
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the other half, which then stops too
            error = exc
            log.exception("operator stopped with an error")
        finally:
            self.on_exit(error)

    async def _main(self) -> None:
        await kopf.operator(
            registry=build_registry(),
            namespaces=[self.config.namespace],
            clusterwide=False,
            standalone=True,
            ready_flag=self.ready_flag,
            stop_flag=self.stop_flag,
            memo=kopf.Memo(
                config=self.config,
                decorators=list(self.decorators),
                policy=pod_policy(self.config),
                store=self.store,
                shared=OperatorShared(),
            ),
        )

    def stop(self) -> None:
        self.stopping = True
        self.stop_flag.set()
