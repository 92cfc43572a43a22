"""What the benchmarks share: timing commands and functions, peak memory, the load, and the result table."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass
class Row:
    """One line of the result table: samples in seconds, or a note instead."""

    what: str
    runner: str
    samples: list[float] | None = None
    note: str = ""
    target: str = ""
    verdict: str = ""


def ms(seconds: float) -> str:
    """A duration in milliseconds, with more decimals for the small ones."""
    value = seconds * 1000
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def verdict(ok: bool) -> str:
    """The pass/miss column."""
    return "pass" if ok else "**miss**"


def timed(action: Callable[[], object], runs: int) -> list[float]:
    """Wall time of `runs` calls of `action`, in seconds."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


PEAKS: dict[str, int] = {}
"""Largest resident set (bytes) seen per command name: the process or a child it waited for."""


MEASURE = (
    "import os,sys\n"
    "pid=os.fork()\n"
    "if pid==0:\n"
    " os.execv(sys.argv[1],sys.argv[1:])\n"
    "_,status,usage=os.wait4(pid,0)\n"
    "os.write(2,b'\\nmaxrss=%d\\n'%usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)
"""Runs a command and reports its peak resident set. A process inherits the peak of the one it was forked
from, so the command is forked from this small interpreter, never from the benchmark itself."""


def run_quiet(argv: Sequence[str], peak: str = "", env: Mapping[str, str] | None = None) -> None:
    """Run a command to completion; a failure raises `RuntimeError` with the last line it printed.

    With `peak`, the largest resident set of the process (and of the children it reaped) is kept under
    that name in `PEAKS`. `env`: variables added to this process's environment for the command."""
    command = [sys.executable, "-c", MEASURE, *argv] if peak else list(argv)
    environ = {**os.environ, **env} if env else None
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environ)
    lines = done.stderr.strip().splitlines() or ["(no output)"]
    if peak and lines[-1].startswith("maxrss="):
        PEAKS[peak] = max(PEAKS.get(peak, 0), int(lines.pop().partition("=")[2]) * 1024)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {(lines or ['(no output)'])[-1]}")


def timed_command(
    argv: Sequence[str], runs: int, peak: str = "", env: Mapping[str, str] | None = None
) -> list[float]:
    """Wall time of `runs` runs of a command, in seconds (the peak memory kept under `peak`)."""
    return timed(lambda: run_quiet(argv, peak, env), runs)


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat): the difference around a
    command counts every process it started, also those it never waited for (a sandbox's own), and the
    kernel's work for it. 0.0 where /proc/stat cannot be read."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def interleaved(
    commands: Sequence[tuple[Sequence[str], Mapping[str, str] | None]], runs: int
) -> list[list[float]]:
    """Wall times of several commands (each with its extra environment), run in turn `runs` times: A B A
    B..., so that a change in the machine's load falls on all of them alike."""
    samples: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for index, (argv, env) in enumerate(commands):
            samples[index] += timed_command(argv, 1, env=env)
    return samples


LOADS: list[float] = []
"""The 1-minute load average at each progress line: what else the machine was doing while measuring."""


def progress(text: str) -> None:
    """A progress line on stderr; notes the load."""
    LOADS.append(os.getloadavg()[0])
    print(f"... {text}", file=sys.stderr, flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def load_during() -> str:
    """The 1-minute load average seen during the run: lowest, median, highest."""
    if not LOADS:
        return "not sampled"
    return f"{min(LOADS):.2f} / {statistics.median(LOADS):.2f} / {max(LOADS):.2f} (low / median / high)"


def table(rows: Sequence[Row]) -> list[str]:
    """The rows as a Markdown table."""
    lines = [
        "| measurement | runner | median | p95 | n | target | result |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        if row.samples:
            n = len(row.samples)  # p95: the 19th of 20-quantiles; for fewer than 20 samples the largest
            top = statistics.quantiles(row.samples, n=20)[18] if n >= 20 else max(row.samples)
            median, high = ms(statistics.median(row.samples)), ms(top) if n >= 5 else ""
        else:
            median, high, n = row.note.replace("|", "\\|"), "", ""
        cells = (row.what, row.runner, median, high, n, row.target, row.verdict)
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines
