"""Backends by name. Each is imported only when asked for, so `modal` costs nothing on the local path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandrun.backends.base import Backend

BACKENDS: dict[str, str] = {
    "local": "sandrun.backends.local:LocalBackend",
    "process": "sandrun.backends.process:ProcessBackend",
    "modal": "sandrun.backends.modal_backend:ModalBackend",
}
"""Backend name -> `module:Class`. Built-in backends register here the same way a plugin would."""

DEFAULT_BACKEND = "local"


def get_backend(name: str, env: Mapping[str, str] | None = None) -> Backend:
    """A backend instance by name, configured from `env` (the caller's environment variables, e.g.
    SANDRUN_BWRAP); an unknown name is a usage error listing the known ones."""
    from importlib import import_module

    from sandrun.errors import UsageError

    target = BACKENDS.get(name)
    if target is None:
        raise UsageError(f"unknown backend {name!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
    module, _, cls = target.partition(":")
    backend: Backend = getattr(import_module(module), cls)(env or {})
    return backend
