"""`sandrun.update`: rewriting a recipe's expected output with what its cells actually produced.

The golden files in `tests/golden/update/` are written by hand: each `NAME` is run for real (process
backend), updated, and must then equal `NAME.after` byte for byte; updating again changes nothing. The rest
checks the refusals (interrupted run, dead sandbox, file changed since the run), the atomic write, and that
whatever text a cell prints is either written so that the reader reads it back exactly, or refused.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import yaml

from sandrun.backends import get_backend
from sandrun.errors import RecipeError, SandrunError
from sandrun.expect import text_matches
from sandrun.model import (
    VALUE_CUT,
    CellResult,
    CellStatus,
    OutputChunk,
    Recipe,
    RunStatus,
    Transcript,
    is_cut,
)
from sandrun.readers import SUFFIXES, load_recipe, parse_bytes, recipe_format
from sandrun.runner import RunOptions, run_recipe
from sandrun.session import DEFAULT_OUTPUT_LIMIT
from sandrun.update import Edit, UpdateRefused, apply_edits, update_recipe

GOLDEN = Path(__file__).parent / "golden" / "update"
HAS_MARKDOWN = importlib.util.find_spec("sandrun.readers.markdown_doc") is not None
needs_markdown = pytest.mark.skipif(not HAS_MARKDOWN, reason="the Markdown reader is not there yet")


def load(path: Path) -> Recipe:
    """Read a recipe (Markdown with its reader directly, whether or not `.md` is registered yet)."""
    if path.suffix == ".md":
        from sandrun.readers import markdown_doc

        return parse_bytes(path.read_bytes(), str(path), markdown_doc.parse)
    return load_recipe(path)


def run(path: Path, output_limit: int = DEFAULT_OUTPUT_LIMIT) -> Transcript:
    """Run the recipe at `path` in the process backend, every cell even after failures."""
    options = RunOptions(keep_going=True, output_limit=output_limit)
    return run_recipe(load(path), get_backend("process"), options)


def write(path: Path, text: str) -> Path:
    """`text` written to `path` byte for byte (no newline translation)."""
    path.write_bytes(text.encode("utf-8"))
    return path


def copy(name: str, tmp_path: Path) -> Path:
    """A copy of golden file `name` in tmp_path, under the same name."""
    target = tmp_path / name
    shutil.copyfile(GOLDEN / name, target)
    return target


def fake_transcript(recipe: Recipe, stdouts: list[str], status: CellStatus = CellStatus.FAILED) -> Transcript:
    """A finished run in which cell i printed `stdouts[i]` (no sandbox needed)."""
    results = tuple(
        CellResult(cell, status, (OutputChunk("stdout", out),) if out else ())
        for cell, out in zip(recipe.cells, stdouts, strict=True)
    )
    return Transcript(
        recipe, "process", "none", RunStatus.FAILED, results, "2025-01-01T00:00:00Z", 0.0, "test"
    )


# --- golden files ---------------------------------------------------------------------------------------

GOLDEN_CASES = [
    pytest.param("quick.yaml", "quick.after.yaml", id="yaml"),
    pytest.param("cells.py", "cells.after.py", id="percent"),
    pytest.param("doc.md", "doc.after.md", id="markdown", marks=needs_markdown),
]


@pytest.mark.parametrize(("before", "after"), GOLDEN_CASES)
def test_golden_update_then_nothing_more(before: str, after: str, tmp_path: Path) -> None:
    path = copy(before, tmp_path)
    result = update_recipe(path, run(path))
    assert result.edits
    assert path.read_bytes() == (GOLDEN / after).read_bytes()
    assert os.listdir(tmp_path) == [before]  # no temporary file left behind

    stat = path.stat()
    again = update_recipe(path, run(path))
    assert again.edits == ()
    assert path.read_bytes() == (GOLDEN / after).read_bytes()
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)  # not rewritten


def test_yaml_result_says_what_changed_and_what_was_left(tmp_path: Path) -> None:
    path = copy("quick.yaml", tmp_path)
    result = update_recipe(path, run(path))
    greet = result.edits[0]
    assert (greet.label, greet.what, greet.location) == ("greet", "stdout", f"{path}:9")
    assert (greet.old, greet.new) == ("Hello\nthere\n", "Hello\nworld")
    assert {(e.label, e.what) for e in result.edits} >= {("quoted styles are kept", "stderr")}
    untouched = {"still matches with an ellipsis", "passes", "skipped", "unexpected exception"}
    assert not untouched & {e.label for e in result.edits}
    assert len(result.notes) == 2
    assert "regular expression" in result.notes[0] and f"{path}:70" in result.notes[0]
    assert "raised ValueError" in result.notes[1] and "unexpected exception" in result.notes[1]


def test_ellipsis_that_still_matches_is_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "dots.yaml"
    text = "cells:\n  - code: print('a 1 b')\n    expect: {stdout: 'a ... b'}   # kept\n  - print(2)\n"
    path.write_text(text)
    transcript = run(path)
    assert update_recipe(path, transcript).edits == ()
    assert path.read_text() == text
    stale = text.replace("a ... b", "a ... c")
    path.write_text(stale)
    result = update_recipe(path, run(path))
    assert path.read_text() == text.replace("'a ... b'", "'a 1 b'")
    assert [(e.old, e.new) for e in result.edits] == [("a ... c", "a 1 b")]


@needs_markdown
def test_markdown_fence_is_lengthened_and_console_blank_lines_marked(tmp_path: Path) -> None:
    path = copy("doc.md", tmp_path)
    edits = {e.location: e for e in update_recipe(path, run(path)).edits}
    fenced = edits[f"{path}:51"]
    assert (fenced.what, fenced.old, fenced.new) == ("stdout", "before\n", "before\n```\nafter")
    assert fenced.replacement == "````text\nbefore\n```\nafter\n````"  # both fence lines are rewritten
    console = edits[f"{path}:70"]
    assert (console.what, console.new, console.replacement) == ("repl", "a\n\nb", "a\n<BLANKLINE>\nb\n")
    assert '<!-- sandrun: name="console in a python block" -->' in path.read_text()


# --- refusals -------------------------------------------------------------------------------------------


def test_refuses_an_interrupted_run(tmp_path: Path) -> None:
    path = copy("quick.yaml", tmp_path)
    transcript = dataclasses.replace(
        run(path), status=RunStatus.INTERRUPTED, reason="interrupted by the user"
    )
    with pytest.raises(UpdateRefused, match="interrupted") as info:
        update_recipe(path, transcript)
    assert info.value.exit_code == 2
    assert path.read_bytes() == (GOLDEN / "quick.yaml").read_bytes()


def test_refuses_when_the_sandbox_died(tmp_path: Path) -> None:
    path = copy("cells.py", tmp_path)
    transcript = run(path)
    results = list(transcript.results)
    results[5] = dataclasses.replace(results[5], status=CellStatus.ERROR, reason="the sandbox died: killed")
    died = dataclasses.replace(transcript, status=RunStatus.ERROR, results=tuple(results))
    with pytest.raises(UpdateRefused, match=r"sandbox failed during Stderr .*killed"):
        update_recipe(path, died)
    assert path.read_bytes() == (GOLDEN / "cells.py").read_bytes()


def test_refuses_a_file_that_changed_since_the_run(tmp_path: Path) -> None:
    path = copy("quick.yaml", tmp_path)
    transcript = run(path)
    path.write_text(path.read_text() + "# edited meanwhile\n")
    with pytest.raises(UpdateRefused, match="changed since it was run"):
        update_recipe(path, transcript)
    assert path.read_text().endswith("# edited meanwhile\n")


def test_multi_line_value_in_a_percent_recipe_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "value.py"
    path.write_text(
        '# %%\nclass R:\n    def __repr__(self):\n        return "a\\nb"\n\n\nR()\n# expect value: R\n'
    )
    before = path.read_bytes()
    with pytest.raises(RecipeError, match="several lines") as info:
        update_recipe(path, run(path))
    assert info.value.line == 8 and "stdout" in str(info.value)
    assert path.read_bytes() == before


def test_a_value_with_no_trailing_expression_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "novalue.yaml"
    path.write_text("cells:\n  - code: x = 1\n    expect:\n      value: '1'\n")
    with pytest.raises(RecipeError, match="no value"):
        update_recipe(path, run(path))


def test_output_that_would_not_read_back_is_refused_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "marker.py"
    path.write_text('# %%\nprint("%% not a cell")\n# expect stdout:\n# old\n\n# %%\nprint(2)\n')
    before = path.read_bytes()
    with pytest.raises(RecipeError, match="would not") as info:
        update_recipe(path, run(path))
    assert "marker.py" in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["marker.py"]


def test_timed_out_and_truncated_cells_are_left_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text(
        "cells:\n  - code: print('x' * 50)\n    expect: {stdout: short}\n"
        "  - code: print('late')\n    expect: {stdout: early}\n"
    )
    transcript = run(path, output_limit=10)
    results = list(transcript.results)
    results[1] = dataclasses.replace(results[1], status=CellStatus.TIMEOUT)
    result = update_recipe(path, dataclasses.replace(transcript, results=tuple(results)))
    assert result.edits == ()
    assert "output was cut" in result.notes[0] and "timed out" in result.notes[1]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("value.yaml", "cells:\n  - code: 50 * 'x'\n    expect: {value: \"'short'\"}\n"),
        ("value.py", "# %%\n50 * 'x'\n# expect value: 'short'\n"),
        ("value.md", "```pycon\n>>> print('a'); 50 * 'x'\na\n'short'\n```\n"),  # the REPL view
    ],
)
def test_a_value_the_driver_shortened_is_left_with_a_note(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text)
    transcript = run(path, output_limit=10)
    assert "more characters not shown]" in (transcript.results[0].value or "")  # the driver's note
    result = update_recipe(path, transcript)
    assert result.edits == () and path.read_text() == text  # the note is never written as expected text
    assert len(result.notes) == 1 and "output was cut" in result.notes[0]
    whole = update_recipe(path, run(path))  # with room for the whole value, it is written
    assert [edit.new.rsplit("\n", 1)[-1] for edit in whole.edits] == [repr("x" * 50)]


def test_the_driver_writes_the_value_note_that_update_looks_for() -> None:
    from sandrun.driver import clip  # the driver imports nothing of sandrun: it keeps its own copy

    assert clip("x" * 20, 5) == "xxxxx\n" + VALUE_CUT.format(dropped=15)
    assert is_cut(clip("x" * 20, 5)) and not is_cut(clip("x" * 5, 5))


# --- writing --------------------------------------------------------------------------------------------


def test_failed_write_leaves_the_recipe_and_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    path = copy("quick.yaml", tmp_path)
    transcript = run(path)

    def refuse(src: str, dst: str, **dir_fds: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(OSError, match="disk full"):
        update_recipe(path, transcript)
    assert path.read_bytes() == (GOLDEN / "quick.yaml").read_bytes()
    assert os.listdir(tmp_path) == ["quick.yaml"]


def test_a_symlinked_recipe_stays_a_symlink(tmp_path: Path) -> None:
    real = copy("cells.py", tmp_path)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    update_recipe(link, run(link))
    assert link.is_symlink()
    assert real.read_bytes() == (GOLDEN / "cells.after.py").read_bytes()


def test_crlf_line_endings_and_a_bom_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "crlf.py"
    path.write_bytes(b"\xef\xbb\xbf# %%\r\nprint('a')\r\nprint('b')\r\n# expect stdout:\r\n# old\r\n")
    update_recipe(path, run(path))
    assert (
        path.read_bytes()
        == b"\xef\xbb\xbf# %%\r\nprint('a')\r\nprint('b')\r\n# expect stdout:\r\n# a\r\n# b\r\n"
    )


def test_apply_edits_works_from_the_end_and_refuses_overlaps() -> None:
    def edit(start: int, end: int, replacement: str) -> Edit:
        return Edit(start, end, replacement, 0, "cell 1", "stdout", "x:1", "", "")

    assert apply_edits("abcdef", [edit(0, 1, "XX"), edit(4, 6, ""), edit(2, 2, "+")]) == "XXb+cd"
    assert apply_edits("abc", []) == "abc"
    with pytest.raises(SandrunError, match="overlapping"):
        apply_edits("abcdef", [edit(0, 3, "x"), edit(2, 4, "y")])
    with pytest.raises(SandrunError, match="overlapping"):
        apply_edits("abcdef", [edit(2, 2, "x"), edit(2, 2, "y")])
    with pytest.raises(SandrunError, match="outside"):
        apply_edits("abc", [edit(2, 5, "x")])


# --- whatever a cell prints: written so that it reads back, or refused -----------------------------------

NASTY = [
    "plain", "42", "1.50", "1_000", "0x10", "true", "null", "~", "", "- item", "key: value", "a # b", "#x",
    "'quoted'", '"double"', "  leading", "trailing  ", "\ttab", "multi\nline", "\nleading newline",
    "  indented\nlines", "x\n\n\ny", "ctrl \x1b[0m", "cr\rhere", "uni é ✓ 😀", "line\u2028sep", "x\x85y",
    "...", "{a: 1}", "[1, 2]", "|", ">", "*alias", "&anchor", "!tag", "%", "@", "`", "a: b\nc: d",
    "\\backslash", "\ufeffbom", "# expect stdout:", "%% marker", "```", "~~~~", ">>> prompt",
]  # fmt: skip

YAML_STYLES = [
    "    expect:\n      stdout: old\n",
    "    expect:\n      stdout: 'old'\n",
    '    expect:\n      stdout: "old"   # comment\n',
    "    expect:\n      stdout: |\n        old\n\n",
    "    expect:\n      stdout: |-  # comment\n        old\n",
    "    expect:\n      stdout: |+\n        old\n\n",
    "    expect:\n      stdout: >\n        old\n",
    "    expect: {stdout: old, match: exact}\n",
    "    expect:\n      stdout: |2\n          old\n      match: whitespace\n",
]


@pytest.mark.parametrize("new", NASTY)
def test_any_output_round_trips_through_every_yaml_style(new: str, tmp_path: Path) -> None:
    text = "cells:\n" + "".join(f"  - code: print({i})\n{style}" for i, style in enumerate(YAML_STYLES))
    text += "  - code: print('last')\n    expect:\n      stdout: |\n        old"  # no newline at the end
    path = write(tmp_path / "r.yaml", text)
    recipe = load(path)
    update_recipe(path, fake_transcript(recipe, [new + "\n"] * len(recipe.cells)))
    updated = path.read_bytes().decode()
    again = load(path)
    for cell in again.cells:
        assert cell.expect.stdout is not None
        assert cell.expect.stdout.text.rstrip("\n") == new.rstrip("\n")
        assert text_matches(cell.expect.stdout, new + "\n")
    loaded = yaml.safe_load(updated)["cells"]
    assert [c["code"] for c in loaded] == [f"print({i})" for i in range(len(YAML_STYLES))] + ["print('last')"]
    assert loaded[7]["expect"]["match"] == "exact" and loaded[8]["expect"]["match"] == "whitespace"
    assert update_recipe(path, fake_transcript(again, [new + "\n"] * len(again.cells))).edits == ()


@pytest.mark.parametrize("new", NASTY)
def test_any_output_round_trips_through_percent_comments_or_is_refused(new: str, tmp_path: Path) -> None:
    text = (
        "# %%\nprint(1)\n# expect stdout:\n# old\n# expect match: exact\n\n# %%\nprint(2)\n# expect stdout:\n"
    )
    path = write(tmp_path / "r.py", text)
    try:
        update_recipe(path, fake_transcript(load(path), [new, new]))
    except RecipeError as exc:
        assert any(c in new for c in "\r\x85\u2028") or "%%" in new, exc  # lines Python would cut elsewhere
        assert path.read_bytes().decode() == text
        return
    updated = path.read_bytes().decode()
    again = load(path)
    assert [c.expect.stdout.text for c in again.cells] == [new.rstrip("\n")] * 2  # type: ignore[union-attr]
    assert updated.startswith("# %%\nprint(1)\n# expect stdout:\n") and "# expect match: exact\n" in updated


@needs_markdown
@pytest.mark.parametrize("new", NASTY)
def test_any_output_round_trips_through_markdown_or_is_refused(new: str, tmp_path: Path) -> None:
    text = "```python\nprint(1)\n```\n\n```output\nold\n```\n\n```pycon\n>>> print(2)\nold\n>>> 3\n```\n"
    path = write(tmp_path / "r.md", text)
    transcript = fake_transcript(load(path), [new, new, ""])
    transcript = dataclasses.replace(
        transcript, results=(*transcript.results[:2], dataclasses.replace(transcript.results[2], value="3"))
    )
    try:
        update_recipe(path, transcript)
    except RecipeError:  # console output cannot hold a prompt, a `...` line or the closing fence
        assert any(c in new for c in "\r\x85\u2028") or new.startswith((">>>", "...", "```")), new
        assert path.read_bytes().decode() == text
        return
    again = load(path)
    assert again.cells[0].expect.stdout.text.rstrip("\n") == new.rstrip("\n")  # type: ignore[union-attr]
    assert again.cells[1].expect.repl.text.rstrip("\n") == new.rstrip("\n")  # type: ignore[union-attr]


# --- YAML aliases: one expectation shared by several cells -----------------------------------------------

SHARED = (
    "cells:\n  - code: print({a})\n    expect: &e {{stdout: '2'}}\n  - code: print({b})\n    expect: *e\n"
)


def test_an_expectation_shared_through_an_alias_is_updated_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(SHARED.format(a=1, b=1))
    result = update_recipe(path, run(path))  # was: "overlapping edits at offsets 48 and 48"
    assert path.read_text() == SHARED.format(a=1, b=1).replace("'2'", "'1'")
    assert [(e.label, e.new) for e in result.edits] == [("cell 1", "1"), ("cell 2", "1")]
    assert run(path).status is RunStatus.PASSED


def test_an_expectation_shared_by_cells_that_print_differently_is_left_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(SHARED.format(a=1, b=3))
    result = update_recipe(path, run(path))
    assert result.edits == ()
    assert path.read_text() == SHARED.format(a=1, b=3)
    assert len(result.notes) == 2
    assert all("shared through a YAML alias by cell 1 and cell 2" in note for note in result.notes)


@pytest.mark.parametrize(
    "scalar", ["&out wrong", "&out 'wrong'", "&out |\n        wrong", "!!str &out wrong"]
)
def test_an_anchor_on_an_expected_scalar_is_kept(scalar: str, tmp_path: Path) -> None:
    path = tmp_path / "anchored.yaml"
    text = f"cells:\n  - code: print('hello')\n    expect:\n      stdout: {scalar}\n"
    path.write_text(text)
    update_recipe(path, run(path))  # was: the anchor was dropped, or an AssertionError for a block
    updated = path.read_text()
    assert updated.startswith(text[: text.index("wrong")].rstrip("'"))
    assert "hello" in updated and run(path).status is RunStatus.PASSED


TINY = {
    ".yaml": "cells: [print(1)]\n",
    ".py": "# %%\nprint(1)\n",
    ".md": "```python\nprint(1)\n```\n",
    ".rst": ".. code-block:: python\n\n   print(1)\n",
    ".ipynb": '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": '
    '[{"cell_type": "code", "metadata": {}, "source": "print(1)", "outputs": [], "execution_count": null}]}',
}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_format_is_registered_under_the_name_its_reader_writes(suffix: str, tmp_path: Path) -> None:
    """`--update` finds a recipe's rewrite rule and reader again by `Recipe.format`."""
    path = write(tmp_path / f"tiny{suffix}", TINY[suffix.replace(".yml", ".yaml")])
    recipe = load_recipe(path)
    assert recipe.format == SUFFIXES[suffix]
    found = recipe_format(recipe.format)
    assert found.parse(path.read_text(), recipe.path, recipe.sha256) == recipe
    assert (found.rewrite is None) == (recipe.format == "ipynb")  # a notebook's outputs are written whole


def test_the_updater_reaches_the_readers_only_through_their_registry() -> None:
    """A new format adds its rewrite rule beside its reader: `update.py` names no reader module."""
    import ast

    import sandrun.update

    tree = ast.parse(Path(sandrun.update.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    readers = {name for name in imported | names if name and name.startswith("sandrun.readers")}
    assert readers == {"sandrun.readers", "sandrun.readers.lines"}  # the registry, and how lines are cut
    assert "importlib" not in imported | names
