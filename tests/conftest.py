"""Shared fixtures: a live session in a real sandbox, recipe files on disk, the transcript schema."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, settings

from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.reports.json_report import load_schema
from sandrun.session import CellOutcome, CellRequest, Session

ROOT = Path(__file__).resolve().parents[1]

# Property-based tests: a few hundred examples in all by default (CI), 10,000 per reader with
# HYPOTHESIS_PROFILE=long. Examples are timed by the tests themselves (CPU time), not by Hypothesis.
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=_SLOW_IS_FINE)
settings.register_profile("long", max_examples=10_000, deadline=None, suppress_health_check=_SLOW_IS_FINE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
RECIPES = ROOT / "recipes"


@pytest.fixture(params=["local", "process"])
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A fresh interpreter in each backend that runs on this machine, closed after the test."""
    live = Session.start(get_backend(request.param), SandboxOptions())
    yield live
    live.close()


RunCell = Callable[..., CellOutcome]


@pytest.fixture
def run_cell(session: Session) -> RunCell:
    """Run dedented code as a cell of `recipe.py` starting at line 1 (or `line=`), with a 10 s timeout."""

    def run(code: str, timeout: float = 10, line: int = 1, grace: float = 3.0) -> CellOutcome:
        return session.run(CellRequest(textwrap.dedent(code), "recipe.py", line, timeout), grace)

    return run


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented text to tmp_path/name and return its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def transcript_validator() -> jsonschema.Draft202012Validator:
    """Validates transcripts against the schema shipped in the package."""
    return jsonschema.Draft202012Validator(load_schema())
