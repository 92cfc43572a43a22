"""Peak host memory of `sandrun run` while a cell writes one byte at a time for a while.

Usage: `python benchmarks/output_memory.py [--seconds 30] [--backends local,process]`. For each backend it
runs, as separate processes, a recipe whose cell only prints one line (the baseline) and one whose cell calls
`sys.stdout.write("q")` in a loop for `--seconds`, both under the default `--output-limit`, and reports the
peak resident memory of the sandrun process itself (`ru_maxrss`; the sandbox is not counted). Team target:
under 64 MiB peak. Prints one Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1 << 20
TARGET = 64 * MiB
PEAK = """
import atexit, resource, sys
atexit.register(lambda: print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))
from sandrun.__main__ import main
main()
"""
WRITER = """\
cells:
  - |
    import sys, time
    end = time.monotonic() + {seconds}
    writes = 0
    while time.monotonic() < end:
        for _ in range(1000):
            sys.stdout.write("q")
        writes += 1000
    print(f"\\n{{writes}} writes", file=sys.stderr)
"""


def peak_rss(recipe: Path, backend: str) -> tuple[int, float, str]:
    """Peak RSS in bytes of `sandrun run recipe`, its wall time, and the last line it wrote on stderr."""
    argv = [sys.executable, "-c", PEAK, "run", str(recipe), "--backend", backend, "-q", "--format", "json"]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    found = re.search(r"^PEAK (\d+)$", result.stderr, re.MULTILINE)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"sandrun failed ({result.returncode}): {result.stderr[-500:]}")
    writes = re.search(r"\\n(\d+) writes", result.stdout)
    return int(found[1]) * 1024, elapsed, writes[1] if writes else "?"


def main() -> None:
    """Measure each backend and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the cell writes")
    parser.add_argument("--backends", default="local,process", help="comma-separated sandrun backends")
    args = parser.parse_args()
    rows = [
        "| backend | baseline peak | peak, one-byte writes | writes | wall time | target | result |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="sandrun-bench-") as tmp:
        quiet, writer = Path(tmp, "quiet.yaml"), Path(tmp, "writer.yaml")
        quiet.write_text("cells:\n  - print('q')\n")
        writer.write_text(WRITER.format(seconds=args.seconds))
        for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
            print(f"{backend}: {args.seconds:g} s of one-byte writes", file=sys.stderr)
            baseline, _, _ = peak_rss(quiet, backend)
            peak, elapsed, writes = peak_rss(writer, backend)
            verdict = "pass" if peak < TARGET else "MISS"
            rows.append(
                f"| {backend} | {baseline / MiB:.1f} MiB | {peak / MiB:.1f} MiB | {writes} | {elapsed:.1f} s "
                f"| < {TARGET // MiB} MiB | {verdict} |"
            )
    print(f"## Host memory under one-byte writes ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
