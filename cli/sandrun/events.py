"""The driver's events as the host reads them: parsed, and every field checked by type before use.

Whatever runs in the sandbox can write protocol lines of its own (a cell can find the private descriptors), so
nothing in an event is trusted: a field of the wrong type or value is a `ProtocolViolation` (the session ends,
the recipe is recorded as an error), and every string is made writable (`sandrun.text.writable`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sandrun.model import RICH_KINDS, CellError, OutputChunk, StatementOutput
from sandrun.text import writable

STREAMS = ("stdout", "stderr")
CELL_STATUSES = ("ok", "error", "timeout", "skipped")
MAX_METADATA_DEPTH = 8


Event = dict[str, object]
"""One line of the driver protocol as parsed JSON: values are unchecked until a `*_field(s)` function reads
them."""


class ProtocolViolation(Exception):
    """The sandbox sent bytes that are not the driver protocol (e.g. a cell wrote to the private fds)."""


def parse_event(line: bytes) -> Event:
    """One protocol line as a dict; anything else is a `ProtocolViolation`."""
    try:
        event = json.loads(line.decode())  # UTF-8, as the driver writes: faster than letting json guess
    except (ValueError, RecursionError):
        preview = line[:80].decode("utf-8", "replace")
        raise ProtocolViolation(f"the sandbox broke the protocol by writing {preview!r}") from None
    if not isinstance(event, dict):
        raise ProtocolViolation(f"the sandbox sent {type(event).__name__} instead of an event")
    return event


@dataclass
class Done:
    """A checked `done` event: how a cell ended, as the driver says."""

    status: str
    value: str | None = None
    peak_memory: int | None = None
    error: CellError | None = None
    error_types: tuple[str, ...] = ()
    truncated: dict[str, int] = field(default_factory=dict)
    """Bytes the driver dropped past the output limit, by stream."""
    display_dropped: int = 0
    """Bytes of rich output the driver dropped past the cell's display limit."""
    printed: list[StatementOutput] | None = None
    """stdout by top-level statement, when the cell asked for it (`#>` comments)."""


def text_field(event: Event, key: str, kind: str, default: str | None = None) -> str:
    """`event[key]`, which must be a string (or absent, when there is a default), made writable."""
    value = event.get(key, default)
    if not isinstance(value, str):
        raise malformed(kind, key, value, "text")
    return writable(value)


def stream_fields(event: Event) -> tuple[str, str]:
    """The stream name and text of a `stream` event."""
    name = text_field(event, "name", "stream")
    if name not in STREAMS:
        raise ProtocolViolation(f"the sandbox sent output for an unknown stream {name[:20]!r}")
    return name, text_field(event, "text", "stream", "")


def display_fields(event: Event) -> OutputChunk:
    """A `display` event as an output chunk: its kind, a MIME bundle of texts with `text/plain`, metadata."""
    kind = text_field(event, "kind", "display", "display")
    if kind not in RICH_KINDS:
        raise ProtocolViolation(f"the sandbox sent a display of an unknown kind {kind[:20]!r}")
    data = event.get("data")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise malformed("display", "data", data, "an object of texts by MIME type")
    bundle = {}
    for mime, value in data.items():
        if not _is_mime(mime):
            raise ProtocolViolation(f"the sandbox sent a display with an invalid MIME type {mime[:40]!r}")
        bundle[mime] = writable(value)
    bundle.setdefault("text/plain", "")
    metadata = event.get("metadata", {})
    if not isinstance(metadata, dict):
        raise malformed("display", "metadata", metadata, "an object")
    return OutputChunk(kind, bundle["text/plain"], bundle, _json_value(metadata, 0))


def _is_mime(name: str) -> bool:
    """`type/subtype`, in the characters MIME types are made of (no spaces, no control characters)."""
    kind, slash, sub = name.partition("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_")
    return bool(slash and kind and sub and len(name) <= 128 and set(kind + sub) <= allowed)


def _json_value(value: Any, depth: int) -> Any:
    """A JSON value with every string made writable; too deep a nesting is a `ProtocolViolation`."""
    if depth > MAX_METADATA_DEPTH:
        raise ProtocolViolation("the sandbox sent display metadata nested too deeply")
    if isinstance(value, str):
        return writable(value)
    if isinstance(value, dict):
        return {writable(str(k)): _json_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v, depth + 1) for v in value]
    return value


def done_fields(event: Event) -> Done:
    """The fields of a `done` event, each checked."""
    status = text_field(event, "status", "done", "error")
    if status not in CELL_STATUSES:
        raise ProtocolViolation(f"the sandbox sent a 'done' event with an unknown status {status[:20]!r}")
    done = Done(status)
    if event.get("value") is not None:
        done.value = text_field(event, "value", "done")
    done.peak_memory = _count(event.get("peak_memory"), "done", "peak_memory", optional=True)
    error = event.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise malformed("done", "error", error, "an object")
        line = _count(error.get("line"), "done", "error.line", optional=True)
        done.error = CellError(
            type=text_field(error, "type", "done"),
            message=text_field(error, "message", "done", ""),
            traceback=text_field(error, "traceback", "done", ""),
            line=line,
        )
        types = error.get("types", [])
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise malformed("done", "error.types", types, "a list of names")
        done.error_types = tuple(writable(t) for t in types)
    truncated = event.get("truncated") or {}
    if not isinstance(truncated, dict) or not set(truncated) <= set(STREAMS):
        raise malformed("done", "truncated", truncated, "byte counts by stream")
    done.truncated = {name: _count(n, "done", "truncated", False) or 0 for name, n in truncated.items()}
    done.display_dropped = _count(event.get("display_dropped", 0), "done", "display_dropped", False) or 0
    if event.get("printed") is not None:
        done.printed = _printed(event["printed"])
    return done


def _printed(value: object) -> list[StatementOutput]:
    """The `printed` field of a `done` event: `[first line, last line, stdout]` per statement."""
    if not isinstance(value, list) or not all(isinstance(v, list) and len(v) == 3 for v in value):
        raise malformed("done", "printed", value, "a list of [line, line, text]")
    return [
        StatementOutput(
            _count(line, "done", "printed", False) or 0,
            _count(end, "done", "printed", False) or 0,
            text_field({"text": text}, "text", "done"),
        )
        for line, end, text in value
    ]


def _count(value: object, kind: str, key: str, optional: bool) -> int | None:
    """A count of something (bytes, a line number): a non-negative integer, or None where allowed."""
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise malformed(kind, key, value, "a non-negative integer")
    return value


def malformed(kind: str, key: str, value: object, wanted: str) -> ProtocolViolation:
    """The error for a field of the wrong type: which event, which field, what came, what was wanted."""
    got = type(value).__name__ if value is not None else "missing"
    return ProtocolViolation(f"the sandbox sent a malformed {kind!r} event: {key} is {got}, not {wanted}")
