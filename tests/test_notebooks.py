"""Notebooks in and out: `.ipynb` recipes, stored outputs checked and updated, executed notebook reports."""

from __future__ import annotations

import base64
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from typer.testing import CliRunner, Result

from sandrun.app import app
from sandrun.discover import find_recipes
from sandrun.errors import RecipeError
from sandrun.model import ANY_EXCEPTION, CellKind, MatchMode
from sandrun.readers import load_recipe
from sandrun.reports.rich import png_size
from tests.factories import needs_matplotlib


@pytest.fixture(autouse=True)
def restore_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def invoke(*args: str | Path, backend: str = "process") -> Result:
    runner = CliRunner(env={"SANDRUN_BACKEND": backend})
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def notebook(path: Path, *cells: Any, **metadata: Any) -> Path:
    """Write a notebook as Jupyter does (nbformat), with these cells: (kind, source[, cell metadata])."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(metadata)
    makers = {
        "code": nbformat.v4.new_code_cell,
        "md": nbformat.v4.new_markdown_cell,
        "raw": nbformat.v4.new_raw_cell,
    }
    nb.cells = [makers[kind](source, metadata=meta[0] if meta else {}) for kind, source, *meta in cells]
    nbformat.write(nb, path)
    return path


def test_cells_tags_timeouts_and_settings(tmp_path: Path) -> None:
    path = notebook(
        tmp_path / "n.ipynb",
        ("md", "# Title"),
        ("code", "x = 1\ny = 2", {"sandrun": {"timeout": 5}}),
        ("code", "1 / 0", {"tags": ["raises-exception"]}),
        ("code", "slow()", {"tags": ["skip-execution"]}),
        ("code", "other()", {"tags": ["skip"], "sandrun": {"timeout": 7}}),
        ("raw", "raw text"),
        sandrun={"timeout": 30, "env": {"A": "b", "N": 3}, "packages": ["numpy>=2"], "name": "demo"},
    )
    recipe = load_recipe(path)
    assert recipe.format == "ipynb" and recipe.name == "demo" and recipe.timeout == 30
    assert recipe.env == {"A": "b", "N": "3"} and recipe.packages == ("numpy>=2",)
    nbmake = notebook(tmp_path / "m.ipynb", ("code", "pass"), execution={"timeout": 12})
    assert load_recipe(nbmake).timeout == 12
    kinds = [c.kind for c in recipe.cells]
    assert kinds == [CellKind.MARKDOWN, *[CellKind.CODE] * 4, CellKind.RAW]
    code = recipe.cells[1:5]
    assert [c.timeout for c in code] == [5.0, None, None, 7.0]
    assert [c.skip for c in code] == [False, False, True, True]
    assert code[1].expect.error == ANY_EXCEPTION
    lines = path.read_text().splitlines()
    assert (
        lines[code[0].line - 1].strip() == '"x = 1\\n",'
    )  # a cell's line is its first source line in the file
    assert lines[code[1].line - 1].strip() == '"1 / 0"'


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("x = 1\n!pip install numpy", "a shell command"),
        ("%time sum(range(3))", "the IPython magic %time"),
        ("%%bash\necho hi", "the IPython magic %%bash"),
    ],
)
def test_ipython_syntax_is_a_recipe_error_at_its_line(tmp_path: Path, source: str, what: str) -> None:
    path = notebook(tmp_path / "n.ipynb", ("code", "print(1)"), ("code", source))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    lines = path.read_text().splitlines()
    assert caught.value.line is not None and lines[caught.value.line - 1].strip().startswith(
        '"' + source.split("\n")[-1 if "!" in source else 0][:3]
    )
    assert f"cell 2 uses {what}, which sandrun does not run" in str(caught.value)
    result = invoke("run", path)
    assert result.exit_code == 2 and f"{path}:{caught.value.line}" in result.stderr


def test_matplotlib_magic_is_left_out_and_percent_operators_stay(tmp_path: Path) -> None:
    path = notebook(tmp_path / "n.ipynb", ("code", "%matplotlib inline\nx = 7 % 3\ny = 'a!b'\nx != 2"))
    (cell,) = load_recipe(path).cells
    assert cell.source == "\nx = 7 % 3\ny = 'a!b'\nx != 2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "invalid notebook JSON"),
        ('{"cells": [], "nbformat": 3}', "nbformat 3 is not supported"),
        ('{"nbformat": 4}', "no `cells` list"),
        ('{"cells": [{"cell_type": "code", "source": "x", "metadata": {}}], "nbformat": 4,'
         ' "metadata": {"sandrun": {"timout": 3}}}', "unknown setting 'timout'"),
        ('{"cells": [{"cell_type": "code", "source": 3}], "nbformat": 4}', "cell 1 source must be"),
    ],
)  # fmt: skip
def test_bad_notebooks_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.ipynb"
    path.write_text(text)
    with pytest.raises(RecipeError, match=message):
        load_recipe(path)
    assert invoke("run", path).exit_code == 2


def stored(path: Path, outputs_by_cell: dict[int, list[Any]]) -> None:
    nb = nbformat.read(path, as_version=4)
    for index, outputs in outputs_by_cell.items():
        nb.cells[index].outputs = outputs
        nb.cells[index].execution_count = index + 1
    nbformat.write(nb, path)


def test_stored_outputs_become_expectations_only_when_asked(tmp_path: Path) -> None:
    path = notebook(tmp_path / "n.ipynb", ("code", "print('hi')\n6 * 7"), ("code", "pass"))
    value = nbformat.v4.new_output("execute_result", {"text/plain": "42"}, execution_count=1)
    stored(path, {0: [nbformat.v4.new_output("stream", name="stdout", text="hi\n"), value]})
    assert load_recipe(path).cells[0].expect.stdout is None
    first, second = load_recipe(path, check_outputs=True).cells
    assert first.expect.stdout is not None and first.expect.stdout.text == "hi\n"
    assert first.expect.value is not None and first.expect.value.text == "42"
    assert first.expect.stdout.mode is MatchMode.ELLIPSIS
    assert second.expect.stdout is None  # never executed: nothing stored to compare with
    nb = json.loads(path.read_text())
    nb["metadata"]["sandrun"] = {"check_outputs": True, "match": "exact"}
    path.write_text(json.dumps(nb))
    assert load_recipe(path).cells[0].expect.stdout.mode is MatchMode.EXACT  # type: ignore[union-attr]


def test_check_outputs_catches_a_changed_number_and_update_rewrites_only_it(tmp_path: Path) -> None:
    path = notebook(
        tmp_path / "n.ipynb",
        ("md", "Numbers"),
        ("code", "print(21 * 2)"),
        ("code", "import math\nround(math.pi, 3)"),
        ("code", "raise ValueError('bad')", {"tags": ["raises-exception"]}),
    )
    assert invoke("run", path, "--update").exit_code == 0  # first, Jupyter-style outputs for every cell
    assert invoke("run", path, "--check-outputs").exit_code == 0
    before = path.read_text()
    path.write_text(before.replace('"42\\n"', '"43\\n"'))
    checked = invoke("run", path, "--check-outputs")
    assert checked.exit_code == 1 and "-43\n+42" in checked.stderr
    updated = invoke("run", path, "--check-outputs", "--update")
    assert updated.exit_code == 0, updated.stderr
    assert path.read_text() == before  # the one changed output is back, and nothing else moved
    nbformat.validate(nbformat.read(path, as_version=4))
    assert invoke("run", path, "--update").stderr.count("nothing to update") == 1


def test_update_keeps_metadata_ids_key_order_and_indentation(tmp_path: Path) -> None:
    path = notebook(tmp_path / "n.ipynb", ("code", "print('a')"), ("code", "x = 1"), zeta={"z": 1}, alpha=[1])
    nb = json.loads(path.read_text())
    nb["cells"][1]["metadata"] = {"b": 1, "a": 2}  # not sorted: must stay so
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    before = path.read_text()
    assert invoke("run", path, "--update").exit_code == 0
    after = path.read_text()
    new = json.loads(after)
    assert new["cells"][0]["outputs"] == [{"name": "stdout", "output_type": "stream", "text": ["a\n"]}]
    for cell, old in zip(new["cells"], nb["cells"], strict=True):  # put the old outputs back: the old bytes
        cell["outputs"], cell["execution_count"] = old["outputs"], old["execution_count"]
    assert json.dumps(new, indent=1, ensure_ascii=False) + "\n" == before
    assert json.loads(after)["cells"][1]["metadata"] == {"b": 1, "a": 2}
    assert list(json.loads(after)["cells"][1]["metadata"]) == ["b", "a"]
    assert json.loads(after)["cells"][0]["id"] == nb["cells"][0]["id"]
    assert after.startswith('{\n "cells": [\n  {\n')


def test_an_interrupted_or_failed_sandbox_run_does_not_update(tmp_path: Path) -> None:
    path = notebook(tmp_path / "n.ipynb", ("code", "print(1)"), ("code", "import os; os._exit(3)"))
    before = path.read_text()
    result = invoke("run", path, "--update")
    assert result.exit_code == 3 and "not updating" in result.stderr
    assert path.read_text() == before


def test_a_yaml_recipe_as_an_executed_notebook(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "cells:\n  - print('hi')\n  - code: 1/0\n    expect: {error: ZeroDivisionError}\n  - 6 * 7\n"
    )
    result = invoke("run", recipe, "--format", "ipynb")
    assert result.exit_code == 0, result.stderr
    nb = nbformat.reads(result.stdout, as_version=4)
    nbformat.validate(nb)
    assert [c.execution_count for c in nb.cells] == [1, 2, 3]
    outputs = [[o.output_type for o in c.outputs] for c in nb.cells]
    assert outputs == [["stream"], ["error"], ["execute_result"]]
    assert nb.cells[1].outputs[0].ename == "ZeroDivisionError"
    assert nb.cells[0].metadata.sandrun.status == "passed"


def test_several_recipes_make_one_valid_notebook(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("cells: [print(1)]\n")
    b.write_text("cells: [print(2)]\n")
    assert invoke("run", a, b, "--report", tmp_path / "out.ipynb", "-j", "1").exit_code == 0
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    nbformat.validate(nb)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown", "code"]


def test_notebooks_are_found_in_directories(tmp_path: Path) -> None:
    notebook(tmp_path / "n.ipynb", ("code", "pass"))
    notebook(tmp_path / "prose.ipynb", ("md", "only prose"))
    (tmp_path / ".ipynb_checkpoints").mkdir()
    notebook(tmp_path / ".ipynb_checkpoints" / "n-checkpoint.ipynb", ("code", "pass"))
    assert [p.name for p in find_recipes([tmp_path])] == ["n.ipynb"]


@needs_matplotlib
def test_a_notebook_with_a_plot_runs_in_the_sandbox_and_reports_everywhere(tmp_path: Path) -> None:
    path = notebook(
        tmp_path / "plot.ipynb",
        ("md", "# A plot"),
        ("code", "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.figure(figsize=(2, 1), dpi=40)\n"
                 "plt.plot([1, 2])\nprint('drawn')"),
        ("code", "class T:\n    def _repr_html_(self):\n        return '<table></table>'\nT()"),
        ("code", "int('x')", {"tags": ["raises-exception"]}),
    )  # fmt: skip
    out = tmp_path / "out.ipynb"
    md = tmp_path / "out.md"
    result = invoke("run", path, "--report", out, "--report", md, backend="local")
    assert result.exit_code == 0, result.stderr
    assert "[image/png " in result.stderr and "[text/html, 15 bytes]" in result.stderr
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    plot = [o for o in nb.cells[1].outputs if o.output_type == "display_data"]
    assert len(plot) == 1 and png_size(base64.b64decode(plot[0].data["image/png"])) is not None
    assert nb.cells[2].outputs[-1].data["text/html"] == "<table></table>"
    assert nb.cells[3].outputs[-1].output_type == "error"
    (image,) = (tmp_path / "out_files").iterdir()
    assert f"](out_files/{image.name})" in md.read_text()
