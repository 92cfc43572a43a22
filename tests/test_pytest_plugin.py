"""The pytest plugin, run by pytest itself (`pytester`) on recipes in throwaway directories.

Runs are in-process (fast) but for xdist. pytester restores `sys.modules` after each run, so modules first
imported inside one would come back as fresh copies next time, with classes that do not match those held
elsewhere: `warm_up` imports what reading and running recipes needs, once, before any run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from tests.security.sandboxes import local_unavailable

pytest_plugins = ("pytester",)

STATEFUL = """\
cells:
  - code: x = 1
  - name: greet
    code: print("hello", x)
    expect: {stdout: "hello 1"}
  - code: x += 1
  - code: x
    expect: {value: "2"}
"""
FAILING = """\
cells:
  - code: x = 1
  - name: greet
    code: print("hello", x)
    expect: {stdout: "hello 2"}
  - code: print(x)
"""


RST = """\
Doc
===

.. testcode::

   print(6 * 7)

.. testoutput::

   42
"""
NOTEBOOK = json.dumps(
    {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# Doc"]},
            {
                "cell_type": "code",
                "id": "b",
                "metadata": {},
                "source": ["x = 2"],
                "outputs": [],
                "execution_count": None,
            },
            {
                "cell_type": "code",
                "id": "c",
                "metadata": {},
                "source": ["assert x == 2"],
                "outputs": [],
                "execution_count": None,
            },
        ],
    }
)


@pytest.fixture(scope="module", autouse=True)
def warm_up(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Read a recipe of every format, so that their readers are imported before pytester's snapshot."""
    import sandrun.pytest_recipes  # noqa: F401
    from sandrun.readers import load_recipe

    folder = tmp_path_factory.mktemp("warm-up")
    texts = {
        "r.yaml": STATEFUL,
        "d.md": "```python\nprint(1)\n```\n",
        "p.py": "# %%\nx = 1\n",
        "s.rst": RST,
        "n.ipynb": NOTEBOOK,
    }
    for name, text in texts.items():
        (folder / name).write_text(text)
        load_recipe(folder / name)


@pytest.fixture(autouse=True)
def local_sandbox() -> None:
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    return {key: value for key, value in result.parseoutcomes().items() if key != "seconds"}


def test_without_sandrun_nothing_but_the_tests_is_collected_and_nothing_imported(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", r=STATEFUL)
    pytester.makefile(".md", doc="```python\nraise SystemExit('ran')\n```\n")
    pytester.makepyfile(test_plain="def test_it():\n    pass\n")
    probe = textwrap.dedent(
        """
        import json, sys, pytest
        code = pytest.main(["-q", "-p", "no:cacheprovider"])
        print(json.dumps([code, sorted(m for m in sys.modules if m.startswith("sandrun"))]))
        """
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=pytester.path, capture_output=True, text=True)
    code, imported = json.loads(ran.stdout.strip().splitlines()[-1])
    assert code == 0 and "1 passed" in ran.stdout
    assert imported == ["sandrun", "sandrun.pytest_plugin"]


def test_each_code_cell_is_an_item_and_state_carries(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r=STATEFUL)
    result = pytester.runpytest("--sandrun", "r.yaml", "-v")
    assert result.ret == 0
    assert outcomes(result) == {"passed": 4}
    result.stdout.fnmatch_lines(
        ["r.yaml::cell_1 PASSED*", "r.yaml::cell_2[[]greet[]] PASSED*", "*cell_4 PASSED*"]
    )


def test_a_failure_shows_the_diff_and_the_line_and_later_cells_are_skipped(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r=FAILING)
    result = pytester.runpytest("--sandrun", "r.yaml", "-rs")
    assert result.ret == 1
    assert outcomes(result) == {"passed": 1, "failed": 1, "skipped": 1}
    result.stdout.fnmatch_lines(
        [
            "r.yaml:4: greet failed: stdout did not match (expected at line 5)",
            "-hello 2",
            "+hello 1",
            "SKIPPED [1] r.yaml:6: not run: greet (r.yaml:4) failed before it",
        ]
    )


def test_a_traceback_points_at_the_recipe_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r="cells:\n  - code: |\n      a = 1\n      a / 0\n")
    result = pytester.runpytest("--sandrun", "r.yaml")
    assert result.ret == 1
    result.stdout.fnmatch_lines(['*File "r.yaml", line 4*', "ZeroDivisionError: division by zero"])


