"""A small raw-JSON Kubernetes client on top of kubernetes-asyncio's transport.

The generated model classes are skipped on purpose: deserialising every pod into models
costs time and memory the store does not need. Requests and responses are plain dicts.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from caravan.kube.errors import KubeError as KubeError  # re-exported: callers catch it here
from caravan.kube.errors import unreachable

JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class ResourcePath:
    """Where a kind of resource lives in the REST API."""

    group: str
    version: str
    plural: str

    def collection(self, namespace: str | None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{quote(namespace)}"
        return f"{base}/{self.plural}"

    def item(self, namespace: str | None, name: str, subresource: str = "") -> str:
        path = f"{self.collection(namespace)}/{quote(name)}"
        return f"{path}/{subresource}" if subresource else path


PODS = ResourcePath("", "v1", "pods")
CONFIGMAPS = ResourcePath("", "v1", "configmaps")
SECRETS = ResourcePath("", "v1", "secrets")
NAMESPACES = ResourcePath("", "v1", "namespaces")
DEPLOYMENTS = ResourcePath("apps", "v1", "deployments")
JOBS = ResourcePath("caravan.dev", "v1alpha1", "jobs")
CONTROLLER_REVISIONS = ResourcePath("apps", "v1", "controllerrevisions")
EVENTS = ResourcePath("events.k8s.io", "v1", "events")


async def load_configuration(
    kubeconfig: str | None = None, context: str | None = None
) -> k8s_client.Configuration:
    """In-cluster config when running in a pod, else the kubeconfig file."""
    configuration = k8s_client.Configuration()
    if (
        kubeconfig is None
        and os.environ.get("KUBERNETES_SERVICE_HOST")
        and not os.environ.get("KUBECONFIG")
    ):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await k8s_config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    return configuration


def _env_proxy(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, NO_PROXY, ...) names for `url`, as
    aiohttp's `trust_env` would pick it."""
    parts = urlsplit(url)
    if not parts.hostname or proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme)


class KubeClient:
    """Raw REST calls returning parsed JSON; one instance per event loop."""

    def __init__(self, configuration: k8s_client.Configuration) -> None:
        self._api = k8s_client.ApiClient(configuration)
        # kubernetes_asyncio's session trusts the environment, so aiohttp looks up
        # ~/.netrc and the proxy variables in a worker thread at every request: two
        # thread hops, each a wait for the GIL the operator's thread may hold. The proxy
        # is looked up once here instead, and the session that sends trusts nothing more.
        rest = self._api.rest_client
        self._connector_owner: aiohttp.ClientSession = rest.pool_manager
        rest.pool_manager = aiohttp.ClientSession(
            connector=self._connector_owner.connector,
            connector_owner=False,
            trust_env=False,
            read_bufsize=2**21,  # as kubernetes_asyncio's: large objects in watch events
        )
        if not rest.proxy:
            rest.proxy = _env_proxy(configuration.host or "") or ""

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        return cls(await load_configuration(kubeconfig, context))

    @classmethod
    async def connect_with_token(
        cls, token: str, kubeconfig: str | None = None, context: str | None = None
    ) -> KubeClient:
        """The same cluster, authenticated as the bearer of `token` (no client cert)."""
        configuration = await load_configuration(kubeconfig, context)
        configuration.cert_file = None
        configuration.key_file = None
        configuration.api_key = {"BearerToken": f"Bearer {token}"}
        return cls(configuration)

    async def close(self) -> None:
        await self._api.close()
        await self._connector_owner.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        try:
            response: aiohttp.ClientResponse = await self._api.call_api(
                path,
                method,
                query_params=params,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
                response_types_map={},
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise unreachable(exc) from exc
        if not 200 <= response.status <= 299:
            try:
                text = await response.text()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise unreachable(exc) from exc
            finally:
                response.release()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            error = KubeError(response.status, response.reason or "", parsed)
            error.retry_after = _seconds(response.headers.get("Retry-After"))
            raise error
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> JSON:
        response = await self._send(method, path, query=query, body=body, content_type=content_type)
        try:
            data: JSON = await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise unreachable(exc) from exc
        finally:
            response.release()
        return data

    async def stream(
        self,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> aiohttp.ClientResponse:
        """GET with the body left unread (log reads, watches); the caller releases it."""
        client_timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout)
        return await self._send("GET", path, query=query, timeout=client_timeout)

    async def watch(
        self,
        path: str,
        *,
        query: Mapping[str, Any],
        timeout_seconds: int = 300,
        idle_seconds: float | None = None,
        on_open: Callable[[], None] | None = None,
    ) -> AsyncIterator[JSON]:
        """Yields watch events ({"type", "object"}) until the server closes the stream.

        A stream silent for `idle_seconds` (default: past the server's own timeout) is
        taken as cut: it raises `Unavailable`, as does a stream broken mid-way.
        """
        params = dict(query, watch="true", timeoutSeconds=timeout_seconds)
        idle = idle_seconds if idle_seconds is not None else timeout_seconds + 30
        response = await self.stream(path, query=params, timeout=idle)
        if on_open is not None:
            on_open()
        try:
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise unreachable(exc) from exc
        finally:
            response.release()

    # Convenience verbs -----------------------------------------------------------------

    async def get(self, path: str) -> JSON:
        return await self.request("GET", path)

    async def list_items(self, path: str, **query: Any) -> JSON:
        return await self.request("GET", path, query=query)

    async def create(self, path: str, body: JSON) -> JSON:
        return await self.request("POST", path, body=body, content_type="application/json")

    async def replace(self, path: str, body: JSON) -> JSON:
        return await self.request("PUT", path, body=body, content_type="application/json")

    async def delete(self, path: str, *, preconditions: JSON | None = None, **query: Any) -> JSON:
        """DELETE; with `preconditions` (uid, resourceVersion) only that very object."""
        if preconditions is None:
            return await self.request("DELETE", path, query=query)
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions}
        return await self.request(
            "DELETE", path, query=query, body=options, content_type="application/json"
        )

    async def merge_patch(self, path: str, patch: JSON, field_manager: str | None = None) -> JSON:
        query = {"fieldManager": field_manager} if field_manager else None
        return await self.request("PATCH", path, query=query, body=patch, content_type=MERGE_PATCH)

    async def json_patch(
        self, path: str, operations: list[JSON], field_manager: str | None = None
    ) -> JSON:
        """RFC 6902: with ``test`` operations, a compare-and-swap of just those fields."""
        query = {"fieldManager": field_manager} if field_manager else None
        return await self.request(
            "PATCH", path, query=query, body=operations, content_type=JSON_PATCH
        )

    async def apply(self, path: str, body: JSON, field_manager: str) -> JSON:
        """Server-side apply: the server merges, and repairs drift in fields we own."""
        return await self.request(
            "PATCH",
            path,
            query={"fieldManager": field_manager, "force": "true"},
            body=body,
            content_type=APPLY_PATCH,
        )


def _seconds(header: str | None) -> float | None:
    try:
        return float(header) if header else None
    except ValueError:
        return None


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
