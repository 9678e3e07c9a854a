"""Process-wide settings for long-running detector and training processes (no ROS: the node and tools share them)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit
_KEEP = 1 << 30

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of returning it to the OS after every frame or step.

    Every convolution allocates and frees tensors of a few MB; by default glibc serves those with ``mmap`` and
    unmaps them on free, so the next frame page-faults all of that memory in again. Raising the mmap and trim
    thresholds keeps it in the heap (the process's peak memory is unchanged; it is just not handed back). Page
    faults cost anywhere from little on bare metal to most of a frame in some virtual machines: measured with
    ``training/benchmark_engine.py``. Set ``SR3D_KEEP_FREED_MEMORY=0`` to leave the allocator alone.

    Returns:
        True when the settings were applied (glibc on Linux), False otherwise. Idempotent.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("SR3D_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX),
            (_M_TRIM_THRESHOLD, _KEEP),
            (_M_TOP_PAD, 64 << 20),
        )
    )
    _applied = ok
    return ok


def set_torch_threads(requested: int) -> int:
    """Set torch's intra-op threads: ``requested``, or for 0 all usable cores but one; returns the count.

    OpenMP pools spin-wait: when other threads of the process (a ROS executor, DDS) take a core the pool needs, a
    frame takes several times longer (measured 5.6 s instead of 0.8 s per frame on 2 cores with a 30 Hz input), so
    auto leaves one.
    """
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = requested or min(torch.get_num_threads(), max(1, cores - 1))
    torch.set_num_threads(n)
    return n


def choose_device(requested: str | torch.device, local_rank: int = 0) -> tuple[torch.device, str | None]:
    """The one rule for device names (node, evaluation, training): ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

    Args:
        requested: the name.
        local_rank: the process's GPU in a multi-process run: plain ``cuda`` means ``cuda:<local_rank>`` there.

    Returns:
        ``(device, warning)``: CUDA that is unavailable (``auto`` included) falls back to the CPU and a missing
        ``cuda:N`` to ``cuda:0``, each with a warning text; otherwise the warning is None.
    """
    import torch

    req = str(requested)
    dev = torch.device("cuda" if req == "auto" else req)
    if dev.type == "cuda" and dev.index is None and local_rank:
        dev = torch.device(f"cuda:{local_rank}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu"), f"device '{req}' requested but CUDA is not available: running on the CPU (slow)"
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        return torch.device("cuda:0"), f"device '{req}' does not exist: using cuda:0"
    return dev, None


def resolve_device(device: str | torch.device) -> torch.device:
    """``choose_device``, with its fallback warning raised as a Python warning."""
    dev, warning = choose_device(device)
    if warning:
        warnings.warn(warning, stacklevel=3)
    return dev
