"""One validation of expectations for every reader: the same rule gives the same error, at the line where the
expectation is written, in YAML, percent and Markdown recipes (and on the command line: exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sandrun.app import app
from sandrun.errors import RecipeError
from sandrun.readers import load_recipe

# (rule, {suffix: (text, line of the broken rule)}), the message every reader must give
RULES = [
    (
        "error_message needs an error",
        {
            ".yaml": ("cells:\n  - code: pass\n    expect:\n      error_message: nope\n", 4),
            ".py": ("# %%\npass\n# expect error_message: nope\n", 3),
        },
    ),
    (
        "is not an exception name",
        {
            ".yaml": ("cells:\n  - code: pass\n    expect: {error: 1Error}\n", 3),
            ".py": ("# %%\npass\n# expect error: 1Error\n", 3),
            ".md": ("# T\n\n```python raises=1Error\npass\n```\n", 3),
        },
    ),
    (
        "unknown match mode 'fuzzy'",
        {
            ".yaml": ("cells:\n  - code: pass\n    expect: {stdout: x, match: fuzzy}\n", 3),
            ".py": ("# %%\npass\n# expect match: fuzzy\n", 3),
            ".md": ("```python match=fuzzy\npass\n```\n", 1),
        },
    ),
    (
        "is not a valid regular expression",
        {
            ".yaml": ("cells:\n  - code: pass\n    expect:\n      error: E\n      error_message: (\n", 5),
            ".py": ("# %%\npass\n# expect error: E\n# expect error_message: (\n", 4),
            ".md": ("```python match=regex\npass\n```\n\n```output\n(\n```\n", 6),
        },
    ),
    (
        "timeout must be more than 0",
        {
            ".yaml": ("timeout: 0\ncells: [pass]\n", 1),
            ".md": ("```python timeout=0\npass\n```\n", 1),
        },
    ),
]
CASES = [
    pytest.param(suffix, text, line, message, id=f"{message[:20]}{suffix}")
    for message, by_suffix in RULES
    for suffix, (text, line) in by_suffix.items()
]


@pytest.mark.parametrize(("suffix", "text", "line", "message"), CASES)
def test_every_reader_refuses_the_same_broken_rule_at_its_line(
    tmp_path: Path, suffix: str, text: str, line: int, message: str
) -> None:
    path = tmp_path / f"recipe{suffix}"
    path.write_text(text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
    assert message in str(caught.value)


def test_a_percent_error_message_without_an_error_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "r.py"
    path.write_text("# %%\nraise ValueError('x')\n# expect error_message: nope\n")
    result = CliRunner().invoke(app, ["run", str(path), "--backend", "process"])
    assert result.exit_code == 2, result.output
    assert f"{path}:3: error_message needs an error" in result.output
