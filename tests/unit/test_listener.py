"""The shared listening socket: replicas in one network namespace bind one port."""

from __future__ import annotations

import socket

import pytest

from caravan.listener import shared_socket


def test_two_processes_worth_of_sockets_bind_one_port_and_both_accept() -> None:
    first = shared_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = shared_socket("127.0.0.1", port)
    try:
        for sock in (first, second):
            sock.listen()
            sock.settimeout(5)
        assert second.getsockname() == ("127.0.0.1", port)
        # Connections go to either; once one socket closes, every new one reaches the other.
        first.close()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            accepted, _ = second.accept()
            accepted.close()
    finally:
        first.close()
        second.close()


def test_a_port_held_without_reuse_port_is_refused() -> None:
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    try:
        with pytest.raises(OSError):
            shared_socket("127.0.0.1", plain.getsockname()[1])
    finally:
        plain.close()
