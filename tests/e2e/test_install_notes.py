"""The install notes as a newcomer follows them: the printed curl reaches the installed
Caravan (not another one on the machine); a Caravan stopped while its RBAC exists leaves
its Lease."""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
from collections.abc import Iterator

from caravan.kube.client import KubeClient
from caravan.operator.leader import LEASES
from tests.cluster.kubeutil import eventually
from tests.e2e.conftest import KUBECTL, RELEASE, Installed
from tests.helm import helm


def _printed(notes: str, pattern: str) -> str:
    found = [line.strip() for line in notes.splitlines() if re.search(pattern, line)]
    assert len(found) == 1, f"expected one line matching {pattern!r} in the notes:\n{notes}"
    return found[0]


def _shell(command: str, token: str) -> subprocess.CompletedProcess[str]:
    """The line as the user pastes it, in a shell where the notes' TOKEN is set."""
    return subprocess.run(
        ["bash", "-c", command + " -s -w '\\n%{http_code}'"],
        env={"TOKEN": token, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_the_printed_curl_reaches_the_installed_caravan(
    installed: Installed, kube: KubeClient
) -> None:
    notes = helm(
        "get", "notes", RELEASE, "-n", installed.namespace, "--kubeconfig", installed.kubeconfig
    ).stdout
    urls = set(re.findall(r"http://[^\s/]+", notes))
    assert len(urls) == 1, urls  # one address everywhere
    curl = _printed(notes, r'^\s*curl -H "Authorization: Bearer \$TOKEN" ')
    with contextlib.ExitStack() as stack:
        if "port-forward" in notes:  # a cluster without the local real node
            forward = _printed(notes, r"port-forward svc/").removesuffix("&").strip()
            stack.enter_context(_background(forward, installed.kubeconfig))
        else:
            assert urls == {installed.url}
        _reaches_the_installed_caravan(curl, installed.token)

    # Stopped while its RBAC exists, Caravan leaves the Lease (which stays, with no holder).
    lease_path = LEASES.item(installed.namespace, "caravan-operator")
    held = await eventually(
        lambda: kube.get(lease_path),
        lambda lease: bool(lease["spec"].get("holderIdentity")),
        what="the Lease held by the installed Caravan",
    )
    assert held["spec"]["holderIdentity"].startswith(RELEASE)
    installed.kubectl("scale", f"deployment/{RELEASE}", "--replicas=0")
    released = await eventually(
        lambda: kube.get(lease_path),
        lambda lease: lease["spec"].get("holderIdentity") == "",
        what="the Lease given up by the stopping Caravan",
        timeout=60,
    )
    assert released["spec"]["leaseDurationSeconds"] == 1


@contextlib.contextmanager
def _background(command: str, kubeconfig: str) -> Iterator[None]:
    words = shlex.split(command)
    assert words[0] == "kubectl"
    process = subprocess.Popen(
        [KUBECTL, "--kubeconfig", kubeconfig, *words[1:]], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert "Forwarding from" in process.stdout.readline()
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _reaches_the_installed_caravan(curl: str, token: str) -> None:
    answered = _shell(curl, token)
    body, _, status = answered.stdout.rpartition("\n")
    assert status == "200", answered
    assert body.startswith("[")
    # The same call without the token is refused: this Caravan checks tokens (a `make run`
    # Caravan on another port would have answered 200 to anyone).
    anonymous = _shell(curl.replace('-H "Authorization: Bearer $TOKEN" ', ""), "")
    assert anonymous.stdout.rpartition("\n")[2] == "401", anonymous
