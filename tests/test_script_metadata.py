"""PEP 723 inline script metadata in a percent-format recipe: `dependencies` are its packages, and
`[tool.sandrun]` takes a YAML recipe's top-level keys, checked by the same rules, errors at their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.errors import RecipeError
from sandrun.model import RunStatus
from sandrun.readers import load_recipe
from sandrun.readers.percent import parse
from sandrun.runner import RunOptions, run_recipe

SCRIPT = """\
# /// script
# requires-python = ">=3.11"
# dependencies = ["rich>=13"]
#
# [tool.sandrun]
# timeout = 30
# env = {GREETING = "hello"}
# ///

# %%
import os
print(os.environ["GREETING"])
# expect stdout:
# hello
"""


def test_metadata_becomes_settings() -> None:
    recipe = parse(SCRIPT, "s.py", "0" * 64)
    assert (recipe.packages, recipe.timeout, dict(recipe.env)) == (("rich>=13",), 30.0, {"GREETING": "hello"})


def test_a_script_with_settings_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.py"
    path.write_text(SCRIPT.replace('# dependencies = ["rich>=13"]\n', ""))
    assert run_recipe(load_recipe(path), get_backend("process"), RunOptions()).status is RunStatus.PASSED


@pytest.mark.parametrize(
    ("replace", "line", "message"),
    [
        (("timeout = 30", "timeout = 0"), 6, "timeout must be more than 0"),
        (("timeout = 30", "timout = 3"), 6, "did you mean 'timeout'"),
        (("timeout = 30", "timeout = ["), 1, "invalid TOML"),
        (('["rich>=13"]', '["-e ."]'), 3, "is not a requirement"),
    ],
)
def test_a_wrong_setting_is_refused_at_its_line(replace: tuple[str, str], line: int, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        parse(SCRIPT.replace(*replace), "s.py", "0" * 64)
    assert str(caught.value).startswith(f"s.py:{line}: "), str(caught.value)
    assert message in str(caught.value)
