"""What every service of this replica shares: config, clients, store, knobs, leadership."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from caravan.config import Config
from caravan.kube.client import KubeClient
from caravan.kube.informer import Informer
from caravan.settings import RuntimeSettings
from caravan.store import Store


@dataclass
class ServerState:
    config: Config
    kube: KubeClient
    store: Store
    informers: list[Informer] = field(default_factory=list)
    # The knobs Caravan reads (long-poll bounds, events and log limits); replaced as a
    # whole by the settings service whenever a valid settings document is stored.
    runtime_settings: RuntimeSettings = field(default_factory=RuntimeSettings.defaults)
    runtime_listeners: list[Callable[[RuntimeSettings], None]] = field(default_factory=list)
    # Whether this replica runs the operator half (the Lease holder, or the only replica);
    # the events merger follows it. Listeners are told of every change.
    leading: bool = False
    leadership_listeners: list[Callable[[bool], None]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            for listener in self.leadership_listeners:
                listener(leading)

    def set_runtime_settings(self, runtime: RuntimeSettings) -> None:
        """New knobs in force at once; services that copied one (events limits) are told."""
        self.runtime_settings = runtime
        for listener in self.runtime_listeners:
            listener(runtime)

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)
