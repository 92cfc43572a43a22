"""Attack: one recipe leaves a file in its /tmp and a process running, for the next recipe of the same run
to find. Sandboxes are started ahead of their recipes (while the previous one runs), and each is only ever
given to the recipe it was started for: the next recipe sees neither. Control: within one recipe (one
sandbox), the same check sees both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.security.sandboxes import sandrun_cli

LEAVE = """\
import pathlib, subprocess, sys, time
pathlib.Path("/tmp/left-by-an-earlier-recipe").write_text("x")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "left-behind-needle"])
while b"left-behind-needle" not in pathlib.Path(f"/proc/{child.pid}/cmdline").read_bytes():
    time.sleep(0.001)  # Popen returns before the kernel shows the new command line
"""
LOOK = """\
import os, pathlib
def running():
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                if b"left-behind-needle" in file.read():
                    return True
        except OSError:
            pass
    return False
print(pathlib.Path("/tmp/left-by-an-earlier-recipe").exists(), running())
"""


def block(code: str) -> str:
    return "  - |\n" + "".join(f"    {line}\n" for line in code.splitlines())


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_recipe_never_sees_what_an_earlier_recipe_left_behind(tmp_path: Path, jobs: str) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "a_leave.yaml").write_text("cells:\n" + block(LEAVE) + block(LOOK))
    for name in ("b_look", "c_look", "d_look"):
        (folder / f"{name}.yaml").write_text("cells:\n" + block("import time; time.sleep(0.3)") + block(LOOK))
    report = tmp_path / "all.json"
    result = sandrun_cli(folder, "-j", jobs, "--report", report, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    transcripts = json.loads(report.read_text())
    seen = [t["cells"][-1]["stdout"].strip() for t in transcripts]
    assert seen[0] == "True True"  # control: in its own sandbox, the check finds the file and the process
    assert seen[1:] == ["False False"] * 3
