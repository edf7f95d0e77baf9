"""What routes share: handed to the app at creation, reached through dependencies.

The replica's shared state (caravan.services.state) plus what only HTTP needs: the
access reviewer, and the services the lifespan starts (caravan.services.wiring), reached
by routes through the dependencies of caravan.api.deps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from caravan.api.access import AccessReviewer
from caravan.events.service import EventsService
from caravan.services.state import ServerState
from caravan.services.wiring import Services

if TYPE_CHECKING:  # nats-py is imported only when NATS is configured
    from caravan.events_nats.cluster import EventsCluster


@dataclass
class AppState(ServerState):
    auth: AccessReviewer | None = None
    # None until the lifespan started them (the routes answer 503 then).
    services: Services | None = None
    # Set when the process starts to stop (SIGTERM): /readyz answers 503 and streams end
    # (caravan.api.draining).
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def events(self) -> EventsService | None:
        """The events engine (its figures feed /metrics)."""
        return None if self.services is None else self.services.events.engine

    @property
    def events_cluster(self) -> EventsCluster | None:
        """The NATS side of the events, with several replicas."""
        return None if self.services is None else self.services.events.cluster
