"""A TCP proxy in front of kube-apiserver that tests can cut or freeze.

`cut()` closes every connection and refuses new ones until `heal()`; `freeze()` keeps
the open connections but stops moving their bytes (a connection cut without an error,
as a dead NAT entry or a half-open TCP connection looks), while new connections work.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yaml


@dataclass
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    frozen: asyncio.Event = field(default_factory=asyncio.Event)  # set: bytes stop


class ApiProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.links: list[_Link] = []
        self.refusing = False
        self.connections = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.refusing = True
        for link in self.links:
            link.client.close()
            link.upstream.close()
        self.links.clear()

    def heal(self) -> None:
        self.refusing = False

    def freeze(self) -> int:
        """Freezes the open connections; returns how many."""
        for link in self.links:
            link.frozen.set()
        frozen = len(self.links)
        self.links = []  # new connections are not frozen
        return frozen

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        link = _Link(writer, up_writer)
        self.links.append(link)
        await asyncio.gather(
            self._pump(reader, up_writer, link),
            self._pump(up_reader, writer, link),
            return_exceptions=True,
        )
        for w in (writer, up_writer):
            w.close()
        if link in self.links:
            self.links.remove(link)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link) -> None:
        while not src.at_eof():
            data = await src.read(65536)
            if not data:
                break
            if link.frozen.is_set():
                await asyncio.Event().wait()  # hold the connection open, silent
            dst.write(data)
            await dst.drain()


def server_of(kubeconfig: str) -> tuple[str, int]:
    config = yaml.safe_load(pathlib.Path(kubeconfig).read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    url = urlsplit(cluster["cluster"]["server"])
    return str(url.hostname), int(url.port or 443)


@contextlib.asynccontextmanager
async def proxied_kubeconfig(
    kubeconfig: str, directory: pathlib.Path
) -> AsyncIterator[tuple[ApiProxy, str]]:
    """A proxy to the cluster of `kubeconfig`, and a kubeconfig that goes through it."""
    host, port = server_of(kubeconfig)
    proxy = ApiProxy(host, port)
    await proxy.start()
    path = write_kubeconfig(kubeconfig, directory / "proxied-kubeconfig.yaml", proxy.port)
    try:
        yield proxy, path
    finally:
        await proxy.stop()


def write_kubeconfig(kubeconfig: str, path: pathlib.Path, port: int) -> str:
    """A copy of `kubeconfig` whose server is 127.0.0.1:`port` (same TLS and user)."""
    config = yaml.safe_load(pathlib.Path(kubeconfig).read_text())
    base = pathlib.Path(kubeconfig).parent
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
        _absolute(cluster["cluster"], base, "certificate-authority")
    for user in config["users"]:
        _absolute(user["user"], base, "client-certificate")
        _absolute(user["user"], base, "client-key")
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _absolute(section: dict[str, str], base: pathlib.Path, key: str) -> None:
    if key in section and not pathlib.Path(section[key]).is_absolute():
        section[key] = str(base / section[key])
