"""Nothing of the host is left within reach inside: no host file behind any fd of any process (bubblewrap's
stderr used to be a deleted host file, reopened read-write as /proc/1/fd/2 and filled without limit), pid 1
is the sandbox's own reaper and not bubblewrap, no process shows bubblewrap's command line (host paths, the
recipe's variables, the run's token), and /proc/self/mountinfo names no host path but those bound at the
same path.

Controls: on the `process` backend, which isolates nothing, the same probes find a host file the test holds
open and sandrun's own command line; with `--workdir`, the mountinfo check finds the bound host directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.security.sandboxes import StartSandbox, run, value

WRITABLE_FILES = """
import os, stat

def writable_files():
    # Every fd of every visible process, reopened for writing through /proc: the regular files, with their
    # device (device numbers are the same inside and outside the sandbox).
    found = []
    for pid in (name for name in os.listdir("/proc") if name.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                opened = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_APPEND)
            except OSError:
                continue
            info = os.fstat(opened)
            os.close(opened)
            if stat.S_ISREG(info.st_mode):
                found.append((int(pid), int(fd), info.st_dev))
    return found
"""


def host_devices() -> set[int]:
    """Devices of the host's filesystems (the sandbox's own tmpfs are in its mount namespace only)."""
    devices = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        major, minor = line.split()[2].split(":")
        devices.add(os.makedev(int(major), int(minor)))
    return devices


CMDLINES = """
import os

def cmdlines():
    found = {}
    for pid in (name for name in os.listdir("/proc") if name.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[int(pid)] = f.read()
        except OSError:
            pass
    return found
"""


def test_no_host_file_behind_any_fd(sandbox: StartSandbox) -> None:
    with tempfile.TemporaryFile() as held:  # a host file the control must find
        control = value(run(sandbox("process"), WRITABLE_FILES + "writable_files()"))
        assert (os.getpid(), held.fileno(), os.fstat(held.fileno()).st_dev) in control
        found = value(run(sandbox(), WRITABLE_FILES + "writable_files()"))
    host = host_devices()
    assert [(pid, fd) for pid, fd, device in found if device in host] == []


def test_pid_1_is_the_sandboxs_own_reaper(sandbox: StartSandbox) -> None:
    pid_1 = value(
        run(
            sandbox(),
            """
            import os
            status = dict(line.split(":", 1) for line in open("/proc/1/status"))
            mine = dict(line.split(":", 1) for line in open("/proc/self/status"))
            fds = sorted(os.readlink(f"/proc/1/fd/{fd}") for fd in os.listdir("/proc/1/fd"))
            keys = ("Uid", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp")
            same = {key: status[key] == mine[key] for key in keys}
            (os.readlink("/proc/1/exe") == os.path.realpath(os.sys.executable), fds, same, os.getppid())
            """,
        )
    )
    is_python, fds, same, parent = pid_1
    assert is_python  # not bubblewrap
    assert set(fds) == {"/dev/null"}  # it holds nothing of the host
    assert all(same.values()), same  # what pid 1 may do, the cell may do already
    assert parent == 1


def test_no_process_shows_the_host_command_line(sandbox: StartSandbox) -> None:
    control = value(run(sandbox("process"), CMDLINES + "cmdlines()[os.getppid()]"))
    assert b"pytest" in control or b"python" in control  # the probe reads its parent's command line

    session = sandbox(env={"SECRET_OF_THE_RECIPE": "hunter2"})
    seen = value(run(session, CMDLINES + "(cmdlines(), open('/proc/self/environ', 'rb').read())"))
    lines, environ = seen
    variables = dict(item.partition(b"=")[::2] for item in environ.split(b"\0") if item)
    token = variables[b"SANDRUN_SESSION"]
    assert variables[b"SECRET_OF_THE_RECIPE"] == b"hunter2"  # the probe would see these where they are
    everything = b"\n".join(lines.values())
    for leak in (b"bwrap", b"--setenv", b"--ro-bind", b"hunter2", token, STAGING.encode()):
        assert leak not in everything, leak


STAGING = os.path.join(tempfile.gettempdir(), "sandrun-")
"""Where the local backend's staging directories live on the host (`SandboxPlan.staging`)."""

MOUNTS = """
def foreign_mounts():
    # Mounts whose source (field 4, the path inside its filesystem) is not where it is mounted (field 5):
    # a host path that says where sandrun keeps things. Fresh filesystems (tmpfs, proc) show "/", the device
    # nodes /dev/X show their own name, bubblewrap's root and its data files live in its private tmpfs.
    found = []
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        source, point, kind = fields[3], fields[4], fields[fields.index("-") + 1]
        if source in ("/", point) or (kind == "devtmpfs" and point == "/dev" + source):
            continue
        if kind == "tmpfs" and (source == "/newroot" or source.startswith("/bindfile")):
            continue
        found.append((source, point))
    return found
"""


def test_mountinfo_names_no_host_path(sandbox: StartSandbox, tmp_path: Path) -> None:
    control = value(run(sandbox(workdir=tmp_path), MOUNTS + "foreign_mounts()"))
    assert [source for source, _ in control] == [str(tmp_path.resolve())]  # the check sees a foreign bind

    session = sandbox()
    assert value(run(session, MOUNTS + "foreign_mounts()")) == []
    text = value(run(session, "open('/proc/self/mountinfo').read()"))
    assert STAGING not in text  # no staging directory of the host
    assert value(run(session, "open('/etc/passwd').read().split(':')[0]")) == "sandbox"
