"""An allow-listing HTTP proxy on a unix socket: a package build's only way out of its sandbox.

pip, inside a sandbox with no host network, is given `--proxy`; a relay in the sandbox carries its
connections to this proxy's unix socket (bound into the sandbox). The proxy then opens, on the host, only
connections to the package indexes that the user's pip configuration names (by default pypi.org and
files.pythonhosted.org on port 443), and only to addresses that are not the host's own or its private
network's (loopback, link-local and cloud metadata, private ranges, multicast) unless the user's
configuration names that host itself. The address checked is the one connected to: the name is resolved
once, here, so a name that resolves differently the second time (DNS rebinding) gains nothing.

Two kinds of requests are served: `CONNECT host:port` (https, the usual case; the TLS session is relayed
untouched, so pip still checks the certificate) and `GET http://host/...` (plain http indexes, sent on as
one request with `Connection: close`). Anything else is refused with an HTTP error pip shows in its message.
Standard library only; one thread per connection.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_INDEX_HOSTS = (("pypi.org", 443), ("files.pythonhosted.org", 443))
"""Where pip goes when its configuration names no `index-url`."""
REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)
"""Addresses never connected to for a host the user's configuration does not name: this machine, its
private networks, link-local (cloud metadata: 169.254.169.254, fd00:ec2::254), multicast and reserved.
Documentation ranges (TEST-NET) are not refused: some mirrors and test setups answer there."""
MAX_HEAD = 16 * 1024
"""Bytes a request's line and headers may take."""
IDLE = 300.0
"""Seconds a relayed connection may stay silent in both directions before it is closed."""
MAX_CONNECTIONS = 64
"""Connections served at once (a thread each): more are closed at once, so a build cannot exhaust the host."""

Resolver = Callable[[str, int], list[str]]
"""host, port -> IP addresses (as text) to try, in order."""


def system_resolver(host: str, port: int) -> list[str]:
    """The host's own resolver (getaddrinfo), addresses in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refused_address(address: str) -> bool:
    """True for an address a non-explicit host may not be reached at (also IPv4 behind IPv6 forms)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            if ip in ipaddress.ip_network("64:ff9b::/96")
            else None
        )
        if embedded is not None:
            ip = embedded
    return any(ip in net for net in REFUSED_NETWORKS if net.version == ip.version)


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, no brackets around an IPv6 literal."""
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class AllowList:
    """Which host:port pairs the proxy connects to, and which hosts may be at any address."""

    destinations: frozenset[tuple[str, int]] = frozenset(DEFAULT_INDEX_HOSTS)
    explicit: frozenset[str] = frozenset()
    """Hosts the user's configuration names: reached even at a private or loopback address."""

    @classmethod
    def from_pip(
        cls, index_url: str | None, urls: Iterable[str] = (), trusted_hosts: Iterable[str] = ()
    ) -> AllowList:
        """From pip's settings: `index-url` (None: the default index), other index and find-links URLs
        (non-http ones are ignored), and `trusted-host` entries (`host` means ports 80 and 443)."""
        pairs: set[tuple[str, int]] = set() if index_url else set(DEFAULT_INDEX_HOSTS)
        explicit: set[str] = set()
        for url in [*([index_url] if index_url else []), *urls]:
            parts = urlsplit(url.strip())
            if parts.scheme in ("http", "https") and parts.hostname:
                with contextlib.suppress(ValueError):
                    port = parts.port or (443 if parts.scheme == "https" else 80)
                    pairs.add((normalize_host(parts.hostname), port))
                    explicit.add(normalize_host(parts.hostname))
        for entry in trusted_hosts:
            parts = urlsplit(f"//{entry.strip()}")
            if parts.hostname:
                with contextlib.suppress(ValueError):
                    ports = [parts.port] if parts.port else [80, 443]
                    pairs.update((normalize_host(parts.hostname), port) for port in ports)
                    explicit.add(normalize_host(parts.hostname))
        return cls(frozenset(pairs), frozenset(explicit))

    def permits(self, host: str, port: int) -> bool:
        """True if `host:port` is an allowed destination (before looking at its addresses)."""
        return (normalize_host(host), port) in self.destinations

    def addresses(self, host: str, port: int, resolve: Resolver) -> list[str]:
        """The addresses of an allowed `host` that may be connected to (all of them for an explicit host)."""
        found = resolve(normalize_host(host), port)
        if normalize_host(host) in self.explicit:
            return found
        return [address for address in found if not refused_address(address)]


