"""Promise 7: sandrun run as root does not hand root to the recipe. Sandboxed code runs as an unprivileged,
fresh host uid: it cannot read root-only (or another user's) files in a directory it can see, /etc/shadow is
unreadable, its processes are not uid 0 on the host, and what it leaves in a bound work directory cannot
become a setuid-root program once sandrun gives the directory back to its owner.

The fork bomb of test_resources.py, capped by max_procs, also runs as root in this suite.
Skipped (each with its reason) when the suite does not run as root.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from tests.security.sandboxes import (
    StartSandbox,
    kill_leftovers,
    root_only,
    run,
    status_fields,
    value,
    wait_for_pids,
)

pytestmark = root_only

READ = """
import errno
def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)
"""


def test_root_only_files_in_the_work_dir_stay_unreadable(sandbox: StartSandbox, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    secret = secrets.token_hex(8)
    (workdir / "root-only.txt").write_text(secret)
    (workdir / "root-only.txt").chmod(0o600)
    private = workdir / "private"
    private.mkdir(mode=0o700)
    (private / "inside.txt").write_text(secret)
    (private / "inside.txt").chmod(0o644)
    (workdir / "other-user.txt").write_text(secret)
    (workdir / "other-user.txt").chmod(0o600)
    os.chown(workdir / "other-user.txt", 54321, 54321)
    (workdir / "public.txt").write_text("public")
    (workdir / "public.txt").chmod(0o644)
    result = value(
        run(
            sandbox(workdir=workdir),
            READ + "{n: read(n) for n in ['root-only.txt', 'private/inside.txt', 'other-user.txt', "
            "'public.txt', '/etc/shadow']}",
        )
    )
    assert result.pop("public.txt") == "public"  # control: the directory is the one the test filled
    assert result.pop("/etc/shadow") in ("ENOENT", "EACCES")
    assert result == {"root-only.txt": "EACCES", "private/inside.txt": "EACCES", "other-user.txt": "EACCES"}
    assert (workdir / "root-only.txt").stat().st_uid == 0  # given back untouched


def test_sandbox_processes_are_not_host_root(sandbox: StartSandbox) -> None:
    mark = f"59.{secrets.randbelow(10**12):012d}"
    needle = f"sleep\0{mark}\0".encode()
    try:
        session = sandbox()
        outcome = run(session, f"import subprocess\nchild = subprocess.Popen(['sleep', {mark!r}])")
        assert outcome.status == "ok", outcome.error
        pids = wait_for_pids(needle, 1, 5.0)
        assert len(pids) == 1, "control: the host must find the process the cell started"
        fields = status_fields(Path(f"/proc/{pids[0]}/status").read_text())
        uids = [int(u) for u in fields["Uid"].split()]
        gids = [int(g) for g in fields["Gid"].split()]
        assert 0 not in uids and 0 not in gids, (uids, gids)
        assert len(set(uids)) == 1 and uids[0] != os.geteuid()
        assert fields["Groups"] == "", "supplementary groups (root's own) must be dropped"
        assert int(fields["CapEff"], 16) == 0
        assert fields["NoNewPrivs"] == "1"
        # The driver (the cell's parent) is the same unprivileged uid.
        parent = status_fields(Path(f"/proc/{fields['PPid']}/status").read_text())
        assert parent["Uid"] == fields["Uid"]
    finally:
        kill_leftovers(needle)


def test_setuid_files_left_in_the_work_dir_do_not_become_setuid_root(
    sandbox: StartSandbox, tmp_path: Path
) -> None:
    """A bound work directory is lent to the sandbox's uid and given back: a planted setuid program must not
    come back owned by root with its setuid bit."""
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o755)
    session = sandbox(workdir=workdir)
    planted = run(
        session,
        """
        import os
        with open("planted", "w") as f:
            f.write("#!/bin/sh\\nid\\n")
        os.chmod("planted", 0o6755)
        os.mkdir("sub")
        with open("sub/also", "w") as f:
            f.write("x")
        os.chmod("sub/also", 0o4755)
        oct(os.stat("planted").st_mode & 0o7777)
        """,
    )
    assert value(planted) == "0o6755"  # control: the bits were set while the sandbox owned the file
    session.close()
    for path in (workdir / "planted", workdir / "sub" / "also"):
        info = path.lstat()
        privileged = info.st_uid == 0 or info.st_gid == 0
        assert not (privileged and info.st_mode & (stat.S_ISUID | stat.S_ISGID)), (path, oct(info.st_mode))
    assert workdir.stat().st_uid == 0  # the directory was given back to its owner
