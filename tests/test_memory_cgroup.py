"""Where a memory cgroup is looked for, on cgroup v1 and v2 trees built in a temporary directory.

The real thing is attacked in tests/security/test_memory.py wherever the machine offers a cgroup; these
cover the choice of parent on the layouts a test machine may not have (a delegated v2 subtree).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandrun.backends.memory_cgroup import Parent, find_parent


def mountinfo(point: Path, fstype: str, options: str) -> str:
    return f"35 31 0:32 / {point} rw,relatime - {fstype} {fstype} {options}"


def cgroup_dir(path: Path, subtree: str = "") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cgroup.procs").write_text("")
    (path / "cgroup.subtree_control").write_text(subtree)
    return path


def test_v2_uses_the_parent_of_its_own_cgroup_when_memory_is_delegated(tmp_path: Path) -> None:
    apps = cgroup_dir(tmp_path / "user.slice/app.slice", "cpu memory pids\n")
    cgroup_dir(apps / "run.scope")
    own = ["0::/user.slice/app.slice/run.scope"]
    assert find_parent(own, [mountinfo(tmp_path, "cgroup2", "rw")]) == Parent(apps, 2)


def test_v2_without_memory_in_the_parent_is_not_usable(tmp_path: Path) -> None:
    cgroup_dir(tmp_path / "user.slice/app.slice", "cpu pids\n")
    own = ["0::/user.slice/app.slice/run.scope"]
    assert find_parent(own, [mountinfo(tmp_path, "cgroup2", "rw")]) is None


def test_v2_in_the_root_cgroup_uses_the_root(tmp_path: Path) -> None:
    cgroup_dir(tmp_path, "memory\n")
    assert find_parent(["0::/"], [mountinfo(tmp_path, "cgroup2", "rw")]) == Parent(tmp_path, 2)


def test_v1_uses_its_own_memory_cgroup(tmp_path: Path) -> None:
    own_dir = cgroup_dir(tmp_path / "memory/jobs/42")
    own = ["9:name=systemd:/", "4:memory:/jobs/42", "0::/"]
    mounts = [
        mountinfo(tmp_path / "unified", "cgroup2", "rw"),
        mountinfo(tmp_path / "memory", "cgroup", "rw,memory"),
    ]
    assert find_parent(own, mounts) == Parent(own_dir, 1)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: a read-only tree proves nothing")
def test_v1_not_writable_is_not_usable(tmp_path: Path) -> None:
    own_dir = cgroup_dir(tmp_path / "memory/jobs/42")
    own_dir.chmod(0o555)
    try:
        own = ["4:memory:/jobs/42"]
        assert find_parent(own, [mountinfo(tmp_path / "memory", "cgroup", "rw,memory")]) is None
    finally:
        own_dir.chmod(0o755)


def test_the_command_enters_the_cgroup_before_it_execs(tmp_path: Path) -> None:
    import subprocess

    from sandrun.backends.memory_cgroup import enter_command

    procs = tmp_path / "cgroup.procs"  # a plain file stands in: the pid written must be the exec'd one
    argv = enter_command(str(procs), ["/bin/sh", "-c", "echo $$"])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert procs.read_text().strip() == out.strip()


def test_old_empty_sandbox_cgroups_are_swept_and_nothing_else(tmp_path: Path) -> None:
    from sandrun.backends.memory_cgroup import sweep_stale

    for name in ("sandrun-old", "sandrun-new", "sandrun-busy", "someone-elses"):
        (tmp_path / name).mkdir()
    (tmp_path / "sandrun-busy" / "task").write_text("")  # stands in for a cgroup with processes
    for name in ("sandrun-old", "sandrun-busy", "someone-elses"):
        os.utime(tmp_path / name, (0, 0))
    sweep_stale(tmp_path, older_than=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sandrun-busy", "sandrun-new", "someone-elses"]