def test_selecting_a_later_cell_runs_the_earlier_ones_first(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r=STATEFUL)
    result = pytester.runpytest("--sandrun", "r.yaml", "-k", "cell_4", "-v")
    assert outcomes(result) == {"passed": 1, "deselected": 3}


def test_a_selected_cell_whose_earlier_cell_fails_is_skipped_saying_why(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r=FAILING)
    result = pytester.runpytest("--sandrun", "r.yaml", "-k", "cell_3", "-rs")
    assert outcomes(result) == {"skipped": 1, "deselected": 2}
    result.stdout.fnmatch_lines(["SKIPPED [1] r.yaml:6: not run: greet (r.yaml:4) failed before it"])


def test_skip_in_the_recipe_is_a_pytest_skip_and_tags_are_markers(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r="cells:\n  - code: '1'\n    skip: true\n  - code: '2'\n")
    result = pytester.runpytest("--sandrun", "r.yaml", "-rs")
    assert outcomes(result) == {"passed": 1, "skipped": 1}
    result.stdout.fnmatch_lines(["SKIPPED [1] r.yaml:2: skip: true in the recipe"])
    pytester.makepyfile(tagged="# %%\nx = 1\n\n# %% tags=['slow']\nx + 1\n\n# %%\nx\n")
    assert outcomes(pytester.runpytest("--sandrun", "tagged.py", "-m", "slow")) == {
        "passed": 1,
        "deselected": 2,
    }


def test_percent_py_files_are_recipes_only_when_named_and_never_imported(pytester: pytest.Pytester) -> None:
    notes = "# %% tags=['raises-exception']\nraise SystemExit('imported on the host')\n\n# %%\nprint('ok')\n"
    pytester.makepyfile(notes=notes)
    pytester.makefile(".yaml", r=STATEFUL)
    assert outcomes(pytester.runpytest("--sandrun", ".")) == {"passed": 4}
    assert outcomes(pytester.runpytest("--sandrun", "notes.py")) == {"passed": 2}
    # pytest drops an argument that another one holds: the named file must still be taken
    assert outcomes(pytester.runpytest("--sandrun", ".", "notes.py")) == {"passed": 6}


def test_markdown_documents_below_a_path_are_collected(pytester: pytest.Pytester) -> None:
    pytester.makefile(".md", doc="# Doc\n\n```python\nprint('hi')\n```\n\n```output\nhi\n```\n")
    pytester.makefile(".md", prose="# Only prose\n")
    result = pytester.runpytest("--sandrun", ".", "-v")
    assert outcomes(result) == {"passed": 1}
    result.stdout.fnmatch_lines(["doc.md::cell_1 PASSED*"])


def test_rst_documents_and_notebooks_below_a_path_are_collected(pytester: pytest.Pytester) -> None:
    pytester.makefile(".rst", doc=RST)
    pytester.makefile(".ipynb", notebook=NOTEBOOK)
    result = pytester.runpytest("--sandrun", ".", "-v")
    assert outcomes(result) == {"passed": 3}
    result.stdout.fnmatch_lines(["doc.rst::cell_1 PASSED*", "notebook.ipynb::cell_2 PASSED*"])


def test_sandrun_paths_in_the_ini_file_collect_recipes_along_with_the_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\nsandrun_paths = ["recipes"]\n'
    )
    pytester.mkdir("tests").joinpath("test_a.py").write_text("def test_a():\n    pass\n")
    pytester.mkdir("recipes").joinpath("r.yaml").write_text(STATEFUL)
    assert outcomes(pytester.runpytest()) == {"passed": 5}
    assert outcomes(pytester.runpytest("tests")) == {"passed": 1}


def test_sandrun_without_paths_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--sandrun")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sandrun needs the recipes to run*"])


