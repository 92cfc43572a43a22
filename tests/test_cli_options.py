"""Command-line options reach the sandbox and win over the recipe where the README says they do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOCKET = "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\nprint('socket ok')"


def run(recipe: Path, *args: str) -> tuple[int, dict]:
    """`sandrun run RECIPE --format json ARGS...` on the local backend: exit code and transcript."""
    command = [sys.executable, "-m", "sandrun", "run", str(recipe), "--format", "json", "--keep-going", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def write(path: Path, text: str) -> Path:
    """Write a recipe and return its path."""
    path.write_text(text)
    return path


def cell_code(code: str) -> str:
    """`code` indented to sit in a YAML block scalar under `- code: |`."""
    return "\n".join("      " + line for line in code.splitlines())


def test_network_follows_the_recipe_unless_the_command_line_says_otherwise(tmp_path: Path) -> None:
    recipe = write(tmp_path / "net.yaml", f"network: true\ncells:\n  - code: |\n{cell_code(SOCKET)}\n")
    code, transcript = run(recipe)
    assert code == 0 and transcript["limits"]["network"] is True
    code, transcript = run(recipe, "--no-network")
    assert code == 1 and transcript["limits"]["network"] is False
    assert transcript["cells"][0]["error"]["type"] == "OSError"  # no internet sockets without a network
    closed = write(tmp_path / "closed.yaml", f"cells:\n  - code: |\n{cell_code(SOCKET)}\n")
    assert run(closed)[0] == 1
    assert run(closed, "--network")[0] == 0


def test_the_most_specific_timeout_wins(tmp_path: Path) -> None:
    # A sleep of 0.2 s outlasts a timeout of 0.05 s, whatever the load; a timeout of 30 s never fires.
    recipe = write(
        tmp_path / "t.yaml",
        "timeout: 0.05\n"
        "cells:\n"
        "  - code: import time; time.sleep(0.2)\n    timeout: 10\n"  # its own timeout: passes
        "  - import time; time.sleep(0.2)\n",  # the recipe's 0.05 s: times out
    )
    code, transcript = run(recipe, "--cell-timeout", "30")
    assert code == 1
    assert [c["status"] for c in transcript["cells"]] == ["passed", "timeout"]
    plain = write(tmp_path / "p.yaml", "cells:\n  - import time; time.sleep(0.2)\n")
    assert run(plain, "--cell-timeout", "0.05")[1]["cells"][0]["status"] == "timeout"
    assert run(plain, "--cell-timeout", "30")[1]["cells"][0]["status"] == "passed"


def test_resource_flags_reach_the_sandbox_and_the_transcript(tmp_path: Path) -> None:
    recipe = write(
        tmp_path / "r.yaml",
        "cells:\n"
        "  - print('y' * 5000)\n"
        "  - import resource; print(resource.getrlimit(resource.RLIMIT_CPU)[0], "
        "resource.getrlimit(resource.RLIMIT_NPROC)[0])\n"
        "  - open('/tmp/big', 'wb').write(b'x' * (3 << 20))\n",
    )
    code, transcript = run(
        recipe, "--output-limit", "1K", "--cpu-time", "77", "--max-procs", "33", "--disk", "2M"
    )
    first, second, third = transcript["cells"]
    assert "more bytes of stdout not shown" in first["stdout"] and len(first["stdout"]) < 1200
    assert second["stdout"] == "77 33\n"
    assert third["status"] == "failed" and "No space left" in third["error"]["message"]
    assert transcript["limits"]["output_limit"] == 1024
    assert transcript["limits"]["resources"]["disk"] == 2 << 20
    assert code == 1
