"""Loading and checking SR3D's compiled libraries (built ahead of time by ``setup.py``; see ``build_spec``).

Every library is found next to the bindings that use it, and loaded only when

* the compiled path is enabled (``SR3D_NATIVE=0`` in the environment, or `set_enabled` (False), keeps every
  compiled path off: the pure-PyTorch twins run instead);
* its ABI version is the one these bindings were written for (`ABI_VERSION`);
* its source digest matches the sources next to it (a stale build is not used: its functions may take other
  arguments than the bindings pass).

Otherwise one `CompiledEngineWarning` names the problem and the fix, and the PyTorch path is used. Nothing is
compiled at run time. The helpers at the end validate what crosses the boundary: dtype, device, contiguity and
shape, with errors that name the function and the argument.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from . import build_spec

# The ABI the bindings are written for: SR3D_ABI_VERSION in csrc/engine.h.
ABI_VERSION = 7
# Where the libraries live: the repository root, or site-packages for an installed package.
ROOT = Path(__file__).resolve().parents[2]
FIX = "run `make setup` (or `pip install -e .`, or `colcon build`) to build it; `sr3d-doctor` shows what is in use"
ISA_NAMES = {0: "baseline", 1: "avx2+fma"}
# SR3D_ISA's values: the kernels to run (-1: the best the CPU has).
ISA_CHOICES = {"": -1, "auto": -1, "baseline": 0, "base": 0, "avx2": 1}

_enabled = os.environ.get("SR3D_NATIVE", "1").lower() not in ("0", "false", "no", "off")


class CompiledEngineWarning(RuntimeWarning):
    """A compiled library is missing, stale or incompatible: the pure-PyTorch path runs instead."""


def set_enabled(enabled: bool) -> None:
    """Use (True) or bypass (False) every compiled path in this process (tests and benchmarks compare the two)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether the compiled paths may be used (they still need their library)."""
    return _enabled


def threads() -> int:
    """The threads a compiled call uses: torch's intra-op thread count, so one setting governs both."""
    return torch.get_num_threads()


_LIBRARIES: list["CompiledLibrary"] = []  # every library the bindings declared, for `parallel_thresholds`


@contextlib.contextmanager
def parallel_thresholds(scale: float) -> Iterator[None]:
    """Multiply the work from which the compiled calls split over the threads by ``scale`` while in the block.

    Below its threshold a call runs on one thread, since starting a parallel region costs more than it saves. The
    result never depends on the split, only the time: ``scale=0`` makes every call split (so tests exercise the
    threaded code on small inputs), other values measure where the thresholds should lie.

    Args:
        scale: The factor (1: the built-in thresholds).
    """
    libs = [lib for lib in _LIBRARIES if "sr3d_set_parallel_scale" in lib.signatures and lib.get() is not None]
    was = [lib.get().sr3d_set_parallel_scale(float(scale)) for lib in libs]
    try:
        yield
    finally:
        for lib, old in zip(libs, was):
            lib.get().sr3d_set_parallel_scale(old)


@dataclass
class Status:
    """What `CompiledLibrary.status` reports.

    Attributes:
        name: The library's short name.
        path: Where it is looked for.
        state: ``active``, ``disabled``, ``missing``, ``stale``, ``incompatible`` or ``unloadable``.
        detail: Why, for any state but ``active``.
        isa: The instruction set of its kernels (``avx2+fma``, ``baseline``), when loaded.
        openmp: The OpenMP version it was built with (0: one thread only), when loaded.
    """

    name: str
    path: Path
    state: str
    detail: str = ""
    isa: str = ""
    openmp: int = 0


# (argument types, return type) of a C function, in ctypes terms.
Signature = tuple[Sequence[Any], Any]


