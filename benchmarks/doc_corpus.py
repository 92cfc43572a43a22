"""Real documentation as a corpus: download the sdists of well-known packages, read and run the Markdown
and reStructuredText documents in them (the README and everything under `docs/` or `doc/`), and count what
sandrun finds, runs, passes, fails (and why), skips (and why) and misses.

    python benchmarks/doc_corpus.py [PACKAGE ...] [--cache DIR] [--backend local] [--details FILE]

Needs the network: `pip download --no-deps --no-binary :all:` for the sdists, and `pip install` of the
packages (with their dependencies, from wheels) into one virtual environment, `DIR/venv`, whose interpreter
the cells run in (RunOptions.python, like `--python`): the packages are there as a reader of the docs would
have them. Everything is kept under `--cache` (default `benchmarks/.corpus`, gitignored), so a second run
needs no network. Cells run in the sandbox of `--backend` (bubblewrap by default), without network.

The oracles for which Python blocks a document holds: markdown-it-py (fences with a Python language, MyST
directives with Python in them, blocks whose first line is a `>>>` prompt, indented ones too) and docutils
(`code`/`code-block`/`sourcecode` directives in Python, literal and doctest blocks that start with `>>>`,
`sphinx.ext.doctest`'s directives, found inside any other directive). A block is missed when no cell of
sandrun's (run or listed as skipped) starts inside it, or when searching a directory would not take the
document: there must be none. Refused documents (exit 2) must
be none too, and internal errors none.

Failures are sorted by cause: a missing module, the network (off in the sandbox), output that differs from
what the page shows (stale or machine-dependent output), an undefined name (one the page never defines:
set up where sandrun does not look, e.g. a `doctest_global_setup` that `conf.py` computes, which sandrun
does not run; or an earlier cell failed), a SyntaxError
(pseudo-code, fragments, newer syntax; or a reader's mistake), and other exceptions the page's code raises.
A failure of sandrun's own shows as a sandbox error or an internal error; the others were read one by one
(`--details FILE` writes every failure, skip and miss with its place) to find the readers' mistakes.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

from markdown_it import MarkdownIt

from sandrun.backends import get_backend
from sandrun.discover import looks_like_recipe
from sandrun.errors import RecipeError
from sandrun.model import CellResult, CellStatus, Transcript
from sandrun.readers import load_recipe
from sandrun.runner import RunOptions, run_recipe

PACKAGES = (
    "rich", "attrs", "tabulate", "httpx", "pydantic", "humanize", "munch", "cattrs", "typer",
    "click", "requests", "more-itertools", "marshmallow", "structlog",
)  # fmt: skip
"""The nine packages of the issue, then four whose docs are reStructuredText (Sphinx), and click."""

PYTHON = {"python", "py", "python3", "py3", "ipython", "ipython3", "pycon", "python-console"}
MYST = {"{testcode}", "{testsetup}", "{testcleanup}", "{doctest}", "{jupyter-execute}", "{ipython}"}
RST_CODE = ("code-block", "code", "sourcecode")
RST_DOCTEST = ("testcode", "testsetup", "testcleanup", "doctest")
RST_EXAMPLE = re.compile(r"^\s*>>> |\.\. (testcode|doctest)::", re.MULTILINE)
NETWORK = re.compile(
    r"ConnectError|ConnectionError|ConnectTimeout|gaierror|URLError|Name or service not known|"
    r"Temporary failure in name resolution|Network is unreachable|No address associated",
)
COLUMNS = (
    "docs", "oracle blocks", "cells", "passed", "missing module", "network", "output differs",
    "undefined name", "SyntaxError", "other page error", "timeout", "sandbox error", "skipped",
    "missed", "refused (exit 2)", "internal errors",
)  # fmt: skip


def download(package: str, cache: Path) -> Path | None:
    """The package's sdist, unpacked under `cache/src` (None if there is none)."""
    sdists = cache / "sdists" / package
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
    if not list(sdists.glob("*.tar.gz")):
        # The build backend of this environment first (fast), then pip's isolated build of the metadata.
        for extra in (["--no-build-isolation"], []):
            done = subprocess.run([*command, *extra, "-d", str(sdists), package], capture_output=True)
            if done.returncode == 0:
                break
    archives = sorted(sdists.glob("*.tar.gz"))
    if not archives:
        return None
    target = cache / "src" / archives[-1].name.removesuffix(".tar.gz")
    if not target.exists():
        with tarfile.open(archives[-1]) as archive:
            archive.extractall(target, filter="data")
    return target


