"""The Deployment each task group should have: a pure function of the Job."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from caravan import labels
from caravan.jobs.spec import JobSpec, TaskGroupSpec
from caravan.jobs.spec import TemplateDecorator as TemplateDecorator
from caravan.jobs.spec import deployment_name as deployment_name


def selector_labels(job: str, group: str) -> dict[str, str]:
    """Only Caravan's own labels: Deployment selectors are immutable."""
    return {labels.JOB_LABEL: job, labels.TASK_GROUP_LABEL: group}


def owner_reference(job_body: dict[str, Any]) -> dict[str, Any]:
    meta = job_body["metadata"]
    return {
        "apiVersion": f"{labels.GROUP}/{labels.VERSION}",
        "kind": "Job",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def desired_deployment(
    job_body: dict[str, Any],
    spec: JobSpec,
    group: TaskGroupSpec,
    decorators: Sequence[TemplateDecorator] = (),
) -> dict[str, Any]:
    own_labels = selector_labels(spec.name, group.name)
    template = copy.deepcopy(group.template)
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **own_labels}
    restarted = dict(spec.restarted_at).get(group.name)
    if restarted:
        # A new value changes the template: the Deployment replaces its pods one by one.
        annotations = template_meta.get("annotations") or {}
        template_meta["annotations"] = {**annotations, labels.RESTARTED_AT_ANNOTATION: restarted}
    template.setdefault("spec", {})
    for decorate in decorators:
        decorate(template, spec, group)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(spec.name, group.name),
            "labels": {**own_labels, labels.MANAGED_BY_LABEL: labels.MANAGED_BY_VALUE},
            "ownerReferences": [owner_reference(job_body)],
        },
        "spec": {
            "replicas": spec.desired_count(group),
            "selector": {"matchLabels": own_labels},
            "template": template,
            # How a new version replaces the running allocations (caravan.jobs.rollout).
            **group.rollout.deployment_fields(),
        },
    }
