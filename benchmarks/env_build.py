"""What building `packages:` in a sandbox costs: `python benchmarks/env_build.py [--repeat N]`.

Builds the same hand-made wheel (no index: PIP_NO_INDEX=1) into a fresh cache N times in the `local`
backend's build sandbox and N times on the host (as the `process` backend does), and prints the medians,
the reuse of a cached environment, and the checks of `python:` that every local sandbox start now makes.
Wall-clock times: compare runs only from the same, quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_environments import make_wheel

from sandrun.backends.local import LocalBackend
from sandrun.backends.local_host import python_roots
from sandrun.environments import EnvironmentSpec, ensure_environment


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    """The median wall time of `action` over `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Measure and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    os.environ["PIP_NO_INDEX"] = "1"
    sandbox = LocalBackend()
    if reason := sandbox.unavailable_reason():
        sys.exit(f"the local backend is unavailable: {reason}")
    with tempfile.TemporaryDirectory() as folder:
        spec = EnvironmentSpec((str(make_wheel(Path(folder))),), sys.executable)
        runs = iter(range(10**6))

        def build(where: LocalBackend | None) -> Callable[[], object]:
            return lambda: ensure_environment(spec, Path(folder, f"cache{next(runs)}"), sandbox=where)

        inside = median_seconds(build(sandbox), repeat)
        host = median_seconds(build(None), repeat)
        cache = Path(folder, "cache-reuse")
        ensure_environment(spec, cache, sandbox=sandbox)
        reuse = median_seconds(lambda: ensure_environment(spec, cache, sandbox=sandbox), 200)
    roots = median_seconds(lambda: python_roots(sys.executable), 200)
    print(f"load average {os.getloadavg()[0]:.2f}, uid {os.geteuid()}, {repeat} builds each\n")
    print("| what | median |\n|---|---|")
    print(f"| build in the sandbox | {inside:.2f} s |")
    print(f"| build on the host | {host:.2f} s |")
    print(f"| sandbox overhead | {inside - host:+.2f} s |")
    print(f"| reuse of a cached environment | {reuse * 1000:.2f} ms |")
    print(f"| `python:` checks per sandbox start | {roots * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
