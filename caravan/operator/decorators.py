"""The pod-template decorators the operator applies to every task group's Deployment.

Each area that delivers files to task processes (loggers, settings) adds its decorator
here; the operator stays ignorant of what they mount.
"""

from __future__ import annotations

from caravan.config import Config
from caravan.operator.deployments import TemplateDecorator


def template_decorators(config: Config) -> list[TemplateDecorator]:
    return []
