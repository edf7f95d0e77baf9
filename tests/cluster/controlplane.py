"""The local control plane's processes, for fault tests: stop one, start it again.

kwokctl's binary runtime runs each component as a process whose command line holds the
cluster's folder; a component is restarted with the command line, working folder and
environment it had. Only the local cluster of hack/cluster.sh can be treated so.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    """One running component (e.g. kube-apiserver, etcd) of the local cluster."""

    pid: int
    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str]

    @classmethod
    def find(cls, kubeconfig: str, binary: str) -> Component:
        cluster_dir = str(pathlib.Path(kubeconfig).resolve().parent)
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if not argv or pathlib.Path(argv[0].decode()).name != binary:
                    continue
                args = tuple(a.decode() for a in argv if a)
                if not any(cluster_dir in a for a in args):
                    continue
                environ = (entry / "environ").read_bytes().split(b"\0")
                env = dict(e.decode().split("=", 1) for e in environ if b"=" in e)
                return cls(int(entry.name), args, os.readlink(entry / "cwd"), env)
            except (OSError, UnicodeDecodeError):
                continue
        raise AssertionError(
            f"no {binary} process of the local cluster in {cluster_dir}: fault tests need"
            " the control plane of hack/cluster.sh"
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        os.kill(self.pid, sig)

    def running(self) -> bool:
        try:
            status = pathlib.Path(f"/proc/{self.pid}/stat").read_text().split()
        except OSError:
            return False
        return not (len(status) > 2 and status[2] == "Z")  # a zombie is gone enough

    async def wait_exited(self) -> None:
        """Until the process ended (its pidfd turns readable; no polling)."""
        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return
        exited = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, exited.set)
        try:
            if self.running():
                await exited.wait()
        finally:
            loop.remove_reader(fd)
            os.close(fd)

    def start(self) -> Component:
        """Starts the component again as it ran; returns the new process."""
        name = pathlib.Path(self.argv[0]).name
        with open(pathlib.Path(self.cwd) / f"{name}.restart.log", "ab") as log:
            process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # outlives the test session, as kwokctl's does
            )
        pidfile = self._cluster_dir() / "pids" / f"{name}.pid"
        if pidfile.exists():  # kwokctl stops components by these
            pidfile.write_text(str(process.pid))
        return Component(process.pid, self.argv, self.cwd, self.env)

    def _cluster_dir(self) -> pathlib.Path:
        binary = pathlib.Path(self.argv[0])
        return binary.parent.parent  # <cluster>/bin/<binary>
