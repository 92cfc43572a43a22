"""`--memory` bounds what a recipe can pin, in total, not only each process's address space. `RLIMIT_AS` does
not count memory behind a fd (`memfd_create` and writes) or SysV shared memory that is no longer attached:
both pinned several times the limit. Where the host offers a memory cgroup (v1 as root, v2 delegated), the
sandbox runs in one limited to `--memory` and the kernel kills it at the limit; where it does not, those
syscalls are refused (EPERM) by the seccomp filter.

Controls: on the `process` backend, which limits nothing, the same cells pin three times the limit; under a
cgroup with a larger limit the same cell succeeds, so it is the limit that stopped it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandrun.backends import memory_cgroup
from sandrun.backends.base import Limits, SandboxOptions
from sandrun.backends.local import LocalBackend
from sandrun.session import CellOutcome, Session
from tests.security.sandboxes import StartSandbox, local_unavailable, run, value

MiB = 1 << 20
LIMIT = 128 * MiB
"""Small, so that the attacks stay cheap: each tries to pin three times this."""

MEMFD = f"""
import errno, os
written, refused = 0, None
block = b"m" * (1 << 20)
try:
    fd = os.memfd_create("pin")
    for _ in range({3 * LIMIT // MiB}):
        written += os.write(fd, block)
except OSError as e:
    refused = errno.errorcode[e.errno]
(written >> 20, refused)
"""

SYSV_SHM = f"""
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
IPC_PRIVATE, IPC_CREAT, IPC_RMID, size = 0, 0o1000, 0, {LIMIT // 4}
segments, pinned, refused = [], 0, None
try:
    for _ in range(12):  # small segments: each fits in the address space while it is attached
        shm = libc.shmget(IPC_PRIVATE, size, IPC_CREAT | 0o600)
        if shm == -1:
            refused = errno.errorcode[ctypes.get_errno()]
            break
        segments.append(shm)
        address = libc.shmat(shm, None, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            refused = errno.errorcode[ctypes.get_errno()]
            break
        ctypes.memset(address, 1, size)  # every page now exists
        libc.shmdt(address)  # detached: no address space holds it any more, the segment stays
        pinned += size
finally:
    for shm in segments:  # the control runs on the host: leave nothing behind
        libc.shmctl(shm, IPC_RMID, None)
(pinned >> 20, refused)
"""

NO_CGROUP = "no memory cgroup can be created here (cgroup v1 needs root, v2 a delegated subtree)"


@pytest.fixture
def without_cgroup() -> Iterator[Session]:
    """A local sandbox told not to use a memory cgroup (SANDRUN_MEMORY_CGROUP=0), whoever runs the tests."""
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")
    backend = LocalBackend({"SANDRUN_MEMORY_CGROUP": "0"})
    session = Session.start(backend, SandboxOptions(limits=Limits(memory=LIMIT)))
    yield session
    session.close()


def bounded(outcome: CellOutcome) -> None:
    """The cell pinned at most the limit: it was refused, or killed on the way."""
    if outcome.status == "crashed":
        assert outcome.error is not None and "SIGKILL" in outcome.error.message, outcome.error
        return
    pinned, refused = value(outcome)
    assert pinned * MiB <= LIMIT and refused is not None, (pinned, refused)


@pytest.mark.parametrize("attack", [MEMFD, SYSV_SHM], ids=["memfd", "sysv_shm"])
def test_memory_behind_fds_and_ipc_is_bounded(sandbox: StartSandbox, attack: str) -> None:
    control = value(run(sandbox("process"), attack, timeout=30))
    assert control == (3 * LIMIT // MiB, None)  # where nothing defends, three times the limit is pinned

    outcome = run(sandbox(limits=Limits(memory=LIMIT)), attack, timeout=30)
    bounded(outcome)
    if memory_cgroup.usable_parent() is not None:
        assert outcome.status == "crashed"  # the cgroup's limit: the kernel killed the sandbox
    else:
        assert value(outcome) == (0, "EPERM")  # refused up front


@pytest.mark.parametrize("attack", [MEMFD, SYSV_SHM], ids=["memfd", "sysv_shm"])
def test_without_a_cgroup_what_it_would_count_is_refused(without_cgroup: Session, attack: str) -> None:
    assert value(run(without_cgroup, attack, timeout=30)) == (0, "EPERM")
    assert value(run(without_cgroup, "len(bytearray(16 << 20))")) == 16 << 20  # plain memory still works


@pytest.mark.skipif(memory_cgroup.usable_parent() is None, reason=NO_CGROUP)
def test_the_cgroup_limit_is_what_stops_it(sandbox: StartSandbox) -> None:
    roomy = sandbox(limits=Limits(memory=4 * LIMIT))
    assert value(run(roomy, MEMFD, timeout=30)) == (3 * LIMIT // MiB, None)  # control: a larger limit
    roomy.close()

    parent = memory_cgroup.usable_parent()
    assert parent is not None
    session = sandbox(limits=Limits(memory=LIMIT))
    plan = session.channel.plan  # type: ignore[attr-defined]
    assert plan.cgroup is not None, "the sandbox runs in a cgroup of its own"
    own = {plan.cgroup.path}  # (other tests' sandboxes may have cgroups beside it at the same time)
    assert own <= set(parent.path.glob("sandrun-*"))
    pid = session.channel.proc.pid  # type: ignore[attr-defined]
    assert f"/{plan.cgroup.path.name}\n" in Path(f"/proc/{pid}/cgroup").read_text()  # and is in it
    killed = run(session, MEMFD, timeout=30)
    assert killed.status == "crashed"
    assert killed.error is not None and "memory limit (--memory)" in killed.error.message  # it says why
    session.close()
    assert not own & set(parent.path.glob("sandrun-*"))  # removed with the sandbox
