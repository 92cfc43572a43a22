"""Faults around a run, injected for real: reports onto a read-only or full disk or a directory, signals while
the reports are written, Ctrl-C while the command line is imported, a closed stdout.

Each runs `sandrun` as a real process (`python -m sandrun`, on the process backend) and checks the promise:
every report that can be written is written, each one that cannot is named with its reason, the exit code
says what happened (3: a report could not be written; 130: interrupted), no temporary file is left behind,
and no Python traceback is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

IS_ROOT = os.geteuid() == 0
PASSING = "name: fine\ncells:\n  - print('hi')\n"


def sandrun(*args: str | Path, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`sandrun ARGS` as a process (after running `prelude` in it, to inject a fault)."""
    script = prelude + "\nfrom sandrun.__main__ import main\nmain()\n"
    argv = [sys.executable, "-c", script, *map(str, args)]
    env = {**os.environ, "SANDRUN_BACKEND": "process", "GITHUB_ACTIONS": "", "SANDRUN_DEBUG": ""}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr


def leftovers(*folders: Path) -> list[str]:
    """Temporary files of the atomic writer left in `folders`."""
    return [p.name for folder in folders for p in folder.iterdir() if p.name.endswith(".tmp")]


def mount_tmpfs(target: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True)


@pytest.fixture
def broken_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, str]]:
    """A directory no report can be written into, and the reason sandrun must give.

    `readonly`: a read-only tmpfs as root, a directory without write permission as a user. `full`: a tiny
    tmpfs filled to the last byte (root only: mounting needs it).
    """
    kind = request.param
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "readonly" and not IS_ROOT:
        folder.chmod(0o555)
        yield folder, "permission denied"
        folder.chmod(0o755)
        return
    if not IS_ROOT:
        pytest.skip("a full disk is made with a small tmpfs, which only root can mount")
    mount_tmpfs(folder, "size=16k,ro" if kind == "readonly" else "size=16k")
    try:
        if kind == "full":
            with open(folder / "filler", "wb", buffering=0) as filler:
                try:
                    while True:
                        filler.write(b"x" * 4096)
                except OSError:
                    pass
        yield folder, "read-only file system" if kind == "readonly" else "no space left on device"
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("broken_dir", ["readonly", "full"], indirect=True)
def test_a_report_that_cannot_be_written_costs_only_itself(
    tmp_path: Path, broken_dir: tuple[Path, str]
) -> None:
    folder, reason = broken_dir
    (tmp_path / "fine.yaml").write_text(PASSING)
    result = sandrun(
        "run", "fine.yaml", "-q", "--report", folder / "out.json", "--report", "good.md",
        "--report", "good.xml", "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert f"sandrun: error: cannot write {folder / 'out.json'}: {reason}" in result.stderr
    no_traceback(result)
    assert json.loads(result.stdout)["status"] == "passed"  # the --format output was still written
    assert "fine" in (tmp_path / "good.md").read_text()
    assert "<testsuite" in (tmp_path / "good.xml").read_text()
    assert not (folder / "out.json").exists()
    assert leftovers(tmp_path) == []


def test_a_report_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "fine.yaml").write_text(PASSING)
    (tmp_path / "out.json").mkdir()
    result = sandrun("run", "fine.yaml", "-q", "--report", "out.json", "--report", "good.json", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "sandrun: error: cannot write out.json: it is a directory" in result.stderr
    no_traceback(result)
    assert json.loads((tmp_path / "good.json").read_text())["status"] == "passed"
    assert leftovers(tmp_path) == []


def test_failed_cells_and_a_failed_report_exit_3(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("cells:\n  - 1 / 0\n")
    (tmp_path / "out.json").mkdir()
    result = sandrun("run", "bad.yaml", "-q", "--report", "out.json", cwd=tmp_path)
    assert result.returncode == 3, result.stderr  # more severe than "a cell failed" (1)
    assert "sandrun: error: cannot write out.json: it is a directory" in result.stderr
    assert "internal error" not in result.stderr  # (the cell's own traceback is shown, as it should be)


@pytest.mark.parametrize("broken_dir", ["full"], indirect=True)
def test_report_output_onto_a_full_disk(tmp_path: Path, broken_dir: tuple[Path, str]) -> None:
    folder, reason = broken_dir
    (tmp_path / "fine.yaml").write_text(PASSING)
    saved = sandrun("run", "fine.yaml", "-q", "--report", "saved.json", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    result = sandrun("report", "saved.json", "--output", folder / "page.md", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"sandrun: error: cannot write {folder / 'page.md'}: {reason}" in result.stderr
    no_traceback(result)


@pytest.mark.skipif(not IS_ROOT, reason="remounting a tmpfs read-only needs root")
def test_update_onto_a_read_only_disk(tmp_path: Path) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    mount_tmpfs(folder, "size=64k")
    try:
        (folder / "drift.yaml").write_text("cells:\n  - code: print(42)\n    expect:\n      stdout: '41'\n")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        result = sandrun("run", folder / "drift.yaml", "--update", "--report", "out.json", cwd=tmp_path)
        assert result.returncode == 3, result.stderr
        assert "not updated: cannot write it: read-only file system" in result.stderr
        no_traceback(result)
        assert json.loads((tmp_path / "out.json").read_text())["status"] == "failed"
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


SIGNAL_WHILE_WRITING = """
import os, signal
_fsync, _sent = os.fsync, []
def fsync(fd):  # the atomic writer's last step before the rename: a report is half written
    if len(_sent) < {count}:
        _sent.append(1)
        os.kill(os.getpid(), signal.{name})
    return _fsync(fd)
os.fsync = fsync
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_while_reports_are_written_waits_for_them(tmp_path: Path, name: str) -> None:
    (tmp_path / "fine.yaml").write_text(PASSING)
    prelude = SIGNAL_WHILE_WRITING.format(count=1, name=name)
    result = sandrun(
        "run", "fine.yaml", "-q", "--report", "a.json", "--report", "b.md", cwd=tmp_path, prelude=prelude
    )
    assert result.returncode == 130, (result.returncode, result.stderr)
    assert "finishing the reports" in result.stderr
    no_traceback(result)
    assert json.loads((tmp_path / "a.json").read_text())["status"] == "passed"
    assert "fine" in (tmp_path / "b.md").read_text()
    assert leftovers(tmp_path) == []


def test_a_second_ctrl_c_aborts_the_reports_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "fine.yaml").write_text(PASSING)
    prelude = SIGNAL_WHILE_WRITING.format(count=2, name="SIGINT")
    result = sandrun(
        "run", "fine.yaml", "-q", "--report", "a.json", "--report", "b.md", cwd=tmp_path, prelude=prelude
    )
    assert result.returncode == 130, (result.returncode, result.stderr)
    no_traceback(result)
    assert (tmp_path / "a.json").exists()  # written before the second Ctrl-C
    assert not (tmp_path / "b.md").exists()  # the one being written when it came
    assert leftovers(tmp_path) == []


def test_ctrl_c_while_the_command_line_is_imported_exits_quietly(tmp_path: Path) -> None:
    """The signal lands exactly while the entry point imports typer (a hook on the import system)."""
    (entry,) = metadata.entry_points(group="console_scripts", name="sandrun")
    script = textwrap.dedent(f"""
        import os, signal, sys
        class CtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == "typer":
                    os.kill(os.getpid(), signal.SIGINT)
                return None
        sys.meta_path.insert(0, CtrlC())
        sys.argv = ["sandrun", "--version"]
        from {entry.module} import {entry.attr}
        {entry.attr}()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130, (result.returncode, result.stderr)
    assert result.stderr == ""


@pytest.mark.parametrize("command", [["backends"], ["cells", "long.yaml"]])
def test_a_closed_stdout_ends_output_quietly(tmp_path: Path, command: list[str]) -> None:
    """`sandrun backends | head -1`: the reader has gone; sandrun stops writing, with no error and exit 0."""
    (tmp_path / "long.yaml").write_text("cells:\n" + "".join(f"  - x = {i}\n" for i in range(2000)))
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    script = "from sandrun.__main__ import main\nmain()\n"
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, *command], cwd=tmp_path, stdout=write, stderr=subprocess.PIPE,
            text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_closed_stdout_does_not_cost_the_reports(tmp_path: Path) -> None:
    (tmp_path / "fine.yaml").write_text(PASSING)
    read, write = os.pipe()
    os.close(read)
    script = "from sandrun.__main__ import main\nmain()\n"
    argv = [sys.executable, "-c", script, "run", "fine.yaml", "-q", "--format", "json", "--report", "a.md"]
    env = {**os.environ, "SANDRUN_BACKEND": "process"}
    try:
        result = subprocess.run(
            argv, cwd=tmp_path, env=env, stdout=write, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "error" not in result.stderr
    assert "fine" in (tmp_path / "a.md").read_text()
