"""Promise 1: the network is off by default.

A sandbox without `network=True` cannot reach a TCP listener this test opens on the host's 127.0.0.1, nor an
abstract unix socket on the host (AF_UNIX is allowed by the seccomp filter, so this one proves the network
namespace itself), resolves names only from its own /etc/hosts, and has no interface but `lo`. The controls
run the same probes with `network=True` and see the host. No traffic goes anywhere but the host's loopback.
"""

from __future__ import annotations

import errno
import secrets
import socket
from collections.abc import Iterator

import pytest

from tests.security.sandboxes import StartSandbox, run, value

PROBE = """
import errno, socket

def attempt(family, address):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(address)
        return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

{
    "tcp4": attempt(socket.AF_INET, ("127.0.0.1", PORT)),
    "tcp6": attempt(socket.AF_INET6, ("::1", PORT)),
    "abstract_unix": attempt(socket.AF_UNIX, ABSTRACT),
}
"""


class HostListeners:
    """A TCP listener on the host's 127.0.0.1 and a listening abstract unix socket, both loopback-only."""

    def __init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.port: int = self.tcp.getsockname()[1]
        self.abstract = "\0sandrun-security-" + secrets.token_hex(8)
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.abstract)
        self.unix.listen(8)

    def probe(self) -> str:
        return PROBE.replace("PORT", str(self.port)).replace("ABSTRACT", repr(self.abstract))

    def pending(self, listener: socket.socket) -> int:
        """How many connections reached `listener` (accepted and closed at once)."""
        listener.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.tcp.close()
        self.unix.close()


@pytest.fixture
def listeners() -> Iterator[HostListeners]:
    opened = HostListeners()
    yield opened
    opened.close()


def test_network_off_cannot_reach_host_loopback(sandbox: StartSandbox, listeners: HostListeners) -> None:
    result = value(run(sandbox(), listeners.probe()))
    assert result["tcp4"] != "connected"
    assert result["tcp6"] != "connected"
    assert result["tcp4"] == errno.errorcode[errno.EAFNOSUPPORT]  # refused by the seccomp filter
    # AF_UNIX sockets are allowed: the host's abstract socket is out of reach because of the namespace.
    assert result["abstract_unix"] == errno.errorcode[errno.ECONNREFUSED]
    assert listeners.pending(listeners.tcp) == 0
    assert listeners.pending(listeners.unix) == 0


def test_control_network_on_reaches_host_loopback(sandbox: StartSandbox, listeners: HostListeners) -> None:
    result = value(run(sandbox(network=True), listeners.probe()))
    assert result["tcp4"] == "connected"
    assert result["abstract_unix"] == "connected"
    assert listeners.pending(listeners.tcp) >= 1
    assert listeners.pending(listeners.unix) == 1


def test_dns_is_local_only(sandbox: StartSandbox) -> None:
    result = value(
        run(
            sandbox(),
            """
            import os, socket
            def resolve(name):
                try:
                    return sorted({info[4][0] for info in socket.getaddrinfo(name, 80)})
                except OSError as e:
                    return type(e).__name__
            {
                "localhost": resolve("localhost"),
                "external": resolve("example.com"),
                "resolv_conf": os.path.exists("/etc/resolv.conf"),
            }
            """,
        )
    )
    assert result["localhost"], "localhost must still resolve, from the sandbox's own /etc/hosts"
    assert set(result["localhost"]) <= {"127.0.0.1", "::1"}
    assert result["external"] == "gaierror"
    assert result["resolv_conf"] is False


def test_only_the_loopback_interface(sandbox: StartSandbox) -> None:
    probe = """
    import socket
    with open("/proc/net/dev") as f:
        devices = sorted(line.split(":")[0].strip() for line in f if ":" in line)
    (sorted(name for _, name in socket.if_nameindex()), devices)
    """
    names, devices = value(run(sandbox(), probe))
    assert names == ["lo"]
    assert devices == ["lo"]
    # Control: with the network on, the sandbox sees the host's interfaces.
    host = sorted(name for _, name in socket.if_nameindex())
    shared, _ = value(run(sandbox(network=True), probe))
    assert shared == host
