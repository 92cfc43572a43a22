"""How fast sandrun is, next to its yardsticks, measured side by side in one run: the interpreter's own
start, a Jupyter kernel, `jupyter execute` and papermill, pytest-markdown-docs and phmdoctest.

Usage: `python benchmarks/run.py [--backends process,local]`. On first use it creates `benchmarks/.env` (a
virtual environment with the Jupyter tools, the other yardsticks and this repository installed editable) and
re-runs itself there, so that none of them lands in the development environment. A yardstick that does not
install is a row that says "not installed". Later runs need no network. Prints environment information and
one Markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from doc_tools import bench_docs, installed_versions
from measure import (
    PEAKS,
    Row,
    busy_cpu,
    interleaved,
    load_average,
    load_during,
    ms,
    progress,
    table,
    timed,
    timed_command,
    verdict,
)

HERE = Path(__file__).resolve().parent
ENV = HERE / ".env"
ENV_BIN = ENV / "bin"
ENV_STAMP = ENV / ".sandrun-bench-ready"
JUPYTER_PACKAGES = ("nbclient", "nbformat", "ipykernel", "jupyter_client")
YARDSTICKS = ("papermill", "pytest", "pytest-markdown-docs", "phmdoctest")
"""Installed one by one, each allowed to fail (its rows then say so)."""
TRIVIAL_CELLS = ("pass", "x = 1")
CELL_TARGET = 0.1e-3
"""Team target: a trivial cell costs at most this many seconds of wall time on the local backend."""
SPEEDUP_TARGETS = {20: 10.0, 200: 15.0}
"""Team target: `sandrun run` on 20 (200) cells is at least this many times faster than `jupyter execute`."""
VERSION_MARGIN = 20e-3
"""Team target: `sandrun --version` takes at most `import typer` plus this many seconds."""
MANY_RECIPES, MANY_CELLS, MANY_TARGET = 50, 5, 1.2
"""Team target: 50 recipes of 5 cells at `-j 1` in at most 1.2 s."""
PARALLEL_TARGET = 1.8
"""Team target: the same at `-j 2` is at least this many times faster than at `-j 1`."""


def ensure_env() -> None:
    """Create `benchmarks/.env` if it is missing or half-built, then re-exec this script inside it."""
    if Path(sys.prefix).resolve() == ENV.resolve() and "PYTHONPYCACHEPREFIX" in os.environ:
        return
    if not ENV_STAMP.exists():
        print(f"creating {ENV} (first run only; needs the package index)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(ENV)], check=True)
        pip = [str(ENV_BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *JUPYTER_PACKAGES, "-e", str(HERE.parent)], check=True)
        for package in YARDSTICKS:
            if subprocess.run([*pip, package]).returncode:
                print(f"{package} did not install; its rows say so", file=sys.stderr)
        ENV_STAMP.touch()
    # The steady state of a normal install has bytecode caches, also for the editable sandrun; keep them here.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(ENV / "pycache")
    python = str(ENV_BIN / "python")
    os.execve(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]], env)


def usable_backends(names: Sequence[str], python: str, rows: list[Row]) -> list[str]:
    """The backends that `get_backend` accepts and that can start a session; a row explains each other one."""
    from sandrun.backends import get_backend
    from sandrun.backends.base import SandboxOptions
    from sandrun.session import Session

    usable = []
    for name in names:
        try:
            Session.start(get_backend(name), SandboxOptions(python=python)).close()
        except Exception as exc:  # a rejected name (UsageError), a failed start, or a backend mid-rewrite
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            rows.append(Row("backend", f"sandrun/{name}", note=f"skipped: {reason}"))
            continue
        usable.append(name)
    return usable


def bench_session(name: str, python: str, rows: list[Row], cells: int, warmup: int) -> None:
    """Session start + close, and the round trip of trivial cells in a warm session (60 s cell timeout)."""
    from sandrun.backends import get_backend
    from sandrun.backends.base import SandboxOptions
    from sandrun.session import CellRequest, Session

    backend, runner, options = get_backend(name), f"sandrun/{name}", SandboxOptions(python=python)
    progress(f"{runner}: session start")
    rows.append(
        Row("session start + close", runner, timed(lambda: Session.start(backend, options).close(), 20))
    )
    session = Session.start(backend, options)
    try:
        for code in TRIVIAL_CELLS:
            progress(f"{runner}: {cells} x {code!r}")
            for _ in range(warmup):
                session.run(CellRequest(code, "bench.py", 1, 60.0))
            samples = timed(lambda c=code: session.run(CellRequest(c, "bench.py", 1, 60.0)), cells)
            row = Row(f"cell `{code}`, warm Session", runner, samples)
            if name == "local":
                row.target = f"≤ {ms(CELL_TARGET)}"
                row.verdict = verdict(statistics.median(samples) <= CELL_TARGET)
            rows.append(row)
    finally:
        session.close()


def bench_kernel(rows: list[Row], cells: int, warmup: int) -> None:
    """Kernel start, and the round trip of trivial cells: execute, then wait for idle and for the reply."""
    from jupyter_client.manager import KernelManager

    progress("jupyter kernel: start")
    started = time.perf_counter()
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    rows.append(Row("kernel start (once)", "jupyter", [time.perf_counter() - started]))

    def execute(code: str) -> None:
        msg_id = client.execute(code, store_history=False)
        while True:
            msg = client.get_iopub_msg(timeout=30)
            state = msg["content"].get("execution_state")
            if msg["parent_header"].get("msg_id") == msg_id and state == "idle":
                break
        while client.get_shell_msg(timeout=30)["parent_header"].get("msg_id") != msg_id:
            pass

    try:
        for code in TRIVIAL_CELLS:
            progress(f"jupyter kernel: {cells} x {code!r}")
            for _ in range(warmup):
                execute(code)
            rows.append(Row(f"cell `{code}`, warm", "jupyter", timed(lambda c=code: execute(c), cells)))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def write_inputs(folder: Path, count: int) -> tuple[Path, Path]:
    """The same trivial-but-real cells (chained assignments, a print every fifth) as recipe and notebook."""
    import nbformat
    import yaml

    cells = [f"x{i} = {i} * 2" + (f" + x{i - 1}" if i else "") for i in range(count)]
    cells = [code + (f"\nprint(x{i})" if i % 5 == 4 else "") for i, code in enumerate(cells)]
    recipe, path = folder / f"cells{count}.yaml", folder / f"cells{count}.ipynb"
    recipe.write_text(yaml.safe_dump({"name": f"{count} cells", "cells": cells}))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return recipe, path


def sandrun_argv(name: str, python: str, *paths: Path) -> list[str]:
    """`sandrun run PATHS -q` on one backend and interpreter (named only when it is not sandrun's default,
    the interpreter it is installed in: as a user runs it)."""
    named = ["--python", python] if python != sys.executable else []
    return [str(ENV_BIN / "sandrun"), "run", *map(str, paths), "-q", "--backend", name, *named]


def bench_startup(python: str, rows: list[Row], runs: int) -> None:
    """`sandrun --version` next to the interpreter's floor and the import of the command-line library."""
    progress(f"start-up x {runs}")
    floor = timed_command([python, "-c", "pass"], runs)
    typer_ = timed_command([python, "-c", "import typer"], runs)
    version = timed_command([str(ENV_BIN / "sandrun"), "--version"], runs, "sandrun --version")
    rows.append(Row("`python -c pass`", "python", floor))
    rows.append(Row("`python -c 'import typer'`", "python", typer_))
    limit = statistics.median(typer_) + VERSION_MARGIN
    ok = statistics.median(version) <= limit
    rows.append(
        Row("`sandrun --version`", "sandrun", version, target="≤ import typer + 20 ms", verdict=verdict(ok))
    )


