"""Real documentation as a corpus: download the sdists of well-known packages, read and run every Markdown
document in them, and count what sandrun finds, runs, passes, fails and skips (with the reasons).

    python benchmarks/doc_corpus.py [--python /path/to/venv/bin/python] [PACKAGE ...]

Needs the network (`pip download`). Cells run in the `process` backend with the interpreter given (by
default the one running this script, which lacks most of these packages: their imports then fail, which is
counted, not hidden). What this measures is the reading: blocks markdown-it-py finds with a Python
language against the cells sandrun reports (none may be left out in silence), documents refused (exit 2),
and internal errors (there must be none).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from markdown_it import MarkdownIt

from sandrun.backends import get_backend
from sandrun.errors import RecipeError
from sandrun.model import CellStatus
from sandrun.readers import load_recipe
from sandrun.readers.markdown_doc import CONSOLE, PYTHON
from sandrun.runner import RunOptions, run_recipe

PACKAGES = (
    "rich", "attrs", "tabulate", "httpx", "pydantic", "humanize", "munch", "cattrs", "typer", "click",
    "requests", "more-itertools",
)  # fmt: skip


def download(package: str, into: Path) -> Path | None:
    """The package's sdist, unpacked under `into` (None if there is none)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    done = subprocess.run([*command, "-d", str(into / "dl"), package], capture_output=True, check=False)
    archives = sorted((into / "dl").glob("*.tar.gz"))
    if done.returncode or not archives:
        return None
    with tarfile.open(archives[-1]) as archive:
        archive.extractall(into / package, filter="data")
    return into / package


def oracle_count(text: str) -> int:
    """Fences with a Python language (or a >>> first line) that markdown-it-py finds."""
    count = 0
    for token in MarkdownIt("commonmark").parse(text):
        if token.type != "fence":
            continue
        info = token.info.strip()
        lang = info[2:].split()[0].rstrip("}") if info.startswith("{.") else (info.split() or [""])[0]
        if lang.lower() in (*PYTHON, *CONSOLE) or token.content.lstrip().startswith(">>> "):
            count += 1
    return count


def measure(root: Path, python: str | None) -> collections.Counter[str]:
    """Counts for every Markdown document under `root`."""
    counts: collections.Counter[str] = collections.Counter()
    backend = get_backend("process")
    for path in sorted(root.rglob("*.md")):
        text = path.read_text(encoding="utf-8", errors="replace")
        counts["documents"] += 1
        counts["python fences (markdown-it)"] += oracle_count(text)
        try:
            recipe = load_recipe(path)
        except RecipeError as exc:
            counts[
                "documents without examples" if "no Python code" in exc.message else "refused (exit 2)"
            ] += 1
            if "no Python code" not in exc.message:
                print(f"  refused: {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # what this corpus is for: there must be none
            counts["internal errors"] += 1
            print(f"  INTERNAL ERROR in {path}: {exc!r}", file=sys.stderr)
            continue
        counts["warnings"] += len(recipe.warnings)
        options = RunOptions(keep_going=True, cell_timeout=20, python=python)
        transcript = run_recipe(recipe, backend, options)
        counts["cells"] += len(transcript.results)
        for result in transcript.results:
            counts[result.status.value] += 1
            if result.status is CellStatus.SKIPPED and result.cell.unsupported:
                counts["found, not run"] += 1
    return counts


def main() -> None:
    """Download, run and print a Markdown table of the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=list(PACKAGES))
    parser.add_argument("--python", help="the interpreter the cells run in (e.g. a venv with the packages)")
    args = parser.parse_args()
    columns = ["documents", "python fences (markdown-it)", "cells", "passed", "failed", "skipped",
               "found, not run", "refused (exit 2)", "internal errors"]  # fmt: skip
    print("| package | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    total: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as work:
        for package in args.packages:
            root = download(package, Path(work) / package)
            if root is None:
                print(f"| {package} | (no sdist) |")
                continue
            counts = measure(root, args.python)
            total.update(counts)
            print(f"| {package} | " + " | ".join(str(counts[c]) for c in columns) + " |", flush=True)
    print("| **all** | " + " | ".join(str(total[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
