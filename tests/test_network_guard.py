"""The suite cannot reach the internet: only loopback connections are allowed."""

import socket

import pytest
import pytest_socket
from pytest_socket import SocketConnectBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_non_loopback_connections_are_refused_before_any_packet_is_sent() -> None:
    # Without the guard in place, stop here rather than let a packet leave the machine.
    assert socket.socket.connect is not pytest_socket._true_connect
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 9), timeout=0.05)  # TEST-NET-1, never routed


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
