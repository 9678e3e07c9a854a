"""Explicit backend selection: a name -> implementation-module dict and one process-wide default."""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> module path; each module implements the same functions (see torch_backend.__all__).
BACKENDS: dict[str, str] = {
    "torch": "sr3d_core.sparse.torch_backend",
    "minkowski": "sr3d_core.sparse.minkowski_backend",
}

_default = "torch"


def set_backend(name: str) -> None:
    """Select the backend used by `voxelize` / `from_coords` when none is passed (ops follow their input).

    Raises:
        ValueError: unknown name.
        ImportError: the backend's library (MinkowskiEngine) is not installed.
    """
    global _default
    get_backend(name)  # fail now, not at the first forward
    _default = name


def default_backend() -> str:
    """Name of the current default backend."""
    return _default


_modules: dict[str, ModuleType] = {}


def get_backend(name: str | None = None) -> ModuleType:
    """Implementation module of a backend (the default when name is None)."""
    name = _default if name is None else name
    module = _modules.get(name)
    if module is None:  # every layer asks, every frame: import once
        if name not in BACKENDS:
            raise ValueError(f"unknown sparse backend {name!r}; choose one of {sorted(BACKENDS)}")
        module = _modules[name] = importlib.import_module(BACKENDS[name])
    return module


def available_backends() -> list[str]:
    """Backends whose library imports here."""
    names = []
    for name in BACKENDS:
        try:
            get_backend(name)
        except ImportError:
            continue
        names.append(name)
    return names