def bench_whole_runs(backends: Sequence[str], python: str, folder: Path, rows: list[Row], runs: int) -> None:
    """`sandrun run recipe.yaml -q` per backend against `jupyter execute notebook.ipynb`, as processes."""
    whole: dict[tuple[str, int], float] = {}
    for size in (20, 200):
        recipe, notebook = write_inputs(folder, size)
        what = f"whole run, {size} cells"
        progress(f"jupyter execute: {size} cells x {runs} (+1 warm-up)")
        jupyter = timed_command(
            [str(ENV_BIN / "jupyter"), "execute", str(notebook)], runs + 1, "jupyter execute"
        )
        rows.append(Row(what, "jupyter execute", jupyter[1:]))
        bench_papermill(notebook, folder, rows, runs, what)
        for name in backends:
            progress(f"sandrun/{name} run: {size} cells x {runs} (+1 warm-up)")
            argv = sandrun_argv(name, python, recipe)
            try:
                samples = timed_command(argv, runs + 1, f"sandrun/{name} run, {size} cells")[1:]
            except RuntimeError as exc:
                rows.append(Row(what, f"sandrun/{name}", note=f"failed: {exc}"))
                continue
            rows.append(Row(what, f"sandrun/{name}", samples))
            whole[name, size] = statistics.median(samples)
            ratio = statistics.median(jupyter[1:]) / statistics.median(samples)
            goal = SPEEDUP_TARGETS[size]
            rows.append(Row(f"speedup, {size} cells", f"sandrun/{name} vs jupyter", note=f"{ratio:.1f}x",
                            target=f"≥ {goal:g}x", verdict=verdict(ratio >= goal)))  # fmt: skip
    recipe, _ = write_inputs(folder, 2000)
    for name in backends:
        if (name, 20) not in whole:
            continue
        progress(f"sandrun/{name} run: 2000 cells x {runs}")
        argv = sandrun_argv(name, python, recipe)
        samples = timed_command(argv, runs, f"sandrun/{name} run, 2000 cells")
        rows.append(Row("whole run, 2000 cells", f"sandrun/{name}", samples))
        per_cell = (statistics.median(samples) - whole[name, 20]) / 1980
        row = Row("per cell: (2000 cells - 20 cells) / 1980", f"sandrun/{name}", note=ms(per_cell))
        if name == "local":
            row.target, row.verdict = f"≤ {ms(CELL_TARGET)}", verdict(per_cell <= CELL_TARGET)
        rows.append(row)


