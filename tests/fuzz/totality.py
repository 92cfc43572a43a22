"""The promise every reader keeps on any input: a `Recipe`, or a `RecipeError` with a line in the file and a
one-line message, within a second of CPU time."""

from __future__ import annotations

import time

from sandrun.errors import RecipeError
from sandrun.model import Recipe
from sandrun.readers import Parser, parse_bytes

# CPU time, not wall time, so that a loaded machine does not make the bound flaky. Recipes a user writes
# are read in milliseconds; a quadratic reader takes seconds on the tens of kilobytes generated here.
CPU_SECONDS = 1.0


def read_within_bound(data: bytes, parser: Parser, path: str = "recipe") -> Recipe | RecipeError:
    """Read `data` as the CLI does; fail the test on any other exception, a slow read, or an error that
    does not say where (a line of the file) and what (one line of text)."""
    start = time.process_time()
    try:
        outcome: Recipe | RecipeError = parse_bytes(data, path, parser)
    except RecipeError as exc:
        outcome = exc
    elapsed = time.process_time() - start
    assert elapsed < CPU_SECONDS, f"reading {len(data)} bytes took {elapsed:.2f} s of CPU"
    if isinstance(outcome, RecipeError):
        lines = data.count(b"\n") + data.count(b"\r") + 1  # an upper bound whatever the line endings
        assert outcome.line is not None and 1 <= outcome.line <= lines, (outcome.line, str(outcome))
        assert "\n" not in outcome.message, outcome.message
        assert outcome.path == path
    return outcome
