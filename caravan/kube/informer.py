"""List+watch loops that keep a local copy of one kind of object up to date.

An informer lists once, then watches from the list's resourceVersion. When the stream
breaks or stays silent past `idle_seconds` (a connection cut without an error), it
watches again from the last version it saw; when that version has expired (410 Gone) or
anything else fails, it lists again and reports the whole set, so the consumer never
misses a deletion. Consumers receive plain dicts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from caravan.kube.client import JSON, KubeClient
from caravan.kube.errors import KubeError, Unavailable
from caravan.retry import Backoff

log = logging.getLogger(__name__)

MIN_BACKOFF = 0.25
MAX_BACKOFF = 4.0


class InformerSink(Protocol):
    """What an informer feeds: the listed objects as ADDED events, then `end_relist` with
    every name the list held (anything else is gone), then single watch events."""

    def apply_event(self, kind: str, event_type: str, obj: JSON) -> None: ...

    def end_relist(self, kind: str, names: set[str]) -> None: ...


class Informer:
    def __init__(
        self,
        kube: KubeClient,
        kind: str,
        path: str,
        sink: InformerSink,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        on_synced: Callable[[], None] | None = None,
        watch_timeout: int = 300,
        idle_seconds: float | None = None,
        page_size: int = 250,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.page_size = page_size
        self.kube = kube
        self.kind = kind
        self.path = path
        self.sink = sink
        self.watch_timeout = watch_timeout
        # A stream silent this long (no event, no bookmark) is taken as cut and reopened.
        self.idle_seconds = idle_seconds
        self._sleep = sleep
        self._query: dict[str, Any] = {}
        if label_selector:
            self._query["labelSelector"] = label_selector
        if field_selector:
            self._query["fieldSelector"] = field_selector
        self._on_synced = on_synced
        self.synced = asyncio.Event()
        self.last_error: str | None = None
        # When the stream last proved alive (an event or a bookmark): watch lag metric.
        self.last_seen = time.monotonic()
        self.events_seen = 0
        # Where the next watch starts: the last version seen ("" means list first).
        self.resource_version = ""
        self.lists = 0  # complete lists so far (the first one, then relists)

    async def run(self) -> None:
        backoff = Backoff(MIN_BACKOFF, MAX_BACKOFF, sleep=self._sleep)
        while True:
            try:
                if not self.resource_version:
                    self.resource_version = await self._list()
                backoff.reset()
                while self.resource_version:
                    await self._watch()
                continue  # the watch asked for a relist (410 Gone): at once
            except asyncio.CancelledError:
                raise
            except Unavailable as exc:
                # The stream broke or went silent: resume from where it was (a version
                # etcd no longer keeps answers 410, and then we relist).
                self.last_error = str(exc)
                delay = backoff.next_delay()
                log.warning("informer %s: %s; resuming in %.1fs", self.kind, exc, delay)
            except KubeError as exc:
                self.resource_version = ""
                self.last_error = str(exc)
                delay = backoff.next_delay()
                log.warning("informer %s: %s; relisting in %.1fs", self.kind, exc, delay)
            except Exception as exc:  # a broken stream must never end the informer
                self.resource_version = ""
                self.last_error = repr(exc)
                delay = backoff.next_delay()
                log.warning("informer %s: %r; relisting in %.1fs", self.kind, exc, delay)
            await backoff.sleep(delay)

    async def _list(self) -> str:
        # Page by page, each page handed over and dropped: the whole list of 10,000 pods
        # as dicts at once would cost the process hundreds of MB it never gives back.
        names: set[str] = set()
        query: dict[str, Any] = dict(self._query, limit=self.page_size)
        while True:
            page = await self.kube.list_items(self.path, **query)
            for item in page.get("items", []):
                names.add(str(item.get("metadata", {}).get("name", "")))
                self.sink.apply_event(self.kind, "ADDED", item)
            meta: Mapping[str, Any] = page.get("metadata", {})
            del page
            if not meta.get("continue"):
                resource_version = str(meta.get("resourceVersion", ""))
                break
            query["continue"] = meta["continue"]
        self.sink.end_relist(self.kind, names)
        self.lists += 1
        self.last_seen = time.monotonic()
        self.last_error = None
        if not self.synced.is_set():
            self.synced.set()
            if self._on_synced:
                self._on_synced()
        return resource_version

    async def _watch(self) -> None:
        """Watches until the stream ends, keeping `resource_version` at the last version
        seen; sets it to "" when the server says to relist."""
        query = dict(self._query, resourceVersion=self.resource_version, allowWatchBookmarks="true")
        async for event in self.kube.watch(
            self.path,
            query=query,
            timeout_seconds=self.watch_timeout,
            idle_seconds=self.idle_seconds,
            on_open=self._opened,
        ):
            event_type = event.get("type", "")
            obj = event.get("object") or {}
            if event_type == "ERROR":
                # 410 Gone: our resourceVersion is too old; anything else: start over too.
                log.info("informer %s: watch error %s", self.kind, obj.get("message"))
                self.resource_version = ""
                return
            self.last_seen = time.monotonic()
            self.events_seen += 1
            new_version = obj.get("metadata", {}).get("resourceVersion")
            if new_version:
                self.resource_version = str(new_version)
            if event_type != "BOOKMARK":
                self.sink.apply_event(self.kind, event_type, obj)

    def _opened(self) -> None:
        self.last_error = None
        self.last_seen = time.monotonic()
