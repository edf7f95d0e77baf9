"""What a Job's pod templates may ask for: the installation's pod policy, as a pure check.

The same rules are enforced at admission by the chart's ValidatingAdmissionPolicy
(charts/caravan/files/policies/task-pods.yaml), so kubectl cannot get round them. The
operator runs this check too: a Job stored before the policy existed (or while it was
switched off) is refused rather than turned into Deployments.

Two kinds of rule:
- ServiceAccounts. A task pod runs as the installation's task ServiceAccount (no RBAC, no
  token) unless its template names one the installation allows; Caravan's own is never
  allowed. A token is mounted only for an allowed, named account.
- Kubernetes' "baseline" Pod Security Standard (level `baseline`): no privileged
  containers, host namespaces, hostPath volumes, host ports, capabilities beyond the
  baseline list, unconfined seccomp or AppArmor, custom SELinux users or roles, unmasked
  /proc, unsafe sysctls, Windows host processes. Level `privileged` turns these off.

Each refusal names the field, e.g.
`spec.taskGroups[game].template.spec.containers[main].securityContext.privileged`
(task groups and containers by name: they are keyed by name).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from caravan.jobs.spec import JobSpec, TaskGroupSpec, TemplateDecorator

PolicyLevel = Literal["baseline", "privileged"]

# The capabilities a container may add under the baseline standard.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class PodPolicy:
    """The installation's rules for task pods (chart values `taskPods.*`)."""

    # Task pods run as this account when their template names none (None: the
    # namespace's default account, with no token mounted).
    task_service_account: str | None = None
    # Accounts a template may name besides the task account.
    allowed_service_accounts: frozenset[str] = frozenset()
    # Caravan's own account: never allowed, whatever the list says.
    own_service_account: str | None = None
    level: PolicyLevel = "baseline"

    def allows_account(self, name: str) -> bool:
        if not name:
            return False
        if self.own_service_account and name == self.own_service_account:
            return False
        return name == self.task_service_account or name in self.allowed_service_accounts


@dataclass(frozen=True)
class Violation:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def violations(job_body: Mapping[str, Any], policy: PodPolicy) -> list[Violation]:
    """Every refusal of the Job's templates, in spec order; empty when it complies."""
    spec = job_body.get("spec") or {}
    found: list[Violation] = []
    for group in spec.get("taskGroups") or []:
        if not isinstance(group, Mapping):
            continue
        template = group.get("template") or {}
        pod = template.get("spec") if isinstance(template, Mapping) else None
        if not isinstance(pod, Mapping):
            continue
        base = f"spec.taskGroups[{group.get('name', '')}].template.spec"
        found.extend(_accounts(base, pod, policy))
        if policy.level == "baseline":
            found.extend(_baseline(base, pod))
    return found


def _accounts(base: str, pod: Mapping[str, Any], policy: PodPolicy) -> Iterator[Violation]:
    for field in ("serviceAccountName", "serviceAccount"):
        named = str(pod.get(field) or "")
        if not named:
            continue
        if policy.own_service_account and named == policy.own_service_account:
            yield Violation(
                f"{base}.{field}",
                f"{named!r} is Caravan's own ServiceAccount: task pods never run as it",
            )
        elif not policy.allows_account(named):
            yield Violation(
                f"{base}.{field}",
                f"ServiceAccount {named!r} is not allowed for task pods"
                f" (allowed: {_listed(policy)})",
            )
    if policy.allows_account(str(pod.get("serviceAccountName") or "")):
        return  # an allowed account named by the template may carry its token
    if pod.get("automountServiceAccountToken") is True:
        yield Violation(
            f"{base}.automountServiceAccountToken",
            "a ServiceAccount token is mounted only for an allowed ServiceAccount named in"
            " serviceAccountName",
        )
    if any(
        isinstance(source, Mapping) and "serviceAccountToken" in source
        for volume in _named(pod.get("volumes"))
        for source in (volume.get("projected") or {}).get("sources") or []
    ):
        yield Violation(
            f"{base}.volumes.projected.sources",
            "a ServiceAccount token is mounted only for an allowed ServiceAccount named in"
            " serviceAccountName",
        )


