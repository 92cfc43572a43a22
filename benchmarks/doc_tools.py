"""A directory of Markdown documents checked by sandrun, pytest-markdown-docs and phmdoctest: the same files.

The documents are written here, shaped like a library's user guide: headings and prose, and Python blocks
that each import what they use, compute something small and print it, followed by the output they print.
Every block stands alone, because pytest-markdown-docs and phmdoctest run each block in a namespace of its
own, while sandrun runs a document's blocks one after another in one interpreter. Every tool must pass
every document, so that no tool is timed on a failure path. Only sandrun checks the printed output; the
other two check that the code runs. sandrun runs each document in a sandbox; the other two run the code
in the pytest process itself, with no isolation.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from measure import Row, progress, run_quiet, timed, timed_command, verdict

DOCS, BLOCKS = 20, 8
"""Documents, and Python blocks in each."""
TARGET = 2.0
"""Team target: sandrun checks the directory at least this many times faster than pytest-markdown-docs."""

BLOCK_SHAPES = (
    ("import json", "print(json.dumps({{'n': {i}, 'ok': True}}, sort_keys=True))"),
    ("from collections import Counter", "print(Counter('abracadabra{i}').most_common(1))"),
    ("import textwrap", "print(textwrap.shorten('word ' * {i} + 'end', width=12))"),
    ("from fractions import Fraction", "print(Fraction({i}, {i} + 1) + 1)"),
    ("import statistics", "print(statistics.mean([{i}, {i} + 2, {i} + 4]))"),
    (
        "from dataclasses import dataclass",
        "@dataclass\nclass Point:\n    x: int\n    y: int\n\nprint(Point({i}, 2))",
    ),
    ("import re", "print(re.findall(r'\\d+', 'a{i}b22c333'))"),
    ("import itertools", "print(list(itertools.islice(itertools.count({i}), 3)))"),
)
"""What the blocks do in turn: an import, a computation, a print; `{i}` gives each block its own numbers."""


def expected_output(code: str) -> str:
    """What a block prints (computed here, on the host: the code is ours)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})
    return out.getvalue()


def write_docs(folder: Path) -> Path:
    """`DOCS` user-guide pages of `BLOCKS` Python blocks each, every block followed by its output."""
    docs = folder / "docs"
    docs.mkdir()
    for page in range(DOCS):
        parts = [f"# Guide, part {page + 1}\n", "Some prose about the library, as a user guide has it.\n"]
        for block in range(BLOCKS):
            imports, body = BLOCK_SHAPES[block % len(BLOCK_SHAPES)]
            code = f"{imports}\n\n{body.format(i=page * BLOCKS + block)}\n"
            parts.append(f"## Example {block + 1}\n\nThis example shows one more thing.\n")
            # sandrun compares the output block; pytest-markdown-docs and phmdoctest only run the code
            # (phmdoctest compares only an output block without a language, which sandrun does not read).
            parts.append(f"```python\n{code}```\n\n```text\n{expected_output(code)}```\n")
        (docs / f"guide{page:02d}.md").write_text("\n".join(parts))
    return docs


def tool(bin_dir: Path, name: str) -> str | None:
    """The path of a command in the benchmark environment, or None when it is not installed."""
    path = bin_dir / name
    return str(path) if path.exists() else shutil.which(name, path=str(bin_dir))


def bench_docs(
    bin_dir: Path, sandrun: Callable[..., list[str]], folder: Path, rows: list[Row], runs: int
) -> None:
    """The directory checked by each tool, as processes, one warm-up run each; the speedup against
    pytest-markdown-docs. `sandrun(*paths)` is the `sandrun run` command for the local backend."""
    docs = write_docs(folder)
    what = f"{DOCS} Markdown docs x {BLOCKS} blocks"
    python = str(bin_dir / "python")
    pmd: list[float] | None = None
    if tool(bin_dir, "pytest") and has_module(python, "pytest_markdown_docs"):
        argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--markdown-docs", str(docs)]
        progress(f"pytest-markdown-docs: {what} x {runs} (+1 warm-up)")
        pmd = guarded(
            rows,
            what,
            "pytest-markdown-docs",
            lambda: timed_command(argv, runs + 1, "pytest-markdown-docs")[1:],
        )
    else:
        rows.append(Row(what, "pytest-markdown-docs", note="not installed"))
    if tool(bin_dir, "phmdoctest") and tool(bin_dir, "pytest"):
        generated = folder / "phmdoctest"
        generated.mkdir()

        def phmdoctest() -> None:  # generate the test files, then run them: what a user of it does
            for doc in sorted(docs.glob("*.md")):
                run_quiet(
                    [
                        str(bin_dir / "phmdoctest"),
                        str(doc),
                        "--outfile",
                        str(generated / f"test_{doc.stem}.py"),
                    ]
                )
            run_quiet(
                [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(generated)],
                "phmdoctest (pytest)",
            )

        progress(f"phmdoctest: {what} x {runs} (+1 warm-up)")
        guarded(rows, what, "phmdoctest + pytest", lambda: timed(phmdoctest, runs + 1)[1:])
    else:
        rows.append(Row(what, "phmdoctest", note="not installed"))
    for jobs in (1, 2):
        runner = f"sandrun/local -j {jobs}"
        progress(f"{runner}: {what} x {runs} (+1 warm-up)")
        argv = [*sandrun(docs), "-j", str(jobs)]
        samples = guarded(rows, what, runner, lambda a=argv, r=runner: timed_command(a, runs + 1, r)[1:])
        if samples and pmd:
            ratio = statistics.median(pmd) / statistics.median(samples)
            row = Row(f"speedup, {what}", f"{runner} vs pytest-markdown-docs", note=f"{ratio:.1f}x")
            row.target, row.verdict = f"≥ {TARGET:g}x", verdict(ratio >= TARGET)
            rows.append(row)


def guarded(
    rows: list[Row], what: str, runner: str, measure: Callable[[], list[float]]
) -> list[float] | None:
    """The samples of `measure` as a row; a failing command becomes a row that says so."""
    try:
        samples = measure()
    except RuntimeError as exc:
        rows.append(Row(what, runner, note=f"failed: {exc}"))
        return None
    rows.append(Row(what, runner, samples))
    return samples


def has_module(python: str, name: str) -> bool:
    """Whether `python` can import `name`."""
    return subprocess.run([python, "-c", f"import {name}"], capture_output=True).returncode == 0


def installed_versions(names: Sequence[str]) -> str:
    """`name version` for each distribution in the benchmark environment, else `name: not installed`."""
    from importlib import metadata

    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}: not installed")
    return ", ".join(found)
