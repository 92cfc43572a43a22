"""Fixtures for the security suite: real `local` sandboxes, always closed, whatever a test did to them.

Every test here attacks a sandbox for real and checks that the attack failed. Tests are skipped, with the
reason, when bubblewrap cannot create a sandbox on this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.session import Session
from tests.security.sandboxes import StartSandbox, local_unavailable


@pytest.fixture
def sandbox() -> Iterator[StartSandbox]:
    """Start `local` sandboxes with `SandboxOptions(**kwargs)` (backend="process" for a control run).

    Every session started is closed at teardown, whatever the test did to it.
    """
    started: list[Session] = []

    def start(backend: str = "local", **options: Any) -> Session:
        if backend == "local" and (reason := local_unavailable()):
            pytest.skip(f"the local backend is unavailable: {reason}")
        live = Session.start(get_backend(backend), SandboxOptions(**options))
        started.append(live)
        return live

    yield start
    for live in started:
        live.close()