def _listed(policy: PodPolicy) -> str:
    names = sorted(
        {n for n in (policy.task_service_account, *policy.allowed_service_accounts) if n}
        - {policy.own_service_account or ""}
    )
    return ", ".join(names) or "none"


def _baseline(base: str, pod: Mapping[str, Any]) -> Iterator[Violation]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field) is True:
            yield Violation(f"{base}.{field}", "host namespaces are not allowed")
    for volume in _named(pod.get("volumes")):
        if volume.get("hostPath") is not None:
            yield Violation(
                f"{base}.volumes[{volume.get('name', '')}].hostPath",
                "hostPath volumes are not allowed",
            )
    context = pod.get("securityContext") or {}
    if isinstance(context, Mapping):
        yield from _context(f"{base}.securityContext", context)
        names = [s.get("name") for s in _named(context.get("sysctls"))]
        if any(name not in SAFE_SYSCTLS for name in names):
            yield Violation(f"{base}.securityContext.sysctls", "only safe sysctls are allowed")
    for kind in CONTAINER_KINDS:
        for container in _named(pod.get(kind)):
            path = f"{base}.{kind}[{container.get('name', '')}]"
            for port in container.get("ports") or []:
                if isinstance(port, Mapping) and port.get("hostPort"):
                    yield Violation(f"{path}.ports.hostPort", "host ports are not allowed")
            sc = container.get("securityContext") or {}
            if not isinstance(sc, Mapping):
                continue
            where = f"{path}.securityContext"
            if sc.get("privileged") is True:
                yield Violation(f"{where}.privileged", "privileged containers are not allowed")
            added = (sc.get("capabilities") or {}).get("add") or []
            extra = sorted(str(c) for c in added if str(c) not in BASELINE_CAPABILITIES)
            if extra:
                yield Violation(
                    f"{where}.capabilities.add",
                    f"capabilities beyond the baseline list are not allowed: {', '.join(extra)}",
                )
            if sc.get("procMount") not in (None, "Default"):
                yield Violation(f"{where}.procMount", "only the Default /proc mount is allowed")
            yield from _context(where, sc)


def _context(where: str, sc: Mapping[str, Any]) -> Iterator[Violation]:
    """What pod and container security contexts share."""
    if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield Violation(f"{where}.seccompProfile.type", "Unconfined seccomp is not allowed")
    if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
        yield Violation(f"{where}.appArmorProfile.type", "Unconfined AppArmor is not allowed")
    if (sc.get("windowsOptions") or {}).get("hostProcess") is True:
        yield Violation(
            f"{where}.windowsOptions.hostProcess", "Windows host processes are not allowed"
        )
    selinux = sc.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES:
        yield Violation(f"{where}.seLinuxOptions.type", "this SELinux type is not allowed")
    for field in ("user", "role"):
        if selinux.get(field):
            yield Violation(
                f"{where}.seLinuxOptions.{field}", f"a custom SELinux {field} is not allowed"
            )


def _named(items: Any) -> Iterator[Mapping[str, Any]]:
    for item in items or []:
        if isinstance(item, Mapping):
            yield item


def task_account_decorator(policy: PodPolicy) -> TemplateDecorator:
    """The operator's default for a template that names no ServiceAccount: the task
    account (when the installation has one) and no token mounted."""

    def decorate(template: dict[str, Any], _spec: JobSpec, _group: TaskGroupSpec) -> None:
        pod = template.setdefault("spec", {})
        if pod.get("serviceAccountName") or pod.get("serviceAccount"):
            return
        if policy.task_service_account:
            pod["serviceAccountName"] = policy.task_service_account
        pod["automountServiceAccountToken"] = False

    return decorate
