"""`__file__` in a cell: the recipe's file name in the sandbox's work directory, where its `files:` are,
so that `Path(__file__).parent / "data.csv"` works as it does in a script; never the recipe's host path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import RunCell

RECIPE = """\
files: [data.txt]
cells:
  - code: |
      from pathlib import Path
      print(__file__)
      print((Path(__file__).parent / "data.txt").read_text(), end="")
"""


def test_file_is_the_recipes_name_in_the_work_directory_and_finds_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "host-only-folder"
    folder.mkdir()
    (folder / "data.txt").write_text("beside the recipe\n")
    recipe = folder / "guide.yaml"
    recipe.write_text(RECIPE)
    command = [sys.executable, "-m", "sandrun", "run", str(recipe), "--backend", "local", "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    (cell,) = json.loads(done.stdout)["cells"]
    # named by its absolute host path, the recipe is still only its name in the work directory
    assert cell["stdout"] == "/home/sandbox/guide.yaml\nbeside the recipe\n"


def test_every_backend_sets_it_and_a_cell_that_changes_it_does_not_change_the_next(run_cell: RunCell) -> None:
    assert run_cell("import os; __file__ = 'mine'; os.path.basename(__file__)").value == "'mine'"
    assert run_cell("os.path.basename(__file__)").value == "'recipe.py'"