def environment(cache: Path, packages: list[str]) -> str:
    """The interpreter of `cache/venv`, with `packages` installed (and their dependencies)."""
    venv = cache / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return str(python)


def documents(root: Path) -> Iterator[Path]:
    """The README and the Markdown and reST documents under `docs/` or `doc/`."""
    top = next(iter(root.iterdir()))  # an sdist unpacks into one directory
    for path in sorted(top.rglob("*")):
        relative = path.relative_to(top).parts
        if path.suffix.lower() not in (".md", ".rst") or not path.is_file():
            continue
        if (len(relative) == 1 and path.name.lower().startswith("readme")) or relative[0] in ("docs", "doc"):
            yield path


def markdown_blocks(text: str) -> list[tuple[int, int]]:
    """The 1-based line ranges of the Python blocks markdown-it-py finds."""
    found = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type not in ("fence", "code_block") or token.map is None:
            continue
        info = token.info.strip()
        first = next((line for line in token.content.splitlines() if line.strip()), "")
        if info.startswith("{."):
            word = info[2:].partition("}")[0].split()[0] if info[2:].strip("}") else ""
        elif info.startswith("{"):
            name, _, rest = info[1:].partition("}")
            word = name.strip().lower()
            argument = (rest.split() or [""])[0].lower()
            if word in ("code-cell", "code-block", "code", "sourcecode") and argument in {*PYTHON, ""}:
                word = "python"
            elif word == "eval-rst":
                word = "{eval-rst}" if RST_EXAMPLE.search(token.content) else ""
            else:
                word = "{" + word + "}"
        else:
            word = (info.split() or [""])[0].lower()
        python = word in PYTHON or word in MYST or word == "{eval-rst}"
        if python or first.lstrip().startswith(">>> "):
            found.append((token.map[0] + 1, token.map[1]))
    return found


def rst_blocks(text: str, path: Path) -> list[tuple[int, int]]:
    """The 1-based line ranges (roughly: docutils gives one line of a node) of the Python blocks docutils
    finds, with Sphinx's directives stood in for and unknown directives read as containers."""
    import docutils.core
    import docutils.nodes
    from docutils.parsers.rst import Directive, directives

    found: list[tuple[int, int]] = []

    class Options(dict[str, object]):
        def __missing__(self, key: str) -> object:
            return directives.unchanged

    class Container(Directive):
        optional_arguments = 10
        final_argument_whitespace = True
        has_content = True
        option_spec = Options()

        def run(self) -> list[docutils.nodes.Node]:
            name = self.name.lower()
            last = self.content_offset + len(self.content)
            argument = (self.arguments[0].split() or [""])[0].lower() if self.arguments else ""
            if name in RST_DOCTEST or (name in RST_CODE and argument in PYTHON):
                found.append((self.lineno, last + 1))
                return []
            if name in RST_CODE or name in ("testoutput", "raw", "literalinclude", "math", "graphviz"):
                return []
            node = docutils.nodes.container()
            self.state.nested_parse(self.content, self.content_offset, node)
            return [node]

    def lookup(name: str, *_: object) -> tuple[type[Directive], list[object]]:
        return Container, []

    original = directives.directive
    directives.directive = lookup  # type: ignore[assignment]
    try:
        settings = {"report_level": 5, "halt_level": 5, "file_insertion_enabled": False, "raw_enabled": False}
        tree = docutils.core.publish_doctree(text, source_path=str(path), settings_overrides=settings)
    finally:
        directives.directive = original  # type: ignore[assignment]
    kinds = (docutils.nodes.literal_block, docutils.nodes.doctest_block)
    for node in tree.findall(lambda n: isinstance(n, kinds)):
        if node.astext().lstrip().startswith(">>>") and node.line:
            size = node.astext().count("\n") + 1
            found.append((max(1, node.line - size - 2), node.line + size + 1))
    return found


