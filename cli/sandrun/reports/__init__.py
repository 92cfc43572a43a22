"""Reports: a `Transcript` rendered as text, and written to a file.

Every renderer is a pure function of the transcript(s): JSON, Markdown, JUnit XML, notebooks and HTML
(`render` for one transcript, `render_all` for several in one document). The format of a `--report` file
follows its suffix (`format_for_path`), and files are written atomically (`write_report`), so a reader
never sees half a report and an interrupted write leaves any previous report in place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sandrun.text import writable

if TYPE_CHECKING:
    from sandrun.model import Transcript

FORMATS: dict[str, str] = {
    "json": "json", "md": "md", "markdown": "md", "junit": "junit", "xml": "junit", "ipynb": "ipynb",
    "html": "html",
}  # fmt: skip
"""Accepted format names, mapped to the canonical one."""

SUFFIXES: dict[str, str] = {
    ".json": "json", ".md": "md", ".markdown": "md", ".xml": "junit", ".ipynb": "ipynb", ".html": "html",
    ".htm": "html",
}  # fmt: skip
"""Report file suffixes (compared case-insensitively), mapped to their format."""

MARKDOWN_SEPARATOR = "\n---\n\n"
"""What `render_all` puts between Markdown documents: a horizontal rule."""

__all__ = ["FORMATS", "SUFFIXES", "format_for_path", "render", "render_all", "write_report"]


def write_report(path: str | os.PathLike[str], text: str) -> None:
    """Write a report atomically: readers see the old file or the new one, never half of it."""
    from sandrun.atomic import write_text_atomically  # renderers and writers load when a report is made

    write_text_atomically(path, text)


def _canonical(fmt: str) -> str:
    canonical = FORMATS.get(fmt.lower())
    if canonical is None:
        raise ValueError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")
    return canonical


def render(t: Transcript, fmt: str, files_dir: str | None = None) -> str:
    """The transcript as text in format `fmt`: `json`, `md`/`markdown`, `junit`/`xml`, `ipynb` or `html`.

    ValueError for anything else. A lone surrogate anywhere in the transcript is written as its escape
    (`\\ud800`: in JSON, the string's own escape), so the text can always be written as UTF-8.
    `files_dir`: where a Markdown page links its images (`rich.image_files` are to be written there).
    """
    from sandrun.reports.json_report import render_json
    from sandrun.reports.markdown import render_markdown

    canonical = _canonical(fmt)
    if canonical == "json":
        return writable(render_json(t))
    if canonical == "md":
        return writable(render_markdown(t, files_dir))
    return render_all([t], canonical)


def render_all(transcripts: Sequence[Transcript], fmt: str, files_dir: str | None = None) -> str:
    """Several transcripts as one document in format `fmt` (names as for `render`).

    JSON: the transcript object when there is exactly one, else an array of them. Markdown: the pages one
    after another, separated by a `---` rule. JUnit: one XML document with a test suite per transcript.
    ipynb: one notebook, each recipe under a heading when there are several. html: one page.
    ValueError for an unknown format. Lone surrogates are escaped, as by `render`.
    """
    canonical = _canonical(fmt)
    if canonical == "junit":
        from sandrun.reports.junit import render_junit  # XML machinery only when JUnit is asked for

        return writable(render_junit(transcripts))
    if canonical == "ipynb":
        from sandrun.reports.ipynb import render_ipynb

        return writable(render_ipynb(transcripts))
    if canonical == "html":
        from sandrun.reports.html import render_html

        return writable(render_html(transcripts))
    if len(transcripts) == 1:
        return render(transcripts[0], canonical, files_dir)
    from sandrun.reports.json_report import transcript_to_dict
    from sandrun.reports.markdown import render_markdown

    if canonical == "json":
        import json

        data = [transcript_to_dict(t) for t in transcripts]
        return writable(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return writable(MARKDOWN_SEPARATOR.join(render_markdown(t, files_dir) for t in transcripts))


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The report format (`json`, `md` or `junit`) a file name asks for, by its suffix.

    Raises ValueError, naming the valid suffixes, when the suffix is missing or unknown.
    """
    suffix = Path(path).suffix
    fmt = SUFFIXES.get(suffix.lower())
    if fmt is None:
        valid = ", ".join(SUFFIXES)
        got = f"suffix {suffix!r}" if suffix else "no suffix"
        raise ValueError(f"cannot tell the report format of {os.fspath(path)!r} ({got}); use one of: {valid}")
    return fmt
