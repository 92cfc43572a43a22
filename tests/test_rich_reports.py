"""Rich output in reports: the JSON transcript (schema 2, round trip, version 1 read), Markdown images."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

from jsonschema import Draft202012Validator

from sandrun.delivery import deliver
from sandrun.model import CellResult, OutputChunk, Transcript
from sandrun.reports import render
from sandrun.reports.json_report import render_json, transcript_from_dict
from sandrun.reports.rich import image_files
from tests.factories import PNG_1X1, make_transcript, without_env

PNG = base64.b64encode(PNG_1X1).decode()
FIGURE = OutputChunk(
    "display", "<Figure size 1x1>", {"text/plain": "<Figure size 1x1>", "image/png": PNG}, {}
)
HTML_VALUE = OutputChunk("result", "Table()", {"text/plain": "Table()", "text/html": "<table/>"}, {"k": [1]})


def rich_transcript() -> Transcript:
    t = make_transcript()
    first = t.results[1]
    outputs = (OutputChunk("stdout", "a\n"), FIGURE, OutputChunk("stdout", "b\n"), HTML_VALUE)
    results: list[CellResult] = list(t.results)
    results[1] = dataclasses.replace(first, outputs=outputs, value="Table()")
    return dataclasses.replace(t, results=tuple(results))


def test_rich_outputs_validate_and_survive_a_round_trip(transcript_validator: Draft202012Validator) -> None:
    t = rich_transcript()
    data = json.loads(render_json(t))
    assert not [e.message for e in transcript_validator.iter_errors(data)]
    cell = data["cells"][1]
    assert cell["stdout"] == "a\nb\n"  # version 1's fields are kept, and hold only stream text
    assert cell["outputs"][1] == {"stream": "display", "text": "<Figure size 1x1>", "data": FIGURE.data,
                                  "metadata": {}}  # fmt: skip
    back = transcript_from_dict(data)
    assert back == without_env(t)
    assert render_json(back) == render_json(t)


def test_a_version_1_transcript_is_still_read() -> None:
    data = json.loads(render_json(make_transcript()))
    data["schema"] = "sandrun.transcript/1"
    assert transcript_from_dict(data) == without_env(make_transcript())


def test_markdown_links_images_and_shows_text_plain_otherwise() -> None:
    t = rich_transcript()
    (name,) = image_files([t])
    linked = render(t, "md", files_dir="run_files")
    assert f"![\\<Figure size 1x1\\>](run_files/{name})" in linked
    assert "Table()" in linked and "<table/>" not in linked
    assert linked.count("*value:*") == 1
    plain = render(t, "md")
    assert "](" not in plain and "<Figure size 1x1>" in plain


def test_a_markdown_report_writes_its_images_beside_it(tmp_path: Path) -> None:
    t = rich_transcript()
    report = tmp_path / "out.md"
    assert deliver([t], [(report, "md"), (tmp_path / "out.json", "json")], None) == []
    (image,) = (tmp_path / "out_files").iterdir()
    assert image.read_bytes() == PNG_1X1
    assert f"](out_files/{image.name})" in report.read_text()
    assert not (tmp_path / "out.json_files").exists()


def test_a_saved_transcript_rendered_as_markdown_gets_its_images(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sandrun.app import app

    saved = tmp_path / "t.json"
    saved.write_text(render_json(rich_transcript()))
    result = CliRunner().invoke(
        app, ["report", str(saved), "--format", "md", "-o", str(tmp_path / "page.md")]
    )
    assert result.exit_code == 0, result.output
    (image,) = (tmp_path / "page_files").iterdir()
    assert (
        image.read_bytes() == PNG_1X1 and f"](page_files/{image.name})" in (tmp_path / "page.md").read_text()
    )
