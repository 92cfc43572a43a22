"""Many recipes at once (-j N): every recipe its own sandbox, reports in a stable order, one crash does not
stop the others, and Ctrl-C stops them all while still writing every transcript."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import wait_for_tree


def make_recipes(folder: Path, count: int, sleep: float = 0.0) -> list[Path]:
    """`count` small recipes that each print their number (after sleeping `sleep` seconds)."""
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"r{i:02d}.yaml"
        code = f"import time, os; began = time.time(); time.sleep({sleep}); ended = time.time()"
        path.write_text(f"cells:\n  - {code}\n  - print({i}, os.getpid(), began, ended)\n")
        paths.append(path)
    return paths


def sandrun(*args: str, backend: str = "process", **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sandrun", "run", "--backend", backend, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


@pytest.mark.parametrize("backend", ["local", "process"])
def test_recipes_run_concurrently_each_in_its_own_interpreter(tmp_path: Path, backend: str) -> None:
    make_recipes(tmp_path / "recipes", 4, sleep=0.5)
    report = tmp_path / "all.json"
    # Without the sandbox started before the command line is read: it would give the first recipe a head
    # start as long as starting a sandbox, longer than the sleep on a busy machine.
    folder, path = str(tmp_path / "recipes"), str(report)
    result = sandrun(folder, "-j", "4", "--report", path, backend=backend, SANDRUN_EARLY="0")
    assert result.returncode == 0, result.stderr
    transcripts = json.loads(report.read_text())
    assert [Path(t["recipe"]["path"]).name for t in transcripts] == [f"r{i:02d}.yaml" for i in range(4)]
    printed = [t["cells"][1]["stdout"].split() for t in transcripts]
    assert [fields[0] for fields in printed] == ["0", "1", "2", "3"]
    if backend == "process":
        assert len({fields[1] for fields in printed}) == 4  # four interpreters
    began, ended = [float(f[2]) for f in printed], [float(f[3]) for f in printed]
    assert max(began) < min(ended)  # all four sleeps were under way at the same moment
    assert "4 recipes: 4 passed" in result.stderr


def test_one_recipe_crashing_does_not_stop_the_others(tmp_path: Path) -> None:
    paths = make_recipes(tmp_path / "recipes", 3)
    paths[1].write_text("cells:\n  - import os; os._exit(9)\n  - print('never')\n")
    report = tmp_path / "all.json"
    result = sandrun(str(tmp_path / "recipes"), "-j", "2", "--report", str(report))
    assert result.returncode == 3, result.stderr
    statuses = [t["status"] for t in json.loads(report.read_text())]
    assert statuses == ["passed", "error", "passed"]


def test_ctrl_c_stops_every_sandbox_and_writes_every_transcript(tmp_path: Path) -> None:
    make_recipes(tmp_path / "recipes", 4, sleep=60)
    report = tmp_path / "all.json"
    command = [sys.executable, "-m", "sandrun", "run", str(tmp_path / "recipes"), "-j", "2"]
    proc = subprocess.Popen([*command, "--report", str(report)], stderr=subprocess.PIPE, text=True)
    wait_for_tree(proc.pid, 8)  # four sandboxes up: two running recipes, two started ahead
    time.sleep(0.5)  # the two running recipes are inside their 60 s sleep by now
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - started < 10
    transcripts = json.loads(report.read_text())
    assert [t["status"] for t in transcripts] == ["interrupted"] * 4
    assert all(cell["status"] in ("error", "not_run") for t in transcripts for cell in t["cells"])
