"""Issue-8 item 9, second half: a cell cannot drive the terminal of whoever runs sandrun.

The live progress on stderr shows a cell's output, errors and values as they come. Raw, an escape sequence in
them reaches the host's terminal: OSC 52 sets the clipboard (a command to paste), CSI sequences move the
cursor and erase lines (hiding a failure, forging a "passed"). sandrun shows control characters escaped
(`\\x1b`) on the terminal, and keeps the exact bytes in the transcript.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import sandrun.console
from sandrun.app import app
from tests.security.sandboxes import local_unavailable, sandrun_cli

CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4K\x07"  # OSC 52: put `rm -rf ~` on the clipboard
ERASE = "\x1b[2K\x1b[1A\x1b[2J\x1b[H"  # erase the line, move up, clear the screen, cursor home
RECIPE = f"""\
name: "term{chr(0x1B)}[31m"
cells:
  - |
    import os, sys
    print({CLIPBOARD!r})
    sys.stderr.write({ERASE!r} + "\\n")
    os.write(1, "\\x9b2J raw C1 CSI\\n".encode())
  - |
    raise ValueError({ERASE!r} + "passed")
"""


def write_recipe(folder: Path) -> Path:
    recipe = folder / "term.yaml"
    recipe.write_text(RECIPE.replace(chr(0x1B), "\\e"), encoding="utf-8")  # YAML's escape in double quotes
    return recipe


def test_cell_output_cannot_drive_the_terminal(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    run = sandrun_cli(recipe, "--keep-going", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr and "\x9b" not in run.stderr
    assert "\\x1b]52;c;cm0gLXJmIH4K\\x07" in run.stderr  # shown, escaped
    assert "\\x1b[2J" in run.stderr and "\\x9b2J raw C1 CSI" in run.stderr
    assert run.transcript is not None  # the transcript keeps the exact bytes
    first, second = run.transcript["cells"]
    assert CLIPBOARD in first["stdout"] and ERASE in first["stderr"]
    assert "\x9b2J" in first["stdout"]
    assert ERASE in second["error"]["message"]


def test_control_the_same_run_reaches_the_terminal_raw_without_the_defence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: with `for_terminal` switched off, the sequences arrive raw on stderr."""
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")
    monkeypatch.setattr(sandrun.console, "for_terminal", lambda text: text)
    recipe = write_recipe(tmp_path)
    result = CliRunner().invoke(app, ["run", str(recipe), "--backend", "local", "--keep-going"])
    assert result.exit_code == 1, result.output
    assert CLIPBOARD in result.stderr
    assert ERASE in result.stderr
