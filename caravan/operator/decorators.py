"""The pod-template decorators the operator applies to every task group's Deployment.

Each area that delivers files to task processes (loggers, settings) adds its decorator
here; the operator stays ignorant of what they mount.
"""

from __future__ import annotations

from caravan.config import Config
from caravan.jobs.podpolicy import PodPolicy, task_account_decorator
from caravan.loggers.template import loggers_decorator
from caravan.operator.deployments import TemplateDecorator
from caravan.settings.mount import settings_file_decorator


def pod_policy(config: Config) -> PodPolicy:
    """The installation's rules for task pods (the chart's admission policy says the same)."""
    return PodPolicy(
        task_service_account=config.task_service_account,
        allowed_service_accounts=frozenset(config.allowed_service_accounts),
        own_service_account=config.own_service_account,
        level=config.pod_policy,
    )


def template_decorators(config: Config) -> list[TemplateDecorator]:
    return [
        task_account_decorator(pod_policy(config)),
        loggers_decorator(config.configmaps.loggers),
        settings_file_decorator(config.configmaps.settings),
    ]
