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

UNSANDBOXED = frozenset({"process"})
"""Backends that isolate nothing: only the person running sandrun may choose them, never a recipe."""


def backend_name(requested: str | None, declared: str | None, where: str) -> str:
    """The backend to run a recipe on: the caller's choice (command line, API argument, pytest option),
    else the one the recipe or its project declares, else the default. A recipe that declares a backend
    which isolates nothing is refused (a `RecipeError` at `where`): its code would otherwise run with the
    user's permissions because the file said so."""
    if requested:
        return requested
    if declared in UNSANDBOXED:
        from sandrun.errors import RecipeError

        raise RecipeError(
            where,
            None,
            f"backend {declared!r} isolates nothing, so a recipe cannot choose it",
            f"to run it on this machine without a sandbox, choose it yourself: --backend {declared}",
        )
    return declared or DEFAULT_BACKEND


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
