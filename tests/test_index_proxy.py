"""The package index proxy: forwards only to allow-listed hosts, never to this machine unless named.

Real sockets throughout: a TCP server on this machine's loopback stands in for an index, and the proxy is
spoken to over its unix socket the way the relay inside a build sandbox speaks to it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandrun.backends.index_proxy import AllowList, IndexProxy, refused_address


@pytest.fixture
def server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that answers each connection with `hello <first line it got>`."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\n" not in data and (chunk := conn.recv(1024)):
                    data += chunk
                conn.sendall(b"hello " + data.split(b"\r\n")[0] + b"\n")

    threading.Thread(target=serve, daemon=True).start()
    yield port
    listener.close()


def ask(proxy: IndexProxy, request: bytes, then: bytes = b"") -> bytes:
    """Send `request` to the proxy's socket, then `then` once it answered; everything it sent back."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(proxy.path))
        sock.sendall(request)
        answer = sock.recv(65536)
        if then and answer.startswith(b"HTTP/1.1 200"):
            sock.sendall(then)
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def loopback(allow: AllowList, tmp_path: Path) -> IndexProxy:
    return IndexProxy(tmp_path / "proxy.sock", allow, resolve=lambda host, port: ["127.0.0.1"]).start()


def test_an_allow_listed_host_is_forwarded_with_connect(server: int, tmp_path: Path) -> None:
    allow = AllowList.from_pip(f"http://index.test:{server}/simple")
    proxy = loopback(allow, tmp_path)
    try:
        answer = ask(proxy, f"CONNECT index.test:{server} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), b"ping\r\n")
    finally:
        proxy.close()
    assert answer == b"HTTP/1.1 200 Connection established\r\n\r\nhello ping\n"


def test_a_plain_http_request_is_forwarded_in_origin_form_with_connection_close(
    server: int, tmp_path: Path
) -> None:
    proxy = loopback(AllowList.from_pip(None, trusted_hosts=[f"index.test:{server}"]), tmp_path)
    try:
        answer = ask(
            proxy, f"GET http://index.test:{server}/simple/x/?a=1 HTTP/1.1\r\nHost: i\r\n\r\n".encode()
        )
    finally:
        proxy.close()
    assert answer == b"hello GET /simple/x/?a=1 HTTP/1.1\n"


def test_the_control_without_an_allow_list_entry_the_same_server_is_refused(
    server: int, tmp_path: Path
) -> None:
    proxy = loopback(AllowList(), tmp_path)  # the default: pypi.org and files.pythonhosted.org only
    try:
        answer = ask(proxy, f"CONNECT index.test:{server} HTTP/1.1\r\n\r\n".encode())
        direct = ask(proxy, f"CONNECT 127.0.0.1:{server} HTTP/1.1\r\n\r\n".encode())
    finally:
        proxy.close()
    assert answer.startswith(b"HTTP/1.1 403 ") and b"not a package index" in answer
    assert direct.startswith(b"HTTP/1.1 403 ")
    assert len(proxy.refused) == 2


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.1.2.3", "::1", "169.254.169.254", "fd00:ec2::254", "10.1.2.3", "192.168.1.1"],
)
def test_a_default_index_name_that_resolves_to_this_machine_or_metadata_is_refused(
    server: int, tmp_path: Path, address: str
) -> None:
    """DNS rebinding: pypi.org is allowed by name, but not when its name points here."""
    proxy = IndexProxy(tmp_path / "p.sock", AllowList(), resolve=lambda host, port: [address]).start()
    try:
        answer = ask(proxy, b"CONNECT pypi.org:443 HTTP/1.1\r\n\r\n")
    finally:
        proxy.close()
    assert answer.startswith(b"HTTP/1.1 403 ") and b"local or private" in answer


def test_only_the_acceptable_addresses_of_a_name_are_tried(server: int, tmp_path: Path) -> None:
    allow = AllowList(frozenset({("pypi.org", server)}))
    proxy = IndexProxy(tmp_path / "p.sock", allow, resolve=lambda host, port: ["169.254.169.254"]).start()
    try:
        assert ask(proxy, f"CONNECT pypi.org:{server} HTTP/1.1\r\n\r\n".encode()).startswith(b"HTTP/1.1 403")
    finally:
        proxy.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /simple/ HTTP/1.1\r\n\r\n",
        b"GET https://pypi.org/simple/ HTTP/1.1\r\n\r\n",
        b"CONNECT pypi.org HTTP/1.1\r\n\r\n",
        b"CONNECT pypi.org:99999 HTTP/1.1\r\n\r\n",
        b"CONNECT ::1:443 HTTP/1.1\r\n\r\n",
        b"hello\r\n\r\n",
        b"CONNECT pypi.org:443 SPDY/3\r\n\r\n",
        b"GET http://pypi.org:x/ HTTP/1.1\r\n\r\n",
        b"X" * 20000 + b"\r\n\r\n",
    ],
)
def test_bad_requests_are_refused(tmp_path: Path, request_bytes: bytes) -> None:
    proxy = IndexProxy(
        tmp_path / "p.sock", resolve=lambda host, port: pytest.fail("must not resolve")
    ).start()
    try:
        assert ask(proxy, request_bytes).startswith(b"HTTP/1.1 400 ")
    finally:
        proxy.close()


def test_unix_sockets_and_other_schemes_in_the_configuration_are_not_destinations() -> None:
    allow = AllowList.from_pip(
        "file:///srv/index/simple",
        ["http+unix://%2Frun%2Fdocker.sock/x", "/srv/wheels", "https://mirror.test/s"],
    )
    assert allow.destinations == {("mirror.test", 443)}
    assert allow.explicit == {"mirror.test"}
    assert not allow.permits("pypi.org", 443)  # an index-url replaces the default index


def test_the_default_allow_list_is_pypi_on_443_only() -> None:
    allow = AllowList.from_pip(None, ["file:///srv/index/simple"], ["internal.test:8080", "Other.Test."])
    assert allow.permits("PyPI.org", 443) and allow.permits("files.pythonhosted.org", 443)
    assert not allow.permits("pypi.org", 80) and not allow.permits("pypi.org", 22)
    assert allow.permits("internal.test", 8080) and not allow.permits("internal.test", 443)
    assert allow.permits("other.test", 80) and allow.permits("other.test", 443)
    assert "pypi.org" not in allow.explicit


def test_refused_addresses() -> None:
    for address in ["127.0.0.1", "0.0.0.0", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "fe80::1%eth0", "x"]:
        assert refused_address(address), address
    for address in ["151.101.0.223", "2a04:4e42::223", "203.0.113.80"]:
        assert not refused_address(address), address


def test_connections_beyond_the_limit_are_closed_at_once(tmp_path: Path) -> None:
    proxy = IndexProxy(tmp_path / "p.sock", resolve=lambda host, port: ["127.0.0.1"], max_connections=1)
    proxy.start()
    try:
        with socket.socket(socket.AF_UNIX) as first:
            first.connect(str(proxy.path))
            first.sendall(b"CONNECT pypi.org:443 HTTP/1.1\r\n")  # holds its slot: the head is not complete
            with socket.socket(socket.AF_UNIX) as second:
                second.settimeout(10)
                second.connect(str(proxy.path))
                assert second.recv(100) == b""  # closed without an answer
            first.sendall(b"\r\n")
            first.settimeout(10)
            assert first.recv(100).startswith(b"HTTP/1.1 403 ")  # control: the first one is answered
    finally:
        proxy.close()
    assert proxy.refused[0] == "more than 1 connections at once"
