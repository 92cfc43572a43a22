"""The README's Python API example and `examples/agent_loop.py` run, on the host, and print what they say."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.security.sandboxes import local_unavailable


@pytest.fixture(autouse=True)
def local_sandbox() -> None:
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")


def readme_example() -> tuple[str, str]:
    """The Python block of the README's "From Python" section and the output block after it."""
    section = (
        (ROOT / "README.md").read_text(encoding="utf-8").split("## From Python", 1)[1].split("\n## ", 1)[0]
    )
    found = re.search(r"```python\n(.*?)```\n\n```output\n(.*?)```", section, re.S)
    assert found, "the README's From Python section has no python block followed by an output block"
    return found.group(1), found.group(2)


def test_the_readme_session_example_prints_what_the_readme_says() -> None:
    code, expected = readme_example()
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == expected


def test_the_agent_loop_example_finds_its_answer() -> None:
    for backend in ("local", "process"):
        ran = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "agent_loop.py"), "--backend", backend],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        assert "! NameError: name 'seive' is not defined" in ran.stdout
        assert ran.stdout.splitlines()[-1] == "answer: 1229 primes, the largest 9973"
