"""Sphinx's `:pyversion:` (`:pyversion: > 3.10`): a block for other Pythons than the sandbox's is skipped,
with the option as the reason. The option becomes a condition on `sys.version_info` that the sandbox
evaluates, so it holds for the interpreter the cells run in (`python:`, `--python`), not the host's;
its PEP 440 reading is checked against `packaging`, the library Sphinx reads it with."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import types
from pathlib import Path

import jsonschema
import pytest
from packaging.specifiers import SpecifierSet

from sandrun.errors import RecipeError
from sandrun.readers.pyversion import skip_condition
from sandrun.readers.rst import parse
from sandrun.reports.json_report import transcript_from_dict
from tests.factories import run_json

SPECS = (
    "> 3.10", ">=3.9, <3.13", "== 3.12.*", "!= 3.11.*", "~= 3.10", "~=3.10.2", "<= 3.10", "< 3", "== 3.10",
    "=== 3.10.4", "!=3.10.4", ">=3.10.4.0", "==3.*", "> 3.10.4.1", "~=3.10.4.1", ">3.10.0",
)  # fmt: skip
VERSIONS = ((2, 7, 18), (3, 9, 0), (3, 10, 0), (3, 10, 4), (3, 11, 1), (3, 12, 0), (3, 12, 7), (4, 0, 0))


@pytest.mark.parametrize("spec", SPECS)
def test_the_condition_skips_exactly_the_versions_packaging_does_not_allow(spec: str) -> None:
    condition = skip_condition(spec, "doc.rst", 3)
    for version in VERSIONS:
        fake = types.SimpleNamespace(version_info=(*version, "final", 0))
        skipped = eval(condition.text, {"__builtins__": {"__import__": lambda name, fake=fake: fake}})
        written = ".".join(map(str, version))
        assert skipped is (written not in SpecifierSet(spec)), (spec, version, condition.text)


@pytest.mark.parametrize("spec", ["3.10", "> three", ">= 3.10.*", "~= 3", "> 3.12rc1", "", ">= 3.9,"])
def test_a_value_that_cannot_be_read_is_an_error_at_its_line(spec: str) -> None:
    text = f"Title\n\n.. doctest::\n   :pyversion: {spec}\n\n   >>> 1\n   1\n"
    with pytest.raises(RecipeError) as caught:
        parse(text, "doc.rst", "0" * 64)
    assert caught.value.line == 4 and ":pyversion:" in str(caught.value)


HERE = platform.python_version()
DOC = f"""\
.. doctest::
   :pyversion: == {HERE}

   >>> print("for this Python")
   for this Python

.. doctest::
   :pyversion: != {HERE}

   >>> print("for the others")
   never checked

.. testcode::

   print("pair")

.. testoutput::
   :pyversion: < 3

   not checked on Python 3
"""


def test_blocks_for_other_pythons_are_skipped_with_the_option_as_the_reason(
    tmp_path: Path, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(DOC)
    code, transcript, err = run_json(doc)
    assert code == 0, err
    ended = [(c["line"], c["status"], c["reason"]) for c in transcript["cells"]]
    assert ended == [
        (4, "passed", None),
        (10, "skipped", f"`:pyversion: != {HERE}` (line 8) does not hold for the sandbox's Python"),
        (15, "skipped", "`:pyversion: < 3` (line 18) does not hold for the sandbox's Python"),
    ]
    transcript_validator.validate(transcript)
    assert transcript["cells"][1]["skip_if"]["described"].startswith("`:pyversion: != ")
    assert transcript_from_dict(transcript).results[1].reason == ended[1][2]  # read back whole
    listed = subprocess.run(
        [sys.executable, "-m", "sandrun", "cells", str(doc)], capture_output=True, text=True, check=False
    ).stdout
    assert "(skipped if `:pyversion: < 3` (line 18) does not hold for the sandbox's Python)" in listed


def test_a_bad_value_stops_the_command_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(".. doctest::\n   :pyversion: newer than 3.10\n\n   >>> 1\n   1\n")
    code, _, err = run_json(doc)
    assert code == 2, err
    assert "doc.rst:2" in err and ":pyversion: newer than 3.10" in err and "Traceback" not in err


def other_python() -> tuple[str, str] | None:
    """An interpreter on this machine whose version is not the host's: (path, version)."""
    for name in ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3"):
        for path in (shutil.which(name), f"/usr/bin/{name}"):
            if not path or not Path(path).exists():
                continue
            version = subprocess.run(
                [path, "-c", "import platform; print(platform.python_version())"],
                capture_output=True, text=True, check=False, timeout=30,
            ).stdout.strip()  # fmt: skip
            if version and version != HERE:
                return path, version
    return None


def test_the_version_is_the_sandboxs_interpreters_not_the_hosts(tmp_path: Path) -> None:
    found = other_python()
    if found is None:
        pytest.skip("needs a second Python with another version")
    path, version = found
    doc = tmp_path / "doc.rst"
    doc.write_text(DOC.replace("never checked", "for the others"))
    code, transcript, err = run_json(doc, "--python", path)  # the host runs HERE; the cells run `version`
    assert code == 0, err
    assert transcript["python_version"] == version
    assert [c["status"] for c in transcript["cells"]] == ["skipped", "passed", "skipped"]


def test_with_a_skipif_either_skips_the_block_and_the_reason_names_both() -> None:
    text = ".. doctest::\n   :skipif: flag\n   :pyversion: >= 3.9\n\n   >>> 1\n   1\n"
    (cell,) = parse(text, "doc.rst", "0" * 64).cells
    assert cell.skip_if is not None and cell.skip_if.text.startswith("(flag) or (not (")
    assert cell.skip_if.line == 2  # compiled at the :skipif:'s line, where an error in it points
    assert cell.skip_if.why == (
        "`:skipif: flag` (line 2) is true in the sandbox, "
        "or `:pyversion: >= 3.9` (line 3) does not hold for the sandbox's Python"
    )
