"""Rich outputs (MIME bundles) as reports and the terminal show them: images as files, sizes, placeholders.

Pure functions of output chunks. An image's file name is its content's digest, so a report names the same
file for the same picture on every run and two recipes' pictures never collide.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping

from sandrun.model import OutputChunk, Transcript

IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
"""Binary image types, in order of preference, with the file suffix each is written with."""
TEXT_IMAGE_TYPES = {"image/svg+xml": "svg"}


def image_of(chunk: OutputChunk) -> tuple[str, bytes] | None:
    """(MIME type, bytes) of the preferred image in a rich chunk, or None (none, or not valid base64)."""
    data = chunk.data or {}
    for mime in IMAGE_TYPES:
        if mime in data:
            try:
                return mime, base64.b64decode(data[mime], validate=True)
            except (binascii.Error, ValueError):
                return None
    for mime in TEXT_IMAGE_TYPES:
        if mime in data:
            return mime, data[mime].encode("utf-8")
    return None


def image_name(mime: str, content: bytes) -> str:
    """The file name an image is written under: a digest of its bytes and its type's suffix."""
    suffix = IMAGE_TYPES.get(mime) or TEXT_IMAGE_TYPES[mime]
    return f"{hashlib.sha256(content).hexdigest()[:16]}.{suffix}"


def image_files(transcripts: Iterable[Transcript]) -> dict[str, bytes]:
    """Every image shown by the transcripts' cells, by the file name reports link it as."""
    files: dict[str, bytes] = {}
    for t in transcripts:
        for result in t.results:
            for chunk in result.outputs:
                image = image_of(chunk) if chunk.rich else None
                if image is not None:
                    files[image_name(*image)] = image[1]
    return files


def png_size(content: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, or None if it is not a PNG."""
    if content[:8] != b"\x89PNG\r\n\x1a\n" or content[12:16] != b"IHDR":
        return None
    return int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")


def placeholder(chunk: OutputChunk) -> str:
    """What a terminal shows for rich output: `[image/png 640x480]`, `[text/html, 120 bytes]`; or the
    text/plain of a bundle that has nothing else."""
    data: Mapping[str, str] = chunk.data or {}
    image = image_of(chunk)
    if image is not None:
        size = png_size(image[1]) if image[0] == "image/png" else None
        return f"[{image[0]} {size[0]}x{size[1]}]" if size else f"[{image[0]}, {len(image[1])} bytes]"
    others = [mime for mime in data if mime != "text/plain"]
    if not others:
        return chunk.text
    return f"[{others[0]}, {len(data[others[0]])} bytes]"
