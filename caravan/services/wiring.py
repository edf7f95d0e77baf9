"""Every area's service, built and started in one place (the app's lifespan calls it).

The order matters once: settings start first, so every other service is built with the
knobs in force (and hears of each later change through the runtime listeners).
"""

from __future__ import annotations

from dataclasses import dataclass

from caravan.services.events import Events
from caravan.services.jobs import Jobs
from caravan.services.jobsdefs import JobDefinitions
from caravan.services.loggers import Loggers
from caravan.services.logs import Logs
from caravan.services.secrets import Secrets
from caravan.services.settings import Settings
from caravan.services.state import ServerState


@dataclass
class Services:
    settings: Settings
    jobs: Jobs
    definitions: JobDefinitions
    events: Events
    logs: Logs
    loggers: Loggers
    secrets: Secrets

    async def stop(self) -> None:
        await self.events.stop()


async def start_services(state: ServerState) -> Services:
    """Builds every service and starts those that run, once the informers run (they may
    not have synced yet: each listens to the store for what arrives later)."""
    settings = Settings(state)
    await settings.start()
    events = Events(state)
    await events.start()
    return Services(
        settings=settings,
        jobs=Jobs(state),
        definitions=JobDefinitions(state),
        events=events,
        logs=Logs(state),
        loggers=Loggers(state),
        secrets=Secrets(state),
    )
