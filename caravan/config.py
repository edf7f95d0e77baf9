"""Runtime configuration of `caravan run`, from flags with environment fallbacks."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from typing import Literal

AuthMode = Literal["none", "kubernetes"]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class ConfigMapNames:
    """Where Caravan keeps its documents; one data key each (see the chart)."""

    logs: str = "caravan-logs"
    loggers: str = "caravan-loggers"
    events: str = "caravan-events"
    settings: str = "caravan-settings"
    settings_schema: str = "caravan-settings-schema"

    @classmethod
    def with_prefix(cls, prefix: str) -> ConfigMapNames:
        return cls(
            logs=f"{prefix}-logs",
            loggers=f"{prefix}-loggers",
            events=f"{prefix}-events",
            settings=f"{prefix}-settings",
            settings_schema=f"{prefix}-settings-schema",
        )

    def all(self) -> tuple[str, ...]:
        return (self.logs, self.loggers, self.events, self.settings, self.settings_schema)


@dataclass(frozen=True)
class Config:
    namespace: str = "default"
    host: str = "127.0.0.1"
    port: int = 8080
    auth_mode: AuthMode = "none"
    kubeconfig: str | None = None
    context: str | None = None
    run_operator: bool = True
    run_api: bool = True
    configmaps: ConfigMapNames = field(default_factory=ConfigMapNames)
    log_level: str = "INFO"
    # With several replicas, only the holder of a Lease runs the operator half.
    leader_election: bool = False
    identity: str = field(default_factory=lambda: default_identity())
    lease_seconds: float = 15.0

    @staticmethod
    def default_namespace() -> str:
        """CARAVAN_NAMESPACE, else the pod's own namespace, else `default`."""
        explicit = os.environ.get("CARAVAN_NAMESPACE")
        if explicit:
            return explicit
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                return f.read().strip() or "default"
        except OSError:
            return "default"

    def check(self) -> None:
        """Refuses configurations that would expose an unauthenticated API."""
        if self.auth_mode == "none" and not is_loopback(self.host):
            raise ValueError(
                f"--auth-mode=none is only allowed on a loopback address, not {self.host!r};"
                " use --auth-mode=kubernetes"
            )


def default_identity() -> str:
    """POD_NAME in a pod (the chart sets it), else host and process: unique per replica."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def env_defaults() -> dict[str, str]:
    """Flag defaults taken from CARAVAN_* variables (the chart sets these).

    The listen address is CARAVAN_LISTEN_HOST/CARAVAN_LISTEN_PORT, never CARAVAN_PORT:
    Kubernetes injects CARAVAN_PORT=tcp://<ip>:<port> (and CARAVAN_SERVICE_HOST, ...) into
    every pod of a namespace holding a Service named `caravan`, Caravan's own included.
    """
    return {
        "host": _env("CARAVAN_LISTEN_HOST", "127.0.0.1"),
        "port": _env("CARAVAN_LISTEN_PORT", "8080"),
        "auth_mode": _env("CARAVAN_AUTH_MODE", "none"),
        "log_level": _env("CARAVAN_LOG_LEVEL", "INFO"),
        "prefix": _env("CARAVAN_CONFIGMAP_PREFIX", "caravan"),
        "leader_elect": _env("CARAVAN_LEADER_ELECT", "false"),
    }
