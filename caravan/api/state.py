"""What routes share: handed to the app at creation, reached through dependencies.

Each area's services are typed fields, set by the area's start (in the app's lifespan)
and reached by routes through the dependencies of caravan.api.deps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from caravan.api.access import AccessReviewer
from caravan.config import Config
from caravan.events.cluster.jetstream import EventsCluster
from caravan.events.service import EventsService
from caravan.events.storage import StoredDocuments
from caravan.kube.client import KubeClient
from caravan.kube.informer import Informer
from caravan.kube.scaler import DeploymentScaler
from caravan.logs.service import LogsService
from caravan.settings import RuntimeSettings
from caravan.settings.service import SettingsService
from caravan.store import Store


@dataclass
class AppState:
    config: Config
    kube: KubeClient
    store: Store
    informers: list[Informer] = field(default_factory=list)
    # The knobs Caravan reads (long-poll bounds, events and log limits); replaced as a
    # whole by the settings area whenever a valid settings document is stored.
    runtime_settings: RuntimeSettings = field(default_factory=RuntimeSettings.defaults)
    runtime_listeners: list[Callable[[RuntimeSettings], None]] = field(default_factory=list)
    # Services of the areas: None until the area started (its routes answer 503 then).
    auth: AccessReviewer | None = None
    events: EventsService | None = None
    events_storage: StoredDocuments | None = None
    # Present only with NATS configured (several replicas): caravan.events.cluster.
    events_cluster: EventsCluster | None = None
    settings: SettingsService | None = None
    logs: LogsService = field(default_factory=LogsService)
    # Whether this replica runs the operator half (the Lease holder, or the only replica);
    # the events merger follows it. Listeners are told of every change.
    leading: bool = False
    leadership_listeners: list[Callable[[bool], None]] = field(default_factory=list)
    # The jobs routes' write-through of Deployment replicas.
    scaler: DeploymentScaler = field(init=False)

    def __post_init__(self) -> None:
        self.scaler = DeploymentScaler(self.kube, self.config.namespace)

    def set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            for listener in self.leadership_listeners:
                listener(leading)

    def set_runtime_settings(self, runtime: RuntimeSettings) -> None:
        """New knobs in force at once; areas that copied one (events limits) are told."""
        self.runtime_settings = runtime
        for listener in self.runtime_listeners:
            listener(runtime)

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)
