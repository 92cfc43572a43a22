"""Sphinx's `doctest_global_setup` / `doctest_global_cleanup` from the docs' `conf.py`: run in the sandbox
as the document's first and last cells, named and placed at their lines in conf.py. conf.py is project code:
it is parsed, never imported or run on the host, and only plain string literals are taken; anything
computed is left out with a warning at its line."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sandrun.readers import load_recipe
from sandrun.readers.rst import parse
from sandrun.readers.sphinx_conf import global_code
from sandrun.reports.json_report import transcript_from_dict
from tests.factories import run_json

CONF = '''\
project = "demo"
doctest_global_setup = """
import math
ANSWER = 42
"""
doctest_global_cleanup = "print('cleaned up')"
'''
PAGE = """\
Page
====

.. doctest::

   >>> ANSWER
   42
   >>> math.sqrt(16)
   4.0
"""


def project(root: Path, conf: str = CONF) -> Path:
    """A project with docs/conf.py and docs/guide/page.rst; the page's path."""
    (root / "docs" / "guide").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (root / "docs" / "conf.py").write_text(conf)
    page = root / "docs" / "guide" / "page.rst"
    page.write_text(PAGE)
    return page


def test_the_setup_runs_first_and_the_cleanup_last_named_at_their_lines_in_conf_py(
    tmp_path: Path, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    project(tmp_path)
    code, transcript, err = run_json("docs/guide/page.rst", cwd=tmp_path)
    assert code == 0, err
    cells = [(c["name"], c.get("path"), c["line"], c["status"], c["stdout"]) for c in transcript["cells"]]
    assert cells == [
        ("doctest_global_setup", "docs/conf.py", 2, "passed", ""),
        (None, None, 6, "passed", ""),
        (None, None, 8, "passed", ""),
        ("doctest_global_cleanup", "docs/conf.py", 6, "passed", "cleaned up\n"),
    ]
    transcript_validator.validate(transcript)
    assert transcript_from_dict(transcript).results[0].cell.location == "docs/conf.py:2"


def test_control_without_conf_py_the_page_fails_on_the_names_it_sets_up(tmp_path: Path) -> None:
    page = project(tmp_path)
    (tmp_path / "docs" / "conf.py").unlink()
    code, transcript, err = run_json(page, cwd=tmp_path)
    assert code == 1, err
    assert transcript["cells"][0]["error"]["type"] == "NameError"


def test_an_error_in_the_setup_points_at_its_line_in_conf_py(tmp_path: Path) -> None:
    project(tmp_path, CONF.replace("ANSWER = 42", "import not_a_module_anywhere"))
    code, transcript, err = run_json("docs/guide/page.rst", cwd=tmp_path)
    assert code == 1, err
    setup = transcript["cells"][0]
    assert setup["status"] == "failed" and setup["error"]["line"] == 4
    assert 'File "docs/conf.py", line 4' in setup["error"]["traceback"]
    assert "doctest_global_setup (docs/conf.py:2) failed" in transcript["reason"]


@pytest.mark.parametrize(
    ("assignment", "line"),
    [
        ('doctest_global_setup = textwrap.dedent("""\n    import math\n""")', 2),
        ('doctest_global_setup = f"ANSWER = {40 + 2}"', 2),
        ('doctest_global_setup = "import math"\ndoctest_global_setup += "\\nANSWER = 42"', 3),
        ('if True:\n    doctest_global_setup = "ANSWER = 42"', 3),
        ("from settings import doctest_global_setup", 2),
        ('doctest_global_setup, other = "ANSWER = 42", 1', 2),
    ],
)
def test_a_computed_value_is_not_used_and_the_warning_says_where(
    tmp_path: Path, assignment: str, line: int
) -> None:
    page = project(tmp_path, f"import textwrap\n{assignment}\n")
    recipe = parse(page.read_text(), str(page), "0" * 64)
    assert all(cell.path == str(page) for cell in recipe.cells)  # no setup cell
    (warning,) = recipe.warnings
    assert warning.startswith(f"{tmp_path / 'docs' / 'conf.py'}:{line}: `doctest_global_setup` is not set to")
    assert "conf.py is never run on the host" in warning


def test_the_nearest_conf_py_wins_and_none_above_the_project_top_is_read(tmp_path: Path) -> None:
    page = project(tmp_path / "repo")
    assert global_code(str(page)) is not None
    (tmp_path / "repo" / "docs" / "guide" / "conf.py").write_text("extensions = []\n")
    assert global_code(str(page)) is None  # the nearer one sets nothing
    (tmp_path / "repo" / "docs" / "guide" / "conf.py").unlink()
    (tmp_path / "repo" / "docs" / "conf.py").unlink()
    (tmp_path / "conf.py").write_text(CONF)  # above the directory that holds pyproject.toml
    assert global_code(str(page)) is None
    (tmp_path / "repo" / "pyproject.toml").unlink()  # no top: the search goes on up
    found = global_code(str(page))
    assert found is not None and found.path == str(tmp_path / "conf.py")


# --- conf.py is never run on the host: attacks, each with its control --------------------------------

HOSTILE = """\
import pathlib
pathlib.Path(r"{marker}").write_text("conf.py ran on the host")
doctest_global_setup = '''
import pathlib
pathlib.Path(r"{inside}").parent.mkdir(parents=True, exist_ok=True)
pathlib.Path(r"{inside}").write_text("the setup ran here")
'''
"""


def test_control_running_this_conf_py_would_write_the_host_files(tmp_path: Path) -> None:
    marker, inside = tmp_path / "marker", tmp_path / "inside" / "file"
    namespace: dict[str, Any] = {}
    exec(HOSTILE.format(marker=marker, inside=inside), namespace)
    exec(namespace["doctest_global_setup"], {})
    assert marker.exists() and inside.exists()


def test_attack_conf_py_is_not_run_and_its_setup_runs_only_in_the_sandbox(tmp_path: Path) -> None:
    marker, inside = tmp_path / "marker", tmp_path / "inside" / "file"
    page = project(tmp_path / "p", HOSTILE.format(marker=marker, inside=inside))
    page.write_text(
        f".. testcode::\n\n   print(open(r'{inside}').read())\n\n.. testoutput::\n\n   the setup ran here\n"
    )
    code, transcript, err = run_json(page, cwd=tmp_path)
    assert code == 0, err  # the setup ran, in the sandbox's own filesystem, where the page reads it back
    assert transcript["cells"][0]["name"] == "doctest_global_setup"
    assert not marker.exists(), "conf.py was run on the host"
    assert not inside.exists() and not inside.parent.exists(), "the setup reached the host"


def test_attack_a_conf_py_that_is_a_link_or_a_fifo_is_not_read(tmp_path: Path) -> None:
    page = project(tmp_path)
    conf = tmp_path / "docs" / "conf.py"
    target = tmp_path / "elsewhere.py"
    target.write_text(CONF)
    conf.unlink()
    conf.symlink_to(target)
    found = global_code(str(page))
    assert found is not None and not found.code and "it is a symbolic link" in found.warnings[0]
    conf.unlink()
    os.mkfifo(conf)  # reading it would wait for a writer forever
    found = global_code(str(page))
    assert found is not None and not found.code and "not a regular file" in found.warnings[0]
    conf.unlink()
    conf.write_text(CONF)  # the control: the same text, as a file, is read
    found = global_code(str(page))
    assert found is not None and set(found.code) == {"doctest_global_setup", "doctest_global_cleanup"}


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_attack_a_conf_py_of_another_user_above_the_document_is_not_read(tmp_path: Path) -> None:
    page = project(tmp_path)
    conf = tmp_path / "docs" / "conf.py"
    os.chown(conf, 4242, 4242)
    found = global_code(str(page))
    assert found is not None and not found.code and "belongs to uid 4242" in found.warnings[0]
    os.chown(conf, 0, 0)  # the control: root's is read
    found = global_code(str(page))
    assert found is not None and "doctest_global_setup" in found.code
    assert textwrap.dedent(found.code["doctest_global_setup"][0]) == "\nimport math\nANSWER = 42\n"


def test_a_myst_page_with_sphinx_doctest_directives_gets_them_and_a_plain_markdown_file_does_not(
    tmp_path: Path,
) -> None:
    page = project(tmp_path)
    myst = page.with_suffix(".md")
    myst.write_text("# Page\n\n```{doctest}\n>>> ANSWER\n42\n```\n")
    code, transcript, err = run_json(myst, cwd=tmp_path)
    assert code == 0, err
    assert [c["name"] for c in transcript["cells"]] == [
        "doctest_global_setup",
        None,
        "doctest_global_cleanup",
    ]
    plain = page.with_name("notes.md")
    plain.write_text("# Notes\n\n```python\nprint('no Sphinx here')\n```\n")
    assert [cell.name for cell in load_recipe(plain).cells] == [None]
