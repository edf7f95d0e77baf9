"""Runtime configuration of `caravan run`, from flags with environment fallbacks."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Literal

AuthMode = Literal["none", "kubernetes"]
PodPolicyLevel = Literal["baseline", "privileged"]


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
class NatsConfig:
    """The events cluster (docs/events.md, "Several replicas"); absent: the embedded
    engine alone. Every replica of one installation must name the same server(s)."""

    url: str  # nats://host:4222 or tls://host:4222; several comma-separated
    creds_file: str | None = None  # a NATS .creds file (JWT + nkey seed)
    user: str | None = None
    password: str | None = None
    tls_ca_file: str | None = None  # verifies the server; tls:// without it uses system CAs
    tls_cert_file: str | None = None  # client certificate, when the server asks for one
    tls_key_file: str | None = None
    tls_enabled: bool = False  # TLS with the system CAs, without naming any file
    # How long the merger waits for a replica that has not reported a period.
    merge_grace_ms: int = 2_000
    # Stream and subject names start with this (one installation per namespace).
    stream_prefix: str = ""

    @property
    def tls(self) -> bool:
        return bool(
            self.tls_enabled
            or self.tls_ca_file
            or self.tls_cert_file
            or self.url.strip().startswith("tls://")
        )


def nats_from_env() -> NatsConfig | None:
    """CARAVAN_NATS_* variables (the chart sets these when ``events.nats.url`` is set)."""
    url = os.environ.get("CARAVAN_NATS_URL", "").strip()
    if not url:
        return None
    return NatsConfig(
        url=url,
        creds_file=os.environ.get("CARAVAN_NATS_CREDS") or None,
        user=os.environ.get("CARAVAN_NATS_USER") or None,
        password=os.environ.get("CARAVAN_NATS_PASSWORD") or None,
        tls_ca_file=os.environ.get("CARAVAN_NATS_TLS_CA") or None,
        tls_cert_file=os.environ.get("CARAVAN_NATS_TLS_CERT") or None,
        tls_key_file=os.environ.get("CARAVAN_NATS_TLS_KEY") or None,
        tls_enabled=os.environ.get("CARAVAN_NATS_TLS", "").lower() in ("1", "true", "yes"),
        merge_grace_ms=int(os.environ.get("CARAVAN_NATS_MERGE_GRACE_MS") or 2_000),
    )


MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """What one request or caller may hold of the server before anything is read
    (caravan/api/guard.py, caravan/api/serving.py). Refusals: 413, 431, 408, 429, 503."""

    max_body_bytes: int = 8 * MiB
    # The request line and headers together, and how many headers.
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    # A client must send its whole request head within this (slow-header attacks), and
    # its body within body_seconds.
    header_seconds: float = 10.0
    body_seconds: float = 60.0
    # An idle keep-alive connection is closed after this.
    keep_alive_seconds: float = 5.0
    # Connections and requests in flight at once; above, 503. Long polls count: 1,000
    # watchers of one job must fit.
    max_concurrency: int = 4096
    # Open streams (SSE, WebSocket, log follow) of one caller at once; above, 429.
    max_streams_per_caller: int = 32
    # Streams re-check their caller's access this often, and end when it is withdrawn.
    stream_recheck_seconds: float = 30.0


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
    # How long a write waits for this replica's store to show it (read your writes).
    read_your_writes_seconds: float = 5.0
    # A watch silent this long is taken as cut and reopened (kube-apiserver sends a
    # bookmark about once a minute on a healthy watch).
    watch_idle_seconds: float = 90.0
    # Several replicas reduce events together through NATS JetStream; None: embedded.
    nats: NatsConfig | None = None
    # Task pods (caravan.jobs.podpolicy): the account they run as when their template
    # names none (None: the namespace's default, with no token mounted), the accounts a
    # template may name, Caravan's own (never allowed), and the pod policy's level.
    task_service_account: str | None = None
    allowed_service_accounts: tuple[str, ...] = ()
    own_service_account: str | None = None
    pod_policy: PodPolicyLevel = "baseline"
    limits: ServerLimits = field(default_factory=ServerLimits)
    # The audience TokenReviews ask for (--token-audience); None: the apiserver's own.
    token_audience: str | None = None
    # Share the listening port with other processes (SO_REUSEPORT): replicas in the
    # node's network namespace (hostNetwork) on one node (caravan.listener).
    reuse_port: bool = False
    # From SIGTERM to the server no longer listening: the replica answers, not ready,
    # while the endpoints drop it (docs/upgrading.md).
    shutdown_delay_seconds: float = 0.0
    # A file that exists while the replica is ready, for an exec readiness probe where an
    # HTTP one cannot tell replicas apart (a shared port); None: no file.
    ready_file: str | None = None

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
        "lease_seconds": _env("CARAVAN_LEASE_SECONDS", "15"),
        "task_service_account": _env("CARAVAN_TASK_SERVICE_ACCOUNT", ""),
        "allowed_service_accounts": _env("CARAVAN_ALLOWED_SERVICE_ACCOUNTS", ""),
        "own_service_account": _env("CARAVAN_SERVICE_ACCOUNT", "") or pod_service_account(),
        "pod_policy": _env("CARAVAN_POD_POLICY", "baseline"),
        "max_body_bytes": _env("CARAVAN_MAX_BODY_BYTES", str(8 * MiB)),
        "token_audience": _env("CARAVAN_TOKEN_AUDIENCE", ""),
        "reuse_port": _env("CARAVAN_REUSE_PORT", "false"),
        "shutdown_delay": _env("CARAVAN_SHUTDOWN_DELAY_SECONDS", "0"),
        "ready_file": _env("CARAVAN_READY_FILE", ""),
    }


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def pod_service_account(token_file: str = SERVICE_ACCOUNT_TOKEN) -> str:
    """The ServiceAccount this pod runs as, from its own token's claims ("" outside a pod):
    Caravan's own account is never one task pods may use, whoever installed it."""
    try:
        with open(token_file) as f:
            payload = f.read().strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, IndexError, ValueError):
        return ""
    subject = str(claims.get("sub", "")) if isinstance(claims, dict) else ""
    prefix, _, name = subject.rpartition(":")
    return name if prefix.startswith("system:serviceaccount:") else ""


def names_list(text: str) -> tuple[str, ...]:
    """`a,b c` -> ("a", "b", "c"): names given in one flag or variable."""
    return tuple(n for n in text.replace(",", " ").split() if n)