def bench_papermill(notebook: Path, folder: Path, rows: list[Row], runs: int, what: str) -> None:
    """`papermill in.ipynb out.ipynb` on the notebook `jupyter execute` runs, if papermill installed."""
    papermill = ENV_BIN / "papermill"
    if not papermill.exists():
        rows.append(Row(what, "papermill", note="not installed"))
        return
    progress(f"papermill: {notebook.name} x {runs} (+1 warm-up)")
    argv = [str(papermill), str(notebook), str(folder / "out.ipynb"), "--no-progress-bar", "-k", "python3"]
    try:
        rows.append(Row(what, "papermill", timed_command(argv, runs + 1, "papermill")[1:]))
    except RuntimeError as exc:
        rows.append(Row(what, "papermill", note=f"failed: {exc}"))


def bench_notebook_runs(
    backends: Sequence[str], python: str, folder: Path, rows: list[Row], runs: int
) -> None:
    """`sandrun run notebook.ipynb -q` against `jupyter execute notebook.ipynb`: the very same file."""
    _, notebook = write_inputs(folder, 20)
    progress(f"jupyter execute: the 20-cell notebook x {runs} (+1 warm-up)")
    jupyter = timed_command([str(ENV_BIN / "jupyter"), "execute", str(notebook)], runs + 1)[1:]
    rows.append(Row("whole run, 20-cell .ipynb", "jupyter execute", jupyter))
    for name in backends:
        progress(f"sandrun/{name} run: the 20-cell notebook x {runs} (+1 warm-up)")
        samples = timed_command(sandrun_argv(name, python, notebook), runs + 1)[1:]
        rows.append(Row("whole run, 20-cell .ipynb", f"sandrun/{name}", samples))
        ratio, goal = statistics.median(jupyter) / statistics.median(samples), SPEEDUP_TARGETS[20]
        rows.append(Row("speedup, 20-cell .ipynb", f"sandrun/{name} vs jupyter", note=f"{ratio:.1f}x",
                        target=f"≥ {goal:g}x", verdict=verdict(ratio >= goal)))  # fmt: skip


def bench_parallel(backends: Sequence[str], python: str, folder: Path, rows: list[Row], runs: int) -> None:
    """50 recipes of 5 cells, one at a time (-j 1) against two at a time (-j 2)."""
    recipe, _ = write_inputs(folder, MANY_CELLS)
    many = folder / "many"
    many.mkdir()
    for i in range(MANY_RECIPES):
        (many / f"r{i:02d}.yaml").write_text(recipe.read_text())
    what = f"{MANY_RECIPES} recipes x {MANY_CELLS} cells"
    for name in backends:
        medians = {}
        for jobs in (1, 2):
            progress(f"sandrun/{name}: {what} -j {jobs} x {runs}")
            argv = [*sandrun_argv(name, python, many), "-j", str(jobs)]
            before = busy_cpu()
            samples = timed_command(argv, runs, f"sandrun/{name} {what}, -j {jobs}")
            cpu = (busy_cpu() - before) / (runs * MANY_RECIPES)
            row = Row(f"{what}, -j {jobs}", f"sandrun/{name}", samples)
            if jobs == 1 and name == "local":
                row.target = f"≤ {MANY_TARGET:g} s"
                row.verdict = verdict(statistics.median(samples) <= MANY_TARGET)
            rows.append(row)
            if jobs == 1 and cpu > 0:
                # With the next recipes' sandboxes booting ahead, -j 1 already keeps every CPU busy: this
                # is the floor of what -j 2 can gain (the whole machine's CPU, idle time excluded).
                rows.append(Row(f"{what}, -j 1: whole machine's CPU per recipe", f"sandrun/{name}",
                                note=f"{ms(cpu)} (of {ms(statistics.median(samples) / MANY_RECIPES)} "
                                f"wall, {os.cpu_count()} CPUs)"))  # fmt: skip
            medians[jobs] = statistics.median(samples)
        ratio = medians[1] / medians[2]
        target = f"≥ {PARALLEL_TARGET:g}x"
        rows.append(Row("speedup, -j 2 vs -j 1", f"sandrun/{name}", note=f"{ratio:.2f}x", target=target,
                        verdict=verdict(ratio >= PARALLEL_TARGET)))  # fmt: skip