def test_an_unknown_backend_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r=STATEFUL)
    result = pytester.runpytest("--sandrun", "r.yaml", "--sandrun-backend", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sandrun-backend 'nowhere' is not one of: local, process, modal*"])


def test_the_backend_option_chooses_where_cells_run(pytester: pytest.Pytester) -> None:
    # Only the process backend sees the host's files: the local sandbox has its own, empty, /tmp.
    marker = pytester.path / "host-file"
    marker.write_text("on the host")
    pytester.makefile(".yaml", r=f"cells:\n  - code: import os; print(os.path.exists({str(marker)!r}))\n    "
                                 "expect: {stdout: 'True'}\n")  # fmt: skip
    assert outcomes(pytester.runpytest("--sandrun", "r.yaml", "--sandrun-backend", "process")) == {
        "passed": 1
    }
    assert outcomes(pytester.runpytest("--sandrun", "r.yaml", "--sandrun-backend", "local")) == {"failed": 1}


def test_a_bad_recipe_is_a_collection_error_with_its_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r="cells:\n  - code: '1'\n    expect: {nonsense: 1}\n")
    # In a process of its own: pytest renders the collection error's traceback with `ast`, which some
    # Python 3.11 releases refuse (SystemError) after a long in-process run has hit recursion limits.
    result = pytester.runpytest_subprocess("-p", "sandrun", "--sandrun", "r.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*r.yaml:3*"])
    assert "Traceback" not in result.stdout.str()


def test_junit_xml_has_a_test_case_per_cell(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", r=FAILING)
    pytester.runpytest("--sandrun", "r.yaml", "--junitxml=out.xml")
    xml = (pytester.path / "out.xml").read_text()
    assert len(re.findall(r"<testcase ", xml)) == 3
    assert 'message="r.yaml:4: greet failed: stdout did not match' in xml


def test_update_rewrites_the_expected_output(pytester: pytest.Pytester) -> None:
    path = pytester.makefile(".yaml", r=FAILING)
    result = pytester.runpytest("--sandrun", "r.yaml", "--sandrun-update")
    result.stdout.fnmatch_lines(["sandrun: r.yaml:5: greet: updated the expected stdout"])
    assert 'expect: {stdout: "hello 1"}' in path.read_text()
    assert outcomes(pytester.runpytest("--sandrun", "r.yaml")) == {"passed": 3}


def test_xdist_keeps_each_recipe_on_one_worker(pytester: pytest.Pytester) -> None:
    for name in ("a", "b", "c"):
        pytester.makefile(".yaml", **{name: STATEFUL})
    result = pytester.runpytest_subprocess("--sandrun", ".", "-n", "2", "-v", "-p", "no:cacheprovider")
    assert outcomes(result) == {"passed": 12}
    workers: dict[str, set[str]] = {}
    for worker, recipe in re.findall(r"\[(gw\d)\] .*PASSED (\w)\.yaml::", result.stdout.str()):
        workers.setdefault(recipe, set()).add(worker)
    assert sorted(workers) == ["a", "b", "c"]
    assert all(len(used) == 1 for used in workers.values()), workers


def test_skipif_is_evaluated_in_the_sandbox_and_a_true_one_is_a_pytest_skip_saying_why(
    pytester: pytest.Pytester,
) -> None:
    doc = ".. testsetup::\n\n   flag = True\n\n.. testcode::\n   :skipif: flag\n\n   1 / 0\n"
    doc += "\n.. testcode::\n   :skipif: not flag\n\n   print('ran')\n\n.. testoutput::\n\n   ran\n"
    pytester.makefile(".rst", doc=doc)
    result = pytester.runpytest("--sandrun", "doc.rst", "-rs")
    assert outcomes(result) == {"passed": 2, "skipped": 1}
    result.stdout.fnmatch_lines(["SKIPPED [1] doc.rst:8: `:skipif: flag` (line 6) is true in the sandbox"])


def test_the_cells_of_sphinx_conf_py_are_reported_at_their_lines_in_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject="")
    pytester.makepyfile(conf='doctest_global_setup = "flag = 1"\ndoctest_global_cleanup = "del flag"\n')
    pytester.makefile(".rst", doc=".. testcode::\n\n   print(flag)\n\n.. testoutput::\n\n   2\n")
    result = pytester.runpytest("--sandrun", "doc.rst", "-rs")
    assert outcomes(result) == {"passed": 1, "failed": 1, "skipped": 1}
    assert "SKIPPED [1] conf.py:2: not run: cell 2 (doc.rst:3) failed before it" in result.stdout.str()
