"""The pod-template decorators the operator applies to every task group's Deployment.

Each area that delivers files to task processes (loggers, settings) adds its decorator
here; the operator stays ignorant of what they mount.
"""

from __future__ import annotations

from caravan.config import Config
from caravan.loggers.template import loggers_decorator
from caravan.operator.deployments import TemplateDecorator
from caravan.settings.mount import settings_file_decorator


def template_decorators(config: Config) -> list[TemplateDecorator]:
    return [
        loggers_decorator(config.configmaps.loggers),
        settings_file_decorator(config.configmaps.settings),
    ]