def failure(result: CellResult, failed_before: bool) -> str:
    """Why a cell failed, as one of the columns."""
    if result.status is CellStatus.TIMEOUT:
        return "timeout"
    if result.status is CellStatus.ERROR:
        return "sandbox error"
    error = result.error
    if error is None:
        return "output differs" if result.diff else "other page error"
    kind = error.type.rpartition(".")[2]
    if kind in ("ModuleNotFoundError", "ImportError"):
        return "missing module"
    if NETWORK.search(f"{error.type}: {error.message}\n{error.traceback}"):
        return "network"
    if kind == "NameError" or (kind == "AttributeError" and failed_before):
        return "undefined name"
    if kind in ("SyntaxError", "IndentationError"):
        return "SyntaxError"
    return "other page error"


def measure(root: Path, backend: str, python: str, details: list[str]) -> collections.Counter[str]:
    """The counts for the documents of one unpacked sdist."""
    counts: collections.Counter[str] = collections.Counter()
    for path in documents(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        blocks = rst_blocks(text, path) if path.suffix.lower() == ".rst" else markdown_blocks(text)
        counts["docs"] += 1
        counts["oracle blocks"] += len(blocks)
        if blocks and not looks_like_recipe(path):  # `sandrun run docs/` would not take it
            counts["missed"] += len(blocks)
            details.append(f"missed: {path}: not found by searching a directory")
            continue
        try:
            recipe = load_recipe(path)
        except RecipeError as exc:
            if "no Python" in exc.message:
                counts["missed"] += len(blocks)
                details.extend(f"missed: {path}:{start}" for start, _ in blocks)
            else:
                counts["refused (exit 2)"] += 1
                details.append(f"refused: {exc}")
            continue
        except Exception as exc:  # what this corpus is for: there must be none
            counts["internal errors"] += 1
            details.append(f"INTERNAL ERROR: {path}: {exc!r}")
            continue
        lines = [cell.line for cell in recipe.code_cells]
        for start, end in blocks:
            if not any(start <= line <= end for line in lines):
                counts["missed"] += 1
                details.append(f"missed: {path}:{start}")
        options = RunOptions(keep_going=True, cell_timeout=20, python=python)
        transcript = run_recipe(recipe, get_backend(backend), options)
        count(transcript, counts, details)
    return counts


def count(transcript: Transcript, counts: collections.Counter[str], details: list[str]) -> None:
    """Add one transcript's cells to `counts`, and what went wrong to `details`."""
    failed = False
    for result in transcript.results:
        counts["cells"] += 1
        where = result.cell.location
        if result.status is CellStatus.PASSED:
            counts["passed"] += 1
        elif result.status in (CellStatus.SKIPPED, CellStatus.NOT_RUN):
            counts["skipped"] += 1
            reason = result.cell.unsupported or result.reason or "skip option"
            counts["skip: " + reason] += 1
            details.append(f"skipped: {where}: {reason}")
        else:
            cause = failure(result, failed)
            counts[cause] += 1
            error = f"{result.error.type}: {result.error.message}" if result.error else result.reason
            details.append(f"{cause}: {where}: {(error or '').splitlines()[0] if error else ''}")
            failed = True


def main() -> None:
    """Download, install, run, and print a Markdown table of the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=list(PACKAGES))
    parser.add_argument("--cache", type=Path, default=Path(__file__).parent / ".corpus")
    parser.add_argument("--backend", default="local", help="where the cells run (default: local)")
    parser.add_argument("--details", type=Path, help="write every failure, skip and miss to this file")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    python = environment(args.cache, args.packages)
    print("| package | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    total: collections.Counter[str] = collections.Counter()
    details: list[str] = []
    for package in args.packages:
        root = download(package, args.cache)
        if root is None:
            print(f"| {package} | (no sdist) |", flush=True)
            continue
        counts = measure(root, args.backend, python, details)
        total.update(counts)
        print(f"| {package} | " + " | ".join(str(counts[c]) for c in COLUMNS) + " |", flush=True)
    print("| **all** | " + " | ".join(str(total[c]) for c in COLUMNS) + " |")
    reasons = sorted((key[6:], n) for key, n in total.items() if key.startswith("skip: "))
    print("\nSkipped, by reason:" if reasons else "")
    for reason, n in reasons:
        print(f"- {n} x {reason}")
    if args.details:
        args.details.write_text("".join(line + "\n" for line in details), encoding="utf-8")


if __name__ == "__main__":
    main()
