"""Host memory stays within a small multiple of `--output-limit`, whatever the write pattern of a cell.

One-byte writes used to become one event each, kept as one object each until the cell ended: about 200 bytes
of host memory per character. The driver now sends held writes together, and the host merges what arrives at
once; the worst case for the host is a cell that forges one-character events itself, which it can (it runs
in the driver's process).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.model import OutputChunk, is_cut
from sandrun.session import CellRequest, OutputCollector, OutputRuns, Session

MiB = 1 << 20
PEAK = """
import atexit, resource, sys
atexit.register(lambda: print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))
from sandrun.__main__ import main
main()
"""

FORGED_ONE_CHARACTER_EVENTS = """\
  - |
    import gc, os
    emitter = next(o for o in gc.get_objects() if type(o).__name__ == "Emitter")
    capture = next(o for o in gc.get_objects() if type(o).__name__ == "Capture")
    line = b'{"ev": "stream", "id": %d, "name": "stdout", "text": "q"}\\n' % capture.cell_id
    with emitter.lock:
        for _ in range(53):
            os.write(emitter.fd, line * 10_000)
"""


def host_peak_rss(recipe: Path, *args: str) -> int:
    """Peak resident memory of the `sandrun run` process itself (not of the sandbox), in bytes."""
    env = {**os.environ, "SANDRUN_BACKEND": "process"}
    argv = [sys.executable, "-c", PEAK, "run", str(recipe), "-q", *args]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    found = re.search(r"^PEAK (\d+)$", result.stderr, re.MULTILINE)
    assert found, result.stderr
    return int(found[1]) * 1024  # ru_maxrss is in KiB on Linux


def test_a_flood_of_one_character_events_keeps_host_memory_bounded(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text("cells:\n  - print('q')\n")
    flood = tmp_path / "flood.yaml"
    flood.write_text("cells:\n" + FORGED_ONE_CHARACTER_EVENTS)  # 530,000 events of one character each
    baseline = host_peak_rss(quiet, "--output-limit", "512K")
    peak = host_peak_rss(flood, "--output-limit", "512K")  # one object per event: over 100 MiB
    assert peak - baseline < 64 * MiB, f"{(peak - baseline) / MiB:.0f} MiB above the baseline"


def test_one_byte_writes_are_sent_together(tmp_path: Path) -> None:
    session = Session.start(get_backend("process"), SandboxOptions())
    events: list[OutputChunk] = []
    try:
        code = "import sys\nfor _ in range(100_000):\n    sys.stdout.write('q')\n"
        outcome = session.run(CellRequest(code, "recipe.py", 1, 60), on_output=events.append)
    finally:
        session.close()
    assert outcome.status == "ok"
    assert "".join(c.text for c in outcome.outputs) == "q" * 100_000
    assert len(events) < 10_000  # one event per write would be 100,000


def test_held_output_is_sent_while_the_cell_still_runs(tmp_path: Path) -> None:
    """Live streaming: the cell waits for the host to answer its first line, which the host only does once
    it has seen that line; a line held until the cell's end would make the cell say `no answer`."""
    session = Session.start(get_backend("process"), SandboxOptions(workdir=tmp_path))

    def answer(chunk: OutputChunk) -> None:
        if "ping" in chunk.text:
            (tmp_path / "pong").touch()

    code = (
        "import os, sys, time\n"
        "sys.stdout.write('ping\\n')\n"
        "deadline = time.monotonic() + 30\n"
        "while not os.path.exists('pong') and time.monotonic() < deadline:\n"
        "    time.sleep(0.005)\n"
        "print('answered' if os.path.exists('pong') else 'no answer')\n"
    )
    try:
        outcome = session.run(CellRequest(code, "recipe.py", 1, 60), on_output=answer)
    finally:
        session.close()
    assert "".join(c.text for c in outcome.outputs) == "ping\nanswered\n"


def test_held_output_is_sent_in_time_also_right_after_a_cell_that_printed(tmp_path: Path) -> None:
    """The capture thread is woken only when it sleeps without a deadline: after a burst of short printing
    cells it must still send a held line of a cell that then waits for it."""
    session = Session.start(get_backend("process"), SandboxOptions(workdir=tmp_path))

    def answer(chunk: OutputChunk) -> None:
        if "ping" in chunk.text:
            (tmp_path / "pong").touch()

    code = (
        "import os, sys, time\n"
        "sys.stdout.write('ping\\n')\n"
        "deadline = time.monotonic() + 30\n"
        "while not os.path.exists('pong') and time.monotonic() < deadline:\n"
        "    time.sleep(0.005)\n"
        "print('answered' if os.path.exists('pong') else 'no answer')\n"
    )
    try:
        for round in range(3):
            for _ in range(20):
                assert session.run(CellRequest("print('quick')", "recipe.py", 1, 60)).status == "ok"
            outcome = session.run(CellRequest(code, "recipe.py", 1, 60), on_output=answer)
            assert "".join(c.text for c in outcome.outputs) == "ping\nanswered\n", round
            (tmp_path / "pong").unlink()
    finally:
        session.close()


def test_output_runs_merge_as_they_arrive() -> None:
    runs = OutputRuns()
    for text in ["a", "b", "", "c"]:
        runs.add(OutputChunk("stdout", text))
    runs.add(OutputChunk("stderr", "e"))
    for _ in range(3 * OutputRuns.BATCH + 5):
        runs.add(OutputChunk("stdout", "x"))
    assert runs.chunks() == [
        OutputChunk("stdout", "abc"),
        OutputChunk("stderr", "e"),
        OutputChunk("stdout", "x" * (3 * OutputRuns.BATCH + 5)),
    ]


def test_the_host_caps_each_stream_in_bytes_not_characters() -> None:
    kept: list[OutputChunk] = []
    collector = OutputCollector(10, kept, None)
    collector.add("stdout", "\u00e9" * 4)  # 8 bytes in UTF-8, 4 characters
    collector.add("stdout", "\u00e9" * 4)  # 8 more: only one more character fits in 10 bytes
    collector.add("stderr", "ab")
    collector.finish()
    stdout = "".join(chunk.text for chunk in kept if chunk.stream == "stdout")
    shown, _, note = stdout.partition("\n[sandrun:")
    assert shown == "\u00e9" * 5 and len(shown.encode()) == 10
    assert note == " 6 more bytes of stdout not shown; the limit is 10 bytes]\n"
    assert is_cut(stdout) and not is_cut(shown)  # the note `--update` looks for
    assert [chunk.text for chunk in kept if chunk.stream == "stderr"] == ["ab"]  # each stream its own cap
