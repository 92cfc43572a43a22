"""`sandrun.Session` from Python: the time to a first result, and 1,000 small calls.

Usage: `python benchmarks/session_api.py [--backends local,process] [--calls 1000] [--repeat 3]`. For each
backend it measures, in this process: `import sandrun` (in a fresh interpreter, against `python -c pass`);
the start of a Session (sandbox and driver up); the seed example right after the start (`print('hello')`,
`x = 10`, `y = 5`, `x + y`, `1/0`: five results); and `--calls` calls of `s.run("x += 1")` in a warm
session (best of `--repeat`). Team targets: `import sandrun` under 30 ms beyond the interpreter's start, the
seed example under 100 ms after the start, 1,000 calls under 0.5 s. Prints one Markdown table on stdout, and
the load average before and after (the numbers are wall-clock times: compare runs on a quiet machine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import sandrun

SEED = ("print('hello')", "x = 10", "y = 5", "x + y", "1/0")
TARGETS = {"import": 0.030, "seed": 0.100, "calls": 0.5}


def import_cost() -> float:
    """Seconds `import sandrun` adds to a fresh interpreter (median of 7, each against `-c pass`)."""

    def best(code: str) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]

    return max(0.0, best("import sandrun") - best("pass"))


def measure(backend: str, calls: int, repeat: int) -> dict[str, float]:
    """Start, seed example and `calls` small calls on one backend."""
    started = time.perf_counter()
    with sandrun.Session(backend=backend) as session:
        start = time.perf_counter() - started
        before = time.perf_counter()
        results = [session.run(code) for code in SEED]
        seed = time.perf_counter() - before
        assert results[3].value == "15" and results[4].error and results[4].error.type == "ZeroDivisionError"
        best = float("inf")
        for _ in range(repeat):
            before = time.perf_counter()
            for _ in range(calls):
                session.run("x += 1")
            best = min(best, time.perf_counter() - before)
    return {"start": start, "seed": seed, "calls": best}


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="local,process")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    cost = import_cost()
    rows = [f"| `import sandrun` (beyond `python -c pass`) | {cost * 1000:.1f} ms | < 30 ms | "
            f"{'pass' if cost < TARGETS['import'] else 'miss'} |"]  # fmt: skip
    for backend in args.backends.split(","):
        try:
            numbers = measure(backend, args.calls, args.repeat)
        except sandrun.SandrunError as exc:
            rows.append(f"| {backend} | skipped: {exc} | | |")
            continue
        seed_ok = "pass" if numbers["seed"] < TARGETS["seed"] else "miss"
        calls_ok = "pass" if numbers["calls"] < TARGETS["calls"] * args.calls / 1000 else "miss"
        rows += [
            f"| {backend}: Session start | {numbers['start'] * 1000:.0f} ms | | |",
            f"| {backend}: seed example after the start (5 results) | {numbers['seed'] * 1000:.1f} ms | "
            f"< 100 ms | {seed_ok} |",
            f"| {backend}: {args.calls} x `s.run('x += 1')` | {numbers['calls']:.3f} s | "
            f"< {TARGETS['calls'] * args.calls / 1000:g} s | {calls_ok} |",
        ]
    print("| what | time | target | |\n|---|---|---|---|")
    print("\n".join(rows))
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
