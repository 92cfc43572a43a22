"""Promise 4: privileges. A cell has no capabilities, `no_new_privs` and a seccomp filter; it cannot create
namespaces, trace, mount, use the keyring, eBPF or perf, open a network socket with the network off, become
root, or reach a terminal (no TIOCSTI games: the sandbox has no controlling terminal).

Each attack runs in a forked child, so a success cannot change the driver. The control runs the harmless
probes in the `process` backend (no isolation), where they succeed or fail differently.
"""

from __future__ import annotations

import errno
import json
import platform
from pathlib import Path

import pytest

from sandrun.backends import seccomp
from tests.security.sandboxes import StartSandbox, run, status_fields, value

pytestmark = pytest.mark.skipif(
    platform.machine() not in seccomp.ARCHES, reason=f"no syscall table for {platform.machine()}"
)

PROBES = """
import ctypes, errno, json, os, socket

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = json.loads(NUMBERS)

def call(fn, *args):
    if fn(*args) == -1:
        raise OSError(ctypes.get_errno(), "")

def sys_(name, *args):
    return lambda: call(libc.syscall, ctypes.c_long(NR[name]), *args)

def clone(flags):
    pid = libc.syscall(ctypes.c_long(NR["clone"]), ctypes.c_long(flags | 17), None, None, None, None)
    if pid == 0:
        os._exit(0)
    if pid < 0:
        raise OSError(ctypes.get_errno(), "")
    os.waitpid(pid, 0)

def sock(family, kind=socket.SOCK_STREAM):
    return lambda: socket.socket(family, kind).close()

def tty():
    os.close(os.open("/dev/tty", os.O_RDWR))

ATTACKS = {
    "unshare_user": lambda: call(libc.unshare, 0x10000000),
    "unshare_mount": lambda: call(libc.unshare, 0x00020000),
    "unshare_net": lambda: call(libc.unshare, 0x40000000),
    "clone_newuser": lambda: clone(0x10000000),
    "ptrace_traceme": lambda: call(libc.ptrace, 0, 0, None, None),
    "ptrace_attach_parent": lambda: call(libc.ptrace, 16, os.getppid(), None, None),
    "mount_tmpfs": lambda: call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
    "chroot": lambda: call(libc.chroot, b"/tmp"),
    "keyctl": sys_("keyctl", 0, -3, 0),
    "add_key": sys_("add_key", b"user", b"sandrun", b"x", 1, -3),
    "bpf": sys_("bpf", 0, None, 0),
    "perf_event_open": sys_("perf_event_open", None, 0, -1, -1, 0),
    "io_uring_setup": sys_("io_uring_setup", 1, None),
    "setuid_root": lambda: call(libc.setuid, 0),
    "socket_inet": sock(socket.AF_INET),
    "socket_inet6": sock(socket.AF_INET6),
    "socket_packet": sock(socket.AF_PACKET, socket.SOCK_RAW),
    "controlling_tty": tty,
}
SAFE = ONLY  # None: every attack; else the names the control may run

def attempt(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
        except BaseException:
            os._exit(255)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

{name: errno.errorcode.get(code, code) for name, fn in ATTACKS.items()
 if SAFE is None or name in SAFE for code in [attempt(fn)]}
"""

REFUSED = {
    **dict.fromkeys(
        [
            "unshare_user",
            "unshare_mount",
            "unshare_net",
            "clone_newuser",
            "ptrace_traceme",
            "ptrace_attach_parent",
            "mount_tmpfs",
            "chroot",
            "keyctl",
            "add_key",
            "bpf",
            "perf_event_open",
            "io_uring_setup",
        ],
        frozenset({"EPERM"}),
    ),
    "setuid_root": frozenset(
        {"EPERM", "EINVAL"}
    ),  # EINVAL: uid 0 does not even exist in the sandbox's user namespace
    **dict.fromkeys(["socket_inet", "socket_inet6", "socket_packet"], frozenset({"EAFNOSUPPORT"})),
    "controlling_tty": frozenset({"ENXIO"}),
}
"""Each attack and the errors that mean it was refused."""


def refusals(results: dict[str, object], skip: tuple[str, ...] = ()) -> dict[str, object]:
    """The attacks that were not refused as they should be, with what happened instead."""
    assert set(results) == set(REFUSED)
    return {name: got for name, got in results.items() if name not in skip and got not in REFUSED[name]}


CONTROL = ("socket_inet", "socket_inet6")
"""Probes harmless to run with no isolation at all, and whose result does not depend on a container runtime's
own seccomp profile (never mount, unshare, ptrace or setuid on the host)."""


def probes(only: tuple[str, ...] | None) -> str:
    col = list(seccomp.ARCHES).index(seccomp.normalize_arch())
    numbers = {n: v[col] for n, v in {**seccomp.SPECIAL_SYSCALLS, **seccomp.DENIED_SYSCALLS}.items()}
    return PROBES.replace("NUMBERS", repr(json.dumps(numbers))).replace("ONLY", repr(only))


def test_no_capabilities_no_new_privs_seccomp(sandbox: StartSandbox) -> None:
    probe = "open('/proc/self/status').read()"
    fields = status_fields(value(run(sandbox(), probe)))
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[cap], 16) == 0, (cap, fields[cap])
    assert fields["NoNewPrivs"] == "1"
    assert fields["Seccomp"] == "2"  # filter mode
    # Control: sandrun's own process (which may already sit under a container's filter) has one filter less.
    host = status_fields(Path("/proc/self/status").read_text())
    if "Seccomp_filters" in host:  # Linux 5.9 and later
        assert int(fields["Seccomp_filters"]) > int(host["Seccomp_filters"])


def test_privileged_syscalls_are_refused(sandbox: StartSandbox) -> None:
    results = value(run(sandbox(), probes(None), timeout=20))
    assert refusals(results) == {}


def test_control_same_probes_without_isolation(sandbox: StartSandbox) -> None:
    results = value(run(sandbox(backend="process"), probes(CONTROL), timeout=20))
    assert results["socket_inet"] == 0
    assert results["socket_inet6"] in (0, errno.errorcode[errno.EAFNOSUPPORT])  # a host without IPv6


def test_network_on_allows_inet_sockets_only(sandbox: StartSandbox) -> None:
    """With network=True the filter lets AF_INET through, and everything else stays refused."""
    results = value(run(sandbox(network=True), probes(None), timeout=20))
    assert results["socket_inet"] == 0
    assert refusals(results, skip=("socket_inet", "socket_inet6", "socket_packet")) == {}
    assert results["socket_packet"] != 0  # a raw packet socket needs CAP_NET_RAW, which the sandbox lacks
