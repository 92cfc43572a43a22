"""Finding recipes from files, directories and glob patterns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandrun.discover import find_recipes
from sandrun.errors import UsageError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A project with recipes, look-alikes that are not recipes, and places that must not be searched."""
    files = {
        "a.yaml": "cells:\n  - x = 1\n",
        "b.yml": "name: b\ncells: [print(1)]\n",
        "config.yaml": "jobs: {}\n",  # YAML, but not a recipe
        "notebook.py": "# %%\nx = 1\n",
        "module.py": "def f():\n    return 1\n",  # Python, but not percent format
        "docs/guide.md": "# Guide\n\n```python\nprint(1)\n```\n",
        "docs/prose.md": "# Only words\n\n```sh\nls\n```\n",
        "docs/deep/more.md": "~~~pycon\n>>> 1\n1\n~~~\n",
        ".hidden/c.yaml": "cells: [x]\n",
        ".venv/d.yaml": "cells: [x]\n",
        "node_modules/e.yaml": "cells: [x]\n",
        "notes.txt": "cells: [x]\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def relative(paths: list[Path], root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in paths]


def test_a_directory_is_searched_for_recipes_only(tree: Path) -> None:
    assert relative(find_recipes([str(tree)]), tree) == [
        "a.yaml",
        "b.yml",
        "docs/deep/more.md",
        "docs/guide.md",
        "notebook.py",
    ]


def test_globs_expand_to_recipes(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    assert [str(p) for p in find_recipes(["*.yaml", "docs/**/*.md"])] == [
        "a.yaml",
        os.path.join("docs", "deep", "more.md"),
        os.path.join("docs", "guide.md"),
    ]


def test_a_file_named_explicitly_is_always_taken(tree: Path) -> None:
    assert find_recipes([str(tree / "module.py")]) == [tree / "module.py"]


def test_each_recipe_once_in_the_order_given(tree: Path) -> None:
    found = find_recipes([str(tree / "notebook.py"), str(tree), str(tree / "a.yaml")])
    assert found[0] == tree / "notebook.py"
    assert len(found) == len(set(found)) == 5


def test_a_name_that_matches_nothing_is_a_usage_error(tree: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.yaml: no such file"):
        find_recipes([str(tree / "nope.yaml")])
    with pytest.raises(UsageError, match=r"\*\.toml"):
        find_recipes([str(tree / "*.toml")])


def test_linked_directories_are_not_followed(tree: Path) -> None:
    (tree / "docs" / "loop").symlink_to(tree)
    assert len(find_recipes([str(tree)])) == 5


@pytest.mark.parametrize(
    "text",
    [
        "```python3\nprint(1)\n```\n",
        "```py3\nprint(1)\n```\n",
        "```ipython3\nprint(1)\n```\n",
        "```{.python .numberLines}\nprint(1)\n```\n",
        "```{python}\nprint(1)\n```\n",
        "1. Install it\n\n   ```python\n   print(1)\n   ```\n",
        "- ```python\n  print(1)\n  ```\n",
        "> ```python\n> print(1)\n> ```\n",
        "```{doctest}\n>>> 1\n1\n```\n",
        "```{code-cell} ipython3\nprint(1)\n```\n",
        "```{testcode}\nprint(1)\n```\n",
        "```\n>>> 1 + 1\n2\n```\n",  # no language, a session: doctest's reading
        "Some text.\n\n    >>> 1 + 1\n    2\n",  # an indented code block holding a session
    ],
)
def test_every_markdown_block_the_reader_runs_makes_a_recipe(tmp_path: Path, text: str) -> None:
    (tmp_path / "page.md").write_text(text)
    assert find_recipes([str(tmp_path)]) == [tmp_path / "page.md"]


@pytest.mark.parametrize(
    "name, text",
    [
        ("page.rst", ".. testsetup::\n\n   x = 1\n"),
        ("page.rst", ".. code-block:: python3\n\n   print(1)\n"),
        ("page.rst", "Example::\n\n    >>> 1 + 1\n    2\n"),
    ],
)
def test_every_rst_example_the_reader_runs_makes_a_recipe(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    assert find_recipes([str(tmp_path)]) == [tmp_path / name]


@pytest.mark.parametrize(
    "text",
    [
        "The prompt `>>> ` is Python's.\n\n```sh\npip install x\n```\n",
        "```python-console\n$ ls\n```\n",
        "```pyi\ndef f() -> int: ...\n```\n",
    ],
)
def test_documents_without_examples_are_not_recipes(tmp_path: Path, text: str) -> None:
    (tmp_path / "page.md").write_text(text)
    (tmp_path / "other.md").write_text("```python\nprint(1)\n```\n")
    assert find_recipes([str(tmp_path)]) == [tmp_path / "other.md"]
