"""Property-based tests of `--update` on generated recipes (YAML in block and flow style, with aliases and
block scalars with indentation indicators; percent with prose cells holding fences; Markdown with nested and
longer fences), each written with CRLF or not, a final newline or not, a BOM or not. Cells really run (the
`process` backend). The round trip: run with wrong expectations, update, run again: it passes; updating
again changes nothing; and only the expected outputs changed, every other byte is where it was.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import event, given, settings

from sandrun.backends import get_backend
from sandrun.errors import RecipeError
from sandrun.model import RunStatus, Transcript
from sandrun.readers import load_recipe
from sandrun.runner import RunOptions, run_recipe
from sandrun.update import update_recipe
from tests.fuzz.strategies import Case, cases

# Each example runs its recipe twice: a few in CI, many more with HYPOTHESIS_PROFILE=long.
ROUND_TRIPS = max(8, settings.default.max_examples // 20)


def run(path: Path) -> Transcript:
    """Run the recipe at `path`, every cell even after failures."""
    return run_recipe(load_recipe(path), get_backend("process"), RunOptions(keep_going=True))


@settings(max_examples=ROUND_TRIPS)
@given(case=cases())
def test_update_round_trips_and_changes_only_expected_output(case: Case) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"recipe{case.suffix}"
        original = case.text.encode("utf-8")
        path.write_bytes(original)
        first = run(path)
        assert first.status is RunStatus.FAILED, [r.reason for r in first.results]
        try:
            result = update_recipe(path, first)
        except RecipeError:
            event("refused")  # allowed, but then nothing is written
            assert path.read_bytes() == original
            return
        assert result.edits and not result.notes, result.notes
        updated = path.read_bytes().decode("utf-8")
        fixed = "".join("(.*?)" if may_change else re.escape(text) for text, may_change in case.pieces)
        assert re.fullmatch(fixed, updated, re.DOTALL), updated

        second = run(path)
        assert second.status is RunStatus.PASSED, [(r.cell.label, r.reason) for r in second.results]
        again = update_recipe(path, second)
        assert again.edits == ()
        assert path.read_bytes().decode("utf-8") == updated