def bench_early(python: str, folder: Path, rows: list[Row], runs: int) -> None:
    """A 20-cell recipe with the sandbox started before the command line is read, and without
    (SANDRUN_EARLY=0), alternated run by run."""
    recipe, _ = write_inputs(folder, 20)
    argv = sandrun_argv("local", python, recipe)
    progress(f"sandrun/local, 20 cells, early start on and off, alternated x {runs}")
    on, off = interleaved([(argv, None), (argv, {"SANDRUN_EARLY": "0"})], runs + 1)
    rows.append(Row("whole run, 20 cells, alternated", "sandrun/local", on[1:]))
    rows.append(Row("whole run, 20 cells, alternated", "sandrun/local, SANDRUN_EARLY=0", off[1:]))


def memory_rows(rows: list[Row]) -> None:
    """Peak resident memory of the commands measured above (the largest process of each run)."""
    for what, peak in PEAKS.items():
        rows.append(Row("peak memory (max RSS)", what, note=f"{peak / (1 << 20):.1f} MiB"))


def environment(python: str) -> list[str]:
    """What the numbers were measured on."""
    import sandrun

    versions = ", ".join(f"{p} {metadata.version(p)}" for p in JUPYTER_PACKAGES)
    return [
        f"- python {platform.python_version()}; CPUs: {os.cpu_count()}; "
        f"kernel: {platform.system()} {platform.release()} {platform.machine()}",
        f"- sandrun {sandrun.__version__}; {versions}",
        f"- yardsticks: {installed_versions(YARDSTICKS)}",
        f"- cells run in {python}; the Jupyter kernel in {sys.executable}",
        f"- load average before: {load_average()} (other work on the machine skews the numbers)",
    ]


def main() -> None:
    """Parse the options, make sure we run inside `benchmarks/.env`, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="local,process", help="comma-separated sandrun backends")
    parser.add_argument("--cells", type=int, default=2000, help="trivial cells timed per sandrun session")
    parser.add_argument("--kernel-cells", type=int, default=300, help="trivial cells timed on the kernel")
    parser.add_argument("--runs", type=int, default=5, help="whole-process runs per tool and size (medians)")
    args = parser.parse_args()
    ensure_env()

    started, rows = time.perf_counter(), list[Row]()
    with tempfile.TemporaryDirectory(prefix="sandrun-bench-") as tmp:
        python = sys.executable  # what sandrun uses by default: the interpreter it is installed in
        header = environment(python)
        bench_startup(python, rows, args.runs * 3)
        backends = usable_backends([b.strip() for b in args.backends.split(",") if b.strip()], python, rows)
        for name in backends:
            bench_session(name, python, rows, args.cells, warmup=200)
        bench_kernel(rows, args.kernel_cells, warmup=30)
        bench_whole_runs(backends, python, Path(tmp), rows, args.runs)
        bench_notebook_runs(backends, python, Path(tmp), rows, args.runs)
        if "local" in backends:
            bench_early(python, Path(tmp), rows, args.runs * 2)
        bench_parallel(backends, python, Path(tmp), rows, args.runs)
        if "local" in backends:
            bench_docs(
                ENV_BIN, lambda *paths: sandrun_argv("local", python, *paths), Path(tmp), rows, args.runs
            )
        memory_rows(rows)

    print("## sandrun benchmark\n")
    print("\n".join(header))
    print(f"- load average after: {load_average()}; during: {load_during()}")
    print(f"- took {time.perf_counter() - started:.0f} s\n")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
