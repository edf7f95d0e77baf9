"""Every area's service, built in one place (when the app is made) and started by the
app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from caravan.kube.recorder import API_CONTROLLER, EventRecorder
from caravan.services.activity import JobActivity
from caravan.services.events import Events
from caravan.services.jobs import Jobs
from caravan.services.jobsdefs import JobDefinitions
from caravan.services.loggers import Loggers
from caravan.services.logs import Logs
from caravan.services.restart import Restarts
from caravan.services.secrets import Secrets
from caravan.services.settings import Settings
from caravan.services.state import ServerState
from caravan.services.versions import JobVersions


@dataclass
class Services:
    settings: Settings
    jobs: Jobs
    definitions: JobDefinitions
    versions: JobVersions
    events: Events
    logs: Logs
    loggers: Loggers
    secrets: Secrets
    activity: JobActivity
    restarts: Restarts
    # The API's Events on the Jobs (Started, Stopped, Scaled, Restarted, Refused, ...).
    recorder: EventRecorder

    async def start(self) -> None:
        """Starts those that run, once the informers run (they may not have synced yet:
        each listens to the store for what arrives later). Settings first, so that the
        others start with the knobs in force."""
        await self.settings.start()
        await self.events.start()

    async def stop(self) -> None:
        await self.events.stop()
        await self.recorder.close()


def build_services(state: ServerState) -> Services:
    """Every area's service, built (no I/O: `start` does that)."""
    recorder = EventRecorder(state.kube, state.namespace, state.config.identity, API_CONTROLLER)
    jobs = Jobs(state, recorder)
    definitions = JobDefinitions(state, recorder)
    return Services(
        settings=Settings(state),
        jobs=jobs,
        definitions=definitions,
        versions=JobVersions(state, definitions),
        events=Events(state),
        logs=Logs(state),
        loggers=Loggers(state),
        secrets=Secrets(state),
        activity=JobActivity(state),
        restarts=Restarts(state, jobs, recorder),
        recorder=recorder,
    )