class Refused(Exception):
    """A request the proxy does not serve: the HTTP status and a sentence for pip's error message."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class IndexProxy:
    """The proxy, listening on `path` (a unix socket) in a thread of its own until `close`."""

    path: Path
    allow: AllowList = field(default_factory=AllowList)
    resolve: Resolver = system_resolver
    connect_timeout: float = 30.0
    max_connections: int = MAX_CONNECTIONS
    refused: list[str] = field(default_factory=list)
    """What was refused, one line each (to explain a failed build)."""

    def __post_init__(self) -> None:
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def start(self) -> IndexProxy:
        """Listen (socket mode 0666: the sandbox may run as another uid) and serve in a daemon thread."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        self.path.chmod(0o666)
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="sandrun-index-proxy", daemon=True).start()
        return self

    def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.path.unlink()

    def __enter__(self) -> IndexProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while (listener := self._listener) is not None:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                self.refused.append(f"more than {self.max_connections} connections at once")
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._open.add if add else self._open.discard)(sock)

    def _serve(self, client: socket.socket) -> None:
        self._track(client, True)
        upstream: socket.socket | None = None
        try:
            client.settimeout(self.connect_timeout)
            head, rest = read_head(client)
            upstream, first = self._open_upstream(head)
            self._track(upstream, True)
            if first is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = b""
            upstream.sendall(first + rest)
            relay(client, upstream)
        except Refused as exc:
            self.refused.append(str(exc))
            body = f"sandrun: {exc}\n".encode()
            with contextlib.suppress(OSError):
                client.sendall(
                    f"HTTP/1.1 {exc.status} {STATUS_TEXT[exc.status]}\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._track(sock, False)
                    sock.close()
            self._slots.release()

    def _open_upstream(self, head: bytes) -> tuple[socket.socket, bytes | None]:
        """Connect to what `head` asks for; also the request to send on (None for CONNECT)."""
        try:
            line, *headers = head.decode("latin-1").split("\r\n")
            method, target, version = line.split(" ")
        except ValueError:
            raise Refused(400, "not an HTTP proxy request") from None
        if not version.startswith("HTTP/1."):
            raise Refused(400, f"unsupported protocol {version[:20]!r}")
        if method == "CONNECT":
            host, port = split_authority(target)
            return self._connect(host, port), None
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise Refused(
                400, f"{method} needs an absolute http:// URL through a proxy (got {target[:80]!r})"
            )
        try:
            port = parts.port or 80
        except ValueError:
            raise Refused(400, f"bad port in {target[:80]!r}") from None
        path = parts.path or "/"
        kept = [h for h in headers if h and h.split(":")[0].strip().lower() not in HOP_HEADERS]
        request = "\r\n".join([f"{method} {path}{'?' + parts.query if parts.query else ''} {version}", *kept])
        return self._connect(parts.hostname, port), f"{request}\r\nConnection: close\r\n\r\n".encode(
            "latin-1"
        )

    def _connect(self, host: str, port: int) -> socket.socket:
        if not self.allow.permits(host, port):
            raise Refused(403, f"{host}:{port} is not a package index named by pip's configuration")
        try:
            addresses = self.allow.addresses(host, port, self.resolve)
        except OSError as exc:
            raise Refused(502, f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise Refused(403, f"{host} resolves only to local or private addresses, which are refused")
        error: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((address, port), timeout=self.connect_timeout)
            except OSError as exc:
                error = exc
        raise Refused(502, f"cannot connect to {host}:{port}: {error}")


STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}
HOP_HEADERS = {"connection", "proxy-connection", "proxy-authorization", "keep-alive"}


def split_authority(target: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` from a CONNECT line; Refused(400) when it is not one."""
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Refused(400, f"CONNECT needs host:port (got {target[:80]!r})")
    if host.startswith("["):
        host = host.strip("[]")
    elif ":" in host:
        raise Refused(400, f"an IPv6 address in CONNECT needs brackets (got {target[:80]!r})")
    return host, int(port)


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The request line and headers (without the blank line), and whatever came after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise Refused(400, "request headers too long")
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("closed before the request was complete")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides have finished sending (or `IDLE` seconds of silence)."""
    a.setblocking(True)
    b.setblocking(True)
    peer = {a: b, b: a}
    open_ends = {a, b}
    while open_ends:
        ready, _, _ = select.select(list(open_ends), [], [], IDLE)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(65536)
            if data:
                peer[sock].sendall(data)
            else:
                open_ends.discard(sock)
                with contextlib.suppress(OSError):
                    peer[sock].shutdown(socket.SHUT_WR)
