"""The JUnit XML report: runs as test results that CI dashboards read (GitHub reporters, GitLab, Jenkins).

Layout: one `<testsuites>` root with totals; one `<testsuite>` per transcript, named after the recipe
(its name, else its path), with the run's facts as `<properties>`; one `<testcase>` per code cell
(markdown and raw cells are not tests). A test case's `classname` is the recipe path as a dotted name
without its suffix (`recipes/demo.py` -> `recipes.demo`), its `name` is `label (path:line)`, and it
carries `file` and `line` attributes for tools that link to sources.

Statuses map as follows: failed -> `<failure>` whose text is the diff and/or the traceback; timeout ->
`<failure type="timeout">`; error (the sandbox failed) -> `<error>`; skipped and not run ->
`<skipped>`; passed -> nothing. The cell's stdout and stderr go to `<system-out>` and `<system-err>`.
A run that ended in error or was interrupted without any cell showing it (the sandbox could not start,
Ctrl-C between cells) gets one extra test case, `(run)`, with an `<error>`, so it cannot look green.

Characters XML 1.0 forbids (control characters other than tab, newline and carriage return, lone
surrogates, U+FFFE and U+FFFF) are removed from every text and attribute; ElementTree escapes the rest.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import PurePosixPath

from sandrun.model import CellKind, CellResult, CellStatus, RunStatus, Transcript
from sandrun.text import writable

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_COUNTED = ("tests", "failures", "errors", "skipped")
RUN_CASE_NAME = "(run)"


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 does not allow in a document (lone surrogates are kept, written
    as their escape `\\ud800`, as in every report)."""
    return _NOT_XML.sub("", writable(text))


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {key: xml_safe(value) for key, value in attrs.items()})
    if text:
        element.text = xml_safe(text)
    return element


def classname(path: str) -> str:
    """A recipe path as a dotted, suffix-less name: `./recipes/demo.py` -> `recipes.demo`."""
    pure = PurePosixPath(path.replace("\\", "/"))
    parts = [part for part in pure.with_suffix("").parts if part not in ("/", ".", "..", "")]
    return ".".join(parts) or path


def _body(*parts: str | None) -> str:
    return "\n".join(part.rstrip("\n") + "\n" for part in parts if part)


def _traceback(r: CellResult) -> str | None:
    if r.error is None:
        return None
    return r.error.traceback or f"{r.error.type}: {r.error.message}"


def _failure_type(r: CellResult) -> str:
    if r.diff:
        return "OutputMismatch"
    if r.error is not None:
        return r.error.type
    return "ExpectationFailed"


def _outcome(case: ET.Element, r: CellResult) -> None:
    reason = r.reason or r.status.value.replace("_", " ")
    if r.status is CellStatus.FAILED:
        text = _body(r.diff, _traceback(r)) or _body(reason)
        _add(case, "failure", text, message=reason, type=_failure_type(r))
    elif r.status is CellStatus.TIMEOUT:
        _add(case, "failure", _body(_traceback(r)) or _body(reason), message=reason, type="timeout")
    elif r.status is CellStatus.ERROR:
        kind = r.error.type if r.error is not None else "SandboxError"
        _add(case, "error", _body(_traceback(r)) or _body(reason), message=reason, type=kind)
    elif r.status in (CellStatus.SKIPPED, CellStatus.NOT_RUN):
        _add(case, "skipped", message=reason)


def _testcase(suite: ET.Element, r: CellResult) -> None:
    cell = r.cell
    case = _add(
        suite,
        "testcase",
        classname=classname(cell.path),
        name=f"{cell.label} ({cell.location})",
        file=cell.path,
        line=str(cell.line),
        time=_seconds(r.duration),
    )
    _outcome(case, r)
    if r.stdout:
        _add(case, "system-out", r.stdout)
    if r.stderr:
        _add(case, "system-err", r.stderr)


def silent_run_failure(t: Transcript) -> str | None:
    """Why the run ended in error or was interrupted, when no code cell has the `error` status to show it.

    None otherwise. Reports add an entry of their own for it, so such a run cannot look green.
    """
    if t.status not in (RunStatus.ERROR, RunStatus.INTERRUPTED):
        return None
    if any(r.status is CellStatus.ERROR and r.cell.kind is CellKind.CODE for r in t.results):
        return None
    return t.reason or f"the run ended with status {t.status.value}"


def _testsuite(root: ET.Element, t: Transcript) -> dict[str, int]:
    recipe = t.recipe
    results = [r for r in t.results if r.cell.kind is CellKind.CODE]
    suite = _add(root, "testsuite", name=recipe.name or recipe.path, timestamp=t.started_at)
    properties = _add(suite, "properties")
    facts = {
        "backend": t.backend,
        "isolation": t.isolation,
        "python_version": t.python_version,
        "recipe_path": recipe.path,
        "recipe_format": recipe.format,
        "recipe_sha256": recipe.sha256,
        "run_status": t.status.value,
        "run_reason": t.reason,
        "sandrun_version": t.tool_version,
    }
    for name, value in facts.items():
        if value is not None:
            _add(properties, "property", name=name, value=value)
    for r in results:
        _testcase(suite, r)
    counts = {
        "tests": len(results),
        "failures": sum(r.status in (CellStatus.FAILED, CellStatus.TIMEOUT) for r in results),
        "errors": sum(r.status is CellStatus.ERROR for r in results),
        "skipped": sum(r.status in (CellStatus.SKIPPED, CellStatus.NOT_RUN) for r in results),
    }
    message = silent_run_failure(t)
    if message is not None:
        where = {"classname": classname(recipe.path), "name": RUN_CASE_NAME, "file": recipe.path}
        case = _add(suite, "testcase", **where, time=_seconds(0.0))
        _add(case, "error", _body(message), message=message, type=f"run_{t.status.value}")
        counts["tests"] += 1
        counts["errors"] += 1
    for key in _COUNTED:
        suite.set(key, str(counts[key]))
    suite.set("time", _seconds(t.duration))
    return counts


def render_junit(transcripts: Sequence[Transcript]) -> str:
    """The transcripts as one JUnit XML document, a test suite per transcript, ending with a newline."""
    root = ET.Element("testsuites", {"name": "sandrun"})
    totals = dict.fromkeys(_COUNTED, 0)
    for t in transcripts:
        for key, value in _testsuite(root, t).items():
            totals[key] += value
    for key in _COUNTED:
        root.set(key, str(totals[key]))
    root.set("time", _seconds(sum(t.duration for t in transcripts)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
