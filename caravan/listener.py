"""The API's listening socket, optionally shared with other processes (SO_REUSEPORT).

Replicas in the node's network namespace (hostNetwork) all listen on the same address
and port: each binds its own socket with SO_REUSEPORT and the kernel spreads new
connections over the sockets open at that moment. A replica that stops closes its
socket and leaves the group; one that starts joins it. Linux lets only processes of the
same user share a port this way.
"""

from __future__ import annotations

import socket


def shared_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket others of the same user may bind too (uvicorn listens on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