class CompiledLibrary:
    """One compiled library, loaded on first use and checked once.

    Args:
        name: Its name in `build_spec.LIBRARIES`.
        signatures: Every function the bindings call, with its ctypes argument and return types.
    """

    def __init__(self, name: str, signatures: dict[str, Signature]) -> None:
        self.spec = build_spec.LIBRARIES[name]
        self.signatures = signatures
        self.path = ROOT / self.spec.filename
        self._lib: Optional[ctypes.CDLL] = None
        self._status: Optional[Status] = None
        self._lock = threading.Lock()
        self._reported = False  # its being unusable was in a warning
        _LIBRARIES.append(self)

    def _loaded(self) -> Status:
        """Its state, loading it (once, quietly) if not tried yet."""
        if self._status is None:
            with self._lock:
                if self._status is None:
                    self._status = self._load()
        return self._status

    def get(self) -> Optional[ctypes.CDLL]:
        """The loaded library, or None when it cannot be used: then the first call warns once for it and for
        every other declared library that cannot be used either (one warning however many are missing)."""
        if self._lib is None and self._loaded().state != "active" and not self._reported:
            _warn_unusable(stacklevel=4)
        return self._lib

    def usable(self, *tensors: torch.Tensor) -> bool:
        """The compiled paths are enabled, this library is built and current, and it can read these tensors (on
        the CPU). Each binding module exposes it as its ``available``."""
        if not _enabled or self.get() is None:
            return False
        for t in tensors:  # a loop, not all(<generator>): asked several times per layer
            if t.device.type != "cpu":
                return False
        return True

    def loaded(self) -> ctypes.CDLL:
        """The library, for a binding whose caller checked ``available`` first."""
        lib = self.get()
        if lib is None:
            raise RuntimeError(f"the compiled {self.spec.name} library is not available (check available() first)")
        return lib

    def status(self) -> Status:
        """Its state (loading it if not tried yet), whether or not the compiled paths are enabled; warns of
        nothing (a report, not a use)."""
        status = self._loaded()
        if not _enabled and status.state == "active":
            return Status(**{**status.__dict__, "state": "disabled", "detail": "SR3D_NATIVE=0 or set_enabled"})
        return status

    def _load(self) -> Status:
        name, path = self.spec.name, self.path
        if not path.is_file():
            return Status(name, path, "missing", f"no {path.name} next to its bindings")
        try:
            lib = ctypes.CDLL(str(path))  # torch is imported first: its OpenMP runtime is the one shared
        except OSError as exc:
            return Status(name, path, "unloadable", str(exc))
        try:
            lib.sr3d_abi_version.restype = ctypes.c_int
            lib.sr3d_source_digest.restype = ctypes.c_char_p
            abi, built = lib.sr3d_abi_version(), lib.sr3d_source_digest().decode()
        except AttributeError:
            return Status(name, path, "incompatible", "no ABI handshake (built by an older version)")
        if abi != ABI_VERSION:
            return Status(name, path, "incompatible", f"ABI version {abi}, these bindings need {ABI_VERSION}")
        current = build_spec.source_digest(self.spec, ROOT)
        if current is not None and built != current:
            return Status(name, path, "stale", "its C sources changed since it was built")
        for fn, (argtypes, restype) in self.signatures.items():
            try:
                f = getattr(lib, fn)
            except AttributeError:
                return Status(name, path, "incompatible", f"no function {fn}")
            f.argtypes, f.restype = list(argtypes), restype
        lib.sr3d_openmp.restype = ctypes.c_int
        isa = ""
        if hasattr(lib, "sr3d_select_isa"):
            lib.sr3d_select_isa.argtypes, lib.sr3d_select_isa.restype = [ctypes.c_int], ctypes.c_int
            asked = os.environ.get("SR3D_ISA", "")
            want = ISA_CHOICES.get(asked.lower())
            if want is None:
                warnings.warn(
                    f"SR3D_ISA={asked} is not one of {', '.join(sorted(set(ISA_CHOICES) - {''}))}: the best "
                    "instruction set the CPU has is used",
                    CompiledEngineWarning,
                    stacklevel=6,
                )
                want = -1
            chosen = lib.sr3d_select_isa(want)
            if chosen < 0:
                warnings.warn(
                    f"SR3D_ISA={os.environ.get('SR3D_ISA')} is not supported on this CPU: the best "
                    "instruction set it has is used",
                    CompiledEngineWarning,
                    stacklevel=6,
                )
                chosen = lib.sr3d_select_isa(-1)
            isa = ISA_NAMES.get(chosen, str(chosen))
        self._lib = lib
        return Status(name, path, "active", "", isa, lib.sr3d_openmp())


_REPORT_LOCK = threading.Lock()


def _warn_unusable(stacklevel: int) -> None:
    """One warning naming every declared library that cannot be used and was not named in one before."""
    with _REPORT_LOCK:
        unusable = []
        for lib in _LIBRARIES:
            status = lib._loaded()
            if status.state != "active" and not lib._reported:
                lib._reported = True
                unusable.append(status)
    if not unusable:
        return
    what = ", ".join(f"{s.name} library is {s.state} ({s.detail})" for s in unusable)
    paths = "path is" if len(unusable) == 1 else "paths are"
    warnings.warn(
        f"SR3D's compiled {what}: the slower pure-PyTorch {paths} used. To fix, {FIX}.",
        CompiledEngineWarning,
        stacklevel=stacklevel,
    )


# -- the checks at the boundary -------------------------------------------------------------------------------------


def check_tensor(fn: str, arg: str, t: Any, dtype: torch.dtype, ndim: Optional[int] = None) -> None:
    """Raise unless ``t`` is a contiguous CPU tensor of ``dtype`` (and ``ndim`` dimensions).

    Args:
        fn: The entry point's name (for the message).
        arg: The argument's name.
        t: What was passed.
        dtype: The dtype the C function reads.
        ndim: The number of dimensions, or None for any.

    Raises:
        TypeError: Not a tensor, or the wrong dtype.
        ValueError: Not on the CPU, the wrong number of dimensions, or not contiguous.
    """
    if (
        isinstance(t, torch.Tensor)
        and t.dtype is dtype
        and t.is_cpu
        and (ndim is None or t.dim() == ndim)
        and t.is_contiguous()
    ):
        return
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{fn}: {arg} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype is not dtype:
        raise TypeError(f"{fn}: {arg} must be {dtype}, got {t.dtype}")
    if not t.is_cpu:
        raise ValueError(f"{fn}: {arg} must be on the CPU, got {t.device}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{fn}: {arg} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    raise ValueError(f"{fn}: {arg} must be contiguous (call .contiguous() first)")


def check_array(fn: str, arg: str, a: Any, dtype: Any, ndim: Optional[int] = None) -> None:
    """`check_tensor` for numpy arrays (C-contiguous)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{fn}: {arg} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.dtype(dtype):
        raise TypeError(f"{fn}: {arg} must be {np.dtype(dtype)}, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{fn}: {arg} must have {ndim} dimensions, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{fn}: {arg} must be C-contiguous")


def require(fn: str, ok: bool, what: Callable[[], str]) -> None:
    """Raise ValueError naming ``fn`` unless ``ok`` (``what`` builds the message only when needed)."""
    if not ok:
        raise ValueError(f"{fn}: {what()}")


ERRORS = {
    1: "output channels are not a multiple of 8",
    2: "out of memory",
    3: "the pair list's starts do not run from 0 to its number of pairs",
    4: "a row index lies outside its set",
    5: "a size is negative or inconsistent",
}


def raise_on(fn: str, rc: int) -> None:
    """Turn a C function's error code into an exception."""
    if rc:
        exc = MemoryError if rc == 2 else ValueError
        raise exc(f"{fn}: {ERRORS.get(rc, f'error {rc}')}")
