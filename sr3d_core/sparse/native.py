"""Optional compiled helpers of the sparse engine: the kernel-map builder, voxelization's sort-unique, the fused
gather-GEMM of a convolution, the max pool, the rotated bird's-eye-view IoU of non-maximum suppression and the
decoding of a sensor cloud's point records, in C,
built on first use with the system's C compiler and loaded with ctypes (no Python or torch headers: it builds in
about a second).

Everything here has a pure-PyTorch twin that gives identical results (the convolution and the IoU: equal up to float
rounding; the max pool's gradient goes to the first of tied maxima, not shared among them); the compiled path is
used for CPU tensors when it is available and not switched off:

* ``SR3D_NATIVE=0`` in the environment (or ``set_enabled(False)``) keeps the pure-PyTorch path;
* no C compiler, or a failed build, logs one warning and falls back to it.

The convolution kernel is compiled for the host CPU (``-march=native``, or the compiler's default target where that
flag is refused), so the library is cached per source version, compiler flags and CPU under ``$SR3D_CACHE_DIR``
(default ``~/.cache/sr3d``), written to a temporary name and renamed into place, so concurrent processes (a grid's
jobs, DDP ranks) never load a half-written file. ``python -c "from sr3d_core.sparse.native import main; main()"``
(part of ``make setup``) builds it ahead of time and prints where it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import Optional

import numpy as np
import torch

_LOG = logging.getLogger(__name__)
_SOURCE = Path(__file__).with_name("native") / "sparse_helpers.c"
# -ffp-contract=fast: ISO C mode (-std=c99) turns GCC's fused multiply-adds off; the kernels are written for them.
_CFLAGS = ("-O3", "-shared", "-fPIC", "-std=c99", "-ffp-contract=fast")
_ARCH_FLAGS = ("-march=native",)  # the vector width of the convolution kernel; dropped if the compiler refuses it
_LIBS = ("-lm",)

_lib: Optional[ctypes.CDLL] = None
_tried = False
_enabled = os.environ.get("SR3D_NATIVE", "1") not in ("0", "false", "no", "off")


def set_enabled(enabled: bool) -> None:
    """Use (True) or bypass (False) the compiled path in this process (tests compare the two)."""
    global _enabled
    _enabled = enabled


def cache_dir() -> Path:
    """Where built libraries are kept."""
    root = os.environ.get("SR3D_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "sr3d")
    return Path(root) / "native"


def _host_cpu() -> bytes:
    """The CPU's feature list (a library built with -march=native must not be loaded on another CPU model)."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            for line in f:
                if line.startswith((b"flags", b"Features", b"model name")):
                    return line
    except OSError:
        pass
    return platform.processor().encode()


def library_path() -> Path:
    """The cached library's path for this source, compiler flags, platform and CPU."""
    digest = hashlib.sha256(_SOURCE.read_bytes() + " ".join(_CFLAGS + _ARCH_FLAGS).encode()
                            + sysconfig.get_platform().encode() + _host_cpu())
    return cache_dir() / f"sr3d_native_{digest.hexdigest()[:16]}.so"


def _compiler() -> Optional[str]:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def build() -> Path:
    """Compile the library into the cache (if not there yet) and return its path.

    Raises:
        RuntimeError: no C compiler, or the compiler failed (its output is in the message).
    """
    target = library_path()
    if target.is_file():
        return target
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (tried $CC, cc, gcc, clang)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        for arch in (_ARCH_FLAGS, ()):
            cmd = [cc, *_CFLAGS, *arch, str(_SOURCE), "-o", tmp, *_LIBS]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if proc.returncode == 0:
                break
        else:
            raise RuntimeError(f"{cc} failed to build {_SOURCE.name}:\n{proc.stderr[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _load() -> Optional[ctypes.CDLL]:
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    try:
        lib = ctypes.CDLL(str(build()))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        _LOG.warning("compiled sparse helpers unavailable, using the pure-PyTorch path: %s", exc)
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.sr3d_kernel_pairs_search.argtypes = [ptr, i64, ptr, i64, ptr, i64, ctypes.c_int, ptr, ptr, ptr]
    lib.sr3d_kernel_pairs_search.restype = i64
    lib.sr3d_kernel_pairs_pack.argtypes = [ptr, i64, ctypes.c_int, i64, ptr, ptr, ptr, ptr, ptr]
    lib.sr3d_kernel_pairs_pack.restype = None
    lib.sr3d_pairs_to_table.argtypes = [ptr, ptr, ptr, i64, i64, i64, ptr]
    lib.sr3d_pairs_to_table.restype = None
    lib.sr3d_transpose_map.argtypes = [ptr, i64, i64, i64, ptr]
    lib.sr3d_transpose_map.restype = None
    lib.sr3d_unique_pick.argtypes = [ptr, ptr, i64, ctypes.c_int, ptr, ptr, ptr, ptr, ptr, ptr]
    lib.sr3d_unique_pick.restype = i64
    lib.sr3d_voxel_keys.argtypes = [ptr, i64, i64, ctypes.c_double, ctypes.c_int, i64, ctypes.c_int, i64, ptr]
    lib.sr3d_voxel_keys.restype = ctypes.c_int
    lib.sr3d_pair_starts.argtypes = [ptr, i64, i64, i64, ptr]
    lib.sr3d_pair_starts.restype = i64
    lib.sr3d_pair_fill.argtypes = [ptr, i64, i64, i64, ptr, ptr]
    lib.sr3d_pair_fill.restype = None
    lib.sr3d_conv_pairs.argtypes = [ptr, i64, ptr, ptr, ptr, i64, i64, i64, ptr, i64, ptr, ctypes.c_int]
    lib.sr3d_conv_pairs.restype = ctypes.c_int
    lib.sr3d_kernel_pairs_down3.argtypes = [ptr, i64, ptr, i64, ptr, ctypes.c_int, ctypes.c_int, ptr, ptr, ptr]
    lib.sr3d_kernel_pairs_down3.restype = i64
    lib.sr3d_convex_clip.argtypes = [ptr, i64, ptr, i64, i64, ctypes.c_double, ptr, ptr, ptr, ptr]
    lib.sr3d_convex_clip.restype = ctypes.c_int
    lib.sr3d_transpose_weights.argtypes = [ptr, i64, i64, i64, ptr]
    lib.sr3d_transpose_weights.restype = None
    lib.sr3d_conv_weight_grad.argtypes = [ptr, i64, ptr, ptr, ptr, i64, ptr, i64, ptr]
    lib.sr3d_conv_weight_grad.restype = ctypes.c_int
    lib.sr3d_max_pool.argtypes = [ptr, i64, i64, ptr, i64, ptr, ptr]
    lib.sr3d_max_pool.restype = None
    lib.sr3d_max_pool_grad.argtypes = [ptr, ptr, i64, i64, ptr, i64]
    lib.sr3d_max_pool_grad.restype = None
    lib.sr3d_rotated_iou_bev.argtypes = [ptr, ptr, i64, ptr]
    lib.sr3d_rotated_iou_bev.restype = None
    lib.sr3d_nms_rotated_bev.argtypes = [ptr, ptr, i64, ctypes.c_double, ctypes.c_int, ptr]
    lib.sr3d_nms_rotated_bev.restype = i64
    lib.sr3d_decode_records.argtypes = [ptr, i64, i64, i64, ptr, i64, ptr, ctypes.c_int32, ptr, ctypes.c_float, ptr,
                                        ptr]
    lib.sr3d_decode_records.restype = i64
    _lib = lib
    return _lib


def _library() -> ctypes.CDLL:
    """The loaded library; callers check `available` first, so it is there."""
    lib = _load()
    if lib is None:
        raise RuntimeError("the compiled sparse helpers are not available (check native.available first)")
    return lib


def available(*tensors: torch.Tensor) -> bool:
    """The compiled path is enabled, built, and can read these tensors (on the CPU)."""
    if not _enabled or (_lib is None and _load() is None):
        return False
    for t in tensors:  # a loop, not all(<generator>): asked several times per layer
        if t.device.type != "cpu":
            return False
    return True


def kernel_pairs(src_keys: torch.Tensor, dst_keys: torch.Tensor, deltas: list[int],
                 symmetric: bool) -> "PairList":
    """The pair list of a kernel map (as `pair_list` gives it) straight from the keys, no table built: offset k's
    pairs (i, o) with ``src_keys[i] == dst_keys[o] + deltas[k]``.

    Args:
        src_keys, dst_keys: strictly ascending int64 CPU key arrays.
        deltas: the key difference of every offset of a ``ks**3`` kernel in `coords.kernel_offsets` order.
        symmetric: ``src_keys`` is ``dst_keys`` and the kernel is odd (``deltas[K - 1 - k] == -deltas[k]``): only
            about half of the offsets are searched, the rest are their mirrors.
    """
    lib = _library()
    src, dst = src_keys.contiguous(), dst_keys.contiguous()
    kvol, n_out = len(deltas), dst.numel()
    ks = round(kvol ** (1 / 3))
    if ks**3 != kvol:
        raise ValueError(f"kernel_pairs: {kvol} offsets are not a cube")
    delta = torch.tensor(deltas, dtype=torch.int64)
    count = torch.empty(kvol, dtype=torch.int64)
    seg = _scratch_rows("pairs", 2, kvol * n_out)
    total = lib.sr3d_kernel_pairs_search(src.data_ptr(), src.numel(), dst.data_ptr(), n_out, delta.data_ptr(), ks,
                                         int(symmetric), count.data_ptr(), seg[0].data_ptr(), seg[1].data_ptr())
    return _pack_pairs(count, ks, symmetric, n_out, seg, total)


def _pack_pairs(count: torch.Tensor, ks: int, symmetric: bool, n_out: int, seg: torch.Tensor, total: int
                ) -> "PairList":
    """The exact-size pair list from a search's per-offset segments (``sr3d_kernel_pairs_pack``)."""
    starts = torch.empty(ks**3 + 1, dtype=torch.int64)
    rows = torch.empty((2, total), dtype=torch.int64)
    _library().sr3d_kernel_pairs_pack(count.data_ptr(), ks, int(symmetric), n_out, seg[0].data_ptr(),
                                      seg[1].data_ptr(), starts.data_ptr(), rows[0].data_ptr(), rows[1].data_ptr())
    return starts, rows[0], rows[1]


def kernel_pairs_down(src_keys: torch.Tensor, dst_keys: torch.Tensor, parent: torch.Tensor, stride: int,
                      axis_bits: int) -> "PairList":
    """`kernel_pairs` of a stride-2 convolution with a 3 x 3 x 3 kernel from a set at ``stride`` (a power of two)
    onto its parents, from the parent map (``parent[i]``: the row of input i's parent in ``dst_keys``) instead of a
    search per kernel column: the same pair list."""
    lib = _library()
    src, dst, parent = src_keys.contiguous(), dst_keys.contiguous(), parent.contiguous()
    n_out = dst.numel()
    count = torch.empty(27, dtype=torch.int64)
    seg = _scratch_rows("pairs", 2, 27 * n_out)
    total = lib.sr3d_kernel_pairs_down3(src.data_ptr(), src.numel(), dst.data_ptr(), n_out, parent.data_ptr(),
                                        stride.bit_length() - 1, axis_bits, count.data_ptr(), seg[0].data_ptr(),
                                        seg[1].data_ptr())
    if total < 0:
        raise MemoryError("sr3d_kernel_pairs_down3: out of memory")
    return _pack_pairs(count, 3, False, n_out, seg, total)


_scratch = threading.local()


def _scratch_rows(name: str, rows: int, n: int) -> torch.Tensor:
    """A ``(rows, >= n)`` int64 buffer kept per thread and name, grown as needed: working memory that would
    otherwise be fresh (page-faulted) memory in every call."""
    buf = getattr(_scratch, name, None)
    if buf is None or buf.shape[1] < n:
        buf = torch.empty((rows, max(n, 1)), dtype=torch.int64)
        setattr(_scratch, name, buf)
    return buf


def pairs_to_table(pairs: "PairList", n_in: int, n_out: int) -> torch.Tensor:
    """The ``(K, N_out)`` neighbour table of a pair list (`KernelMap.cols`): N_in where a site is empty."""
    lib = _library()
    starts, rows_in, rows_out = (t.contiguous() for t in pairs)
    kvol = starts.numel() - 1
    cols = torch.empty((kvol, n_out), dtype=torch.int64)
    lib.sr3d_pairs_to_table(starts.data_ptr(), rows_in.data_ptr(), rows_out.data_ptr(), kvol, n_in, n_out,
                            cols.data_ptr())
    return cols


def transpose_map(cols: torch.Tensor, n_in: int) -> torch.Tensor:
    """``(K, N_in)``: the output row each input row feeds under each offset, N_out where none (see ``KernelMap``)."""
    lib = _library()
    cols = cols.contiguous()
    kvol, n_out = cols.shape
    out = torch.empty((kvol, n_in), dtype=torch.int64)
    lib.sr3d_transpose_map(cols.data_ptr(), n_in, n_out, kvol, out.data_ptr())
    return out


def unique_pick(keys: torch.Tensor, prio: torch.Tensor, axis_bits: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Voxelization's grouping: ``torch.unique(keys, sorted=True, return_inverse=True)`` plus, per unique key,
    the point of highest ``prio`` (distinct int64 priorities).

    Any int64 keys are sorted right; packed coordinates (``coords.pack``, ``axis_bits`` per coordinate field)
    sort fastest: the sort runs on their fields' actual ranges.

    Returns:
        ``(unique keys (M,), inverse (N,), pick (M,))``, all int64.
    """
    lib = _library()
    keys, prio = keys.contiguous(), prio.contiguous()
    n = keys.numel()
    order, tmp, dense, ukeys, pick = _scratch_rows("unique", 5, n).unbind(0)  # ukeys, pick: M <= N, copied out
    inverse = torch.empty(n, dtype=torch.int64)
    m = lib.sr3d_unique_pick(keys.data_ptr(), prio.data_ptr(), n, axis_bits, order.data_ptr(), tmp.data_ptr(),
                             dense.data_ptr(), ukeys.data_ptr(), inverse.data_ptr(), pick.data_ptr())
    return ukeys[:m].clone(), inverse, pick[:m].clone()


def unique(keys: torch.Tensor, axis_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(keys, sorted=True, return_inverse=True)`` by the same radix sort (see `unique_pick`)."""
    ukeys, inverse, _ = unique_pick(keys, keys, axis_bits)  # any priorities: the pick is not used
    return ukeys, inverse


def voxel_keys(xyzs: list[torch.Tensor], voxel_size: float, axis_bits: int, limit: int, mode: int = 0
               ) -> Optional[torch.Tensor]:
    """Packed keys of ``floor(xyz / voxel_size)`` for float32 ``(N_b, 3)`` point sets, scene b in batch slot b.

    ``mode`` is the arithmetic of the quotient, ``voxelize.QUANTIZE_DTYPES``' number for it (0: float64).

    The sets may be row-strided views (e.g. the xyz columns of an ``(N, 6)`` cloud): they are read in place.

    Returns:
        ``(sum N_b,)`` int64 keys (``coords.pack``'s layout), or None when a point is not finite or a coordinate
        lies outside ``[-limit, limit]``.
    """
    lib = _library()
    keys = torch.empty(sum(x.shape[0] for x in xyzs), dtype=torch.int64)
    start = 0
    for b, xyz in enumerate(xyzs):
        xyz = xyz if xyz.stride(1) == 1 else xyz.contiguous()
        n = xyz.shape[0]
        if n and lib.sr3d_voxel_keys(xyz.data_ptr(), n, xyz.stride(0), float(voxel_size), int(mode), b, axis_bits,
                                     limit, keys[start:].data_ptr()):
            return None
        start += n
    return keys


def decode_records(data: np.ndarray, width: int, step: int, row_stride: int, rows: Optional[np.ndarray], n: int,
                   xyz_offsets: tuple[int, int, int], color_offset: int, color_bytes: tuple[int, int, int],
                   scale: float, affine: Optional[np.ndarray]) -> np.ndarray:
    """Points of a cloud's raw records in one pass: gathered, non-finite ones dropped, transformed, colour unpacked.

    The compiled twin of ``sr3d_ros.conversions.pointcloud2_to_array`` (+ ``transform_points``) for the common
    layout: x, y, z float32 in the host's byte order, optionally a packed colour. Same bits as that path.

    Args:
        data: the records as a uint8 array (point p at ``(p // width) * row_stride + (p % width) * step``).
        width, step, row_stride: the cloud's width, ``point_step`` and row pitch in bytes.
        rows: int64 point indices to read, in order; None reads points ``0..n-1``.
        n: how many points are read.
        xyz_offsets: byte offsets of x, y, z in a record.
        color_offset: byte offset of the packed colour, or -1 for none.
        color_bytes: which bytes of it are R, G, B.
        scale: colour scale (float32 ``1 / 255``).
        affine: float32 ``(3, 4)`` transform applied to x, y, z, or None.

    Returns:
        ``(kept, 3)``, or ``(kept, 6)`` with colour, float32.
    """
    lib = _library()
    cols = 6 if color_offset >= 0 else 3
    out = np.empty((n, cols), np.float32)
    rows_arr = None if rows is None else np.ascontiguousarray(rows, np.int64)
    off = np.asarray(xyz_offsets, np.int32)
    cb = np.asarray(color_bytes, np.int32)
    aff = None if affine is None else np.ascontiguousarray(affine, np.float32)
    kept = lib.sr3d_decode_records(data.ctypes.data, width, step, row_stride,
                                   None if rows_arr is None else rows_arr.ctypes.data, n, off.ctypes.data,
                                   color_offset, cb.ctypes.data, scale, None if aff is None else aff.ctypes.data,
                                   out.ctypes.data)
    return out[:kept]


# Profiler events of the fused convolution (its time is GEMM arithmetic, as aten::mm's is).
CONV_GEMM_EVENTS = ("sr3d::conv_pairs", "sr3d::conv_weight_grad")


def _gemm_event(i: int) -> contextlib.AbstractContextManager:
    """The profiler range of `CONV_GEMM_EVENTS` [i] while a profiler records, else nothing: the range costs ~17 us
    a call, as much as a small layer's arithmetic."""
    if torch.autograd._profiler_enabled():
        return torch.profiler.record_function(CONV_GEMM_EVENTS[i])
    return contextlib.nullcontext()


def conv_supported(x: torch.Tensor, c_out: int) -> bool:
    """The fused convolution can run: float32 CPU features, output channels a multiple of 8, library built."""
    return x.dtype == torch.float32 and c_out % 8 == 0 and available(x)


PairList = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pair_list(cols: torch.Tensor, n_in: int) -> PairList:
    """The existing (input, output) pairs of a neighbour table, offset by offset, as the convolution kernels read
    them (build once per kernel map: ``KernelMap.pair_list``).

    Args:
        cols: ``(K, N_out)`` int64 neighbour table (``KernelMap.cols``); ``n_in`` marks an empty site.
        n_in: rows of the input set.

    Returns:
        ``(starts (K + 1,), rows_in (P,), rows_out (P,))`` int64: offset k's pairs are ``[starts[k], starts[k + 1])``,
        output rows ascending (the order of ``(cols < n_in).nonzero()``).
    """
    lib = _library()
    cols = cols.contiguous()
    kvol, n_out = cols.shape
    starts = torch.empty(kvol + 1, dtype=torch.int64)
    total = lib.sr3d_pair_starts(cols.data_ptr(), kvol, n_out, n_in, starts.data_ptr())
    rows = torch.empty((2, total + 1), dtype=torch.int64)  # one slot of slack: the branchless fill writes one past
    lib.sr3d_pair_fill(cols.data_ptr(), kvol, n_out, n_in, rows[0].data_ptr(), rows[1].data_ptr())
    return starts, rows[0, :total], rows[1, :total]


def _conv_pairs(x: torch.Tensor, pairs: PairList, n_in: int, n_out: int, weight: torch.Tensor, transpose: bool):
    lib = _library()
    x, weight = x.contiguous(), weight.contiguous()
    starts, rows_in, rows_out = pairs
    out = torch.empty((n_in if transpose else n_out, weight.shape[2]), dtype=torch.float32)
    with _gemm_event(0):
        rc = lib.sr3d_conv_pairs(x.data_ptr(), x.shape[1], starts.data_ptr(), rows_in.data_ptr(), rows_out.data_ptr(),
                                 starts.numel() - 1, n_in, n_out, weight.data_ptr(), weight.shape[2], out.data_ptr(),
                                 int(transpose))
    if rc:
        raise RuntimeError(f"sr3d_conv_pairs failed (code {rc}): {weight.shape[2]} output channels")
    return out


def conv_forward(x: torch.Tensor, pairs: PairList, n_out: int, weight: torch.Tensor) -> torch.Tensor:
    """``out[o] = sum over the pairs (k, i, o) of x[i] @ weight[k]`` in one pass over the existing pairs.

    Args:
        x: ``(N_in, C_in)`` float32 features.
        pairs: the neighbour table's `pair_list`.
        n_out: rows of the output set.
        weight: ``(K, C_in, C_out)`` float32, ``C_out % 8 == 0`` (check ``conv_supported``).

    Returns:
        ``(N_out, C_out)`` float32.
    """
    return _conv_pairs(x, pairs, x.shape[0], n_out, weight, transpose=False)


def conv_input_grad(grad_out: torch.Tensor, pairs: PairList, n_in: int, weight: torch.Tensor) -> torch.Tensor:
    """The input gradient of `conv_forward`: ``grad_x[i] = sum over the pairs (k, i, o) of grad_out[o] @
    weight[k]^T``, ``(n_in, C_in)`` float32 (``C_in % 8 == 0``); no transposed table needed."""
    lib = _library()
    weight = weight.contiguous()
    kvol, c_in, c_out = weight.shape
    w_t = torch.empty((kvol, c_out, c_in), dtype=torch.float32)  # weight.transpose(1, 2), compactly
    lib.sr3d_transpose_weights(weight.data_ptr(), kvol, c_in, c_out, w_t.data_ptr())
    return _conv_pairs(grad_out, pairs, n_in, grad_out.shape[0], w_t, transpose=True)


def conv_weight_grad(x: torch.Tensor, pairs: PairList, grad_out: torch.Tensor) -> torch.Tensor:
    """``grad_w[k] = sum over offset k's pairs (i, o) of x[i]^T grad_out[o]``: ``(K, C_in, C_out)`` float32."""
    lib = _library()
    x, grad_out = x.contiguous(), grad_out.contiguous()
    starts, rows_in, rows_out = pairs
    kvol = starts.numel() - 1
    gw = torch.empty((kvol, x.shape[1], grad_out.shape[1]), dtype=torch.float32)
    with _gemm_event(1):
        rc = lib.sr3d_conv_weight_grad(x.data_ptr(), x.shape[1], starts.data_ptr(), rows_in.data_ptr(),
                                       rows_out.data_ptr(), kvol, grad_out.data_ptr(), grad_out.shape[1],
                                       gw.data_ptr())
    if rc:
        raise RuntimeError(f"sr3d_conv_weight_grad failed (code {rc}): {grad_out.shape[1]} output channels")
    return gw


def max_pool(x: torch.Tensor, parent: torch.Tensor, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over the rows of each parent: ``out[p] = max over parent[i] == p of x[i]``, per channel.

    Args:
        x: ``(N, C)`` float32 features.
        parent: ``(N,)`` int64 parent row of every row; every one of the ``n_out`` parents has a row.
        n_out: number of parents.

    Returns:
        ``out (n_out, C)`` and ``arg (n_out, C)`` int32, the first row holding each maximum (for `max_pool_grad`).
    """
    lib = _library()
    x, parent = x.contiguous(), parent.contiguous()
    out = torch.empty((n_out, x.shape[1]), dtype=torch.float32)
    if x.shape[0] >= 2**31:
        raise ValueError(f"max_pool: {x.shape[0]} rows do not fit the int32 argmax")
    arg = torch.empty((n_out, x.shape[1]), dtype=torch.int32)
    lib.sr3d_max_pool(x.data_ptr(), x.shape[0], x.shape[1], parent.data_ptr(), n_out, out.data_ptr(), arg.data_ptr())
    return out, arg


def max_pool_grad(grad_out: torch.Tensor, arg: torch.Tensor, n_in: int) -> torch.Tensor:
    """The gradient of `max_pool`: each output's gradient goes to the row in ``arg``, ``(n_in, C)`` float32."""
    lib = _library()
    grad_out = grad_out.contiguous()
    grad_x = torch.empty((n_in, grad_out.shape[1]), dtype=torch.float32)
    lib.sr3d_max_pool_grad(grad_out.data_ptr(), arg.data_ptr(), arg.shape[0], arg.shape[1], grad_x.data_ptr(), n_in)
    return grad_x


def rotated_iou_bev(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Bird's-eye-view IoU of aligned rotated box pairs, as ``rotated_iou_aligned_diff(..., bev=True)`` but without
    a gradient, computed pair by pair in float64.

    Args:
        boxes1: ``(K, 7)`` boxes ``(x, y, z, dx, dy, dz, yaw)`` on the CPU.
        boxes2: ``(K, 7)`` boxes.

    Returns:
        ``(K,)`` IoU in [0, 1], in ``boxes1``'s dtype.
    """
    lib = _library()
    a = boxes1.detach().to(torch.float64).contiguous()
    b = boxes2.detach().to(torch.float64).contiguous()
    out = torch.empty(a.shape[0], dtype=torch.float64)
    if a.shape[0]:
        lib.sr3d_rotated_iou_bev(a.data_ptr(), b.data_ptr(), a.shape[0], out.data_ptr())
    return out.to(boxes1.dtype)


def convex_clip(poly1: torch.Tensor, poly2: torch.Tensor, eps: float, grad: Optional[torch.Tensor] = None
                ) -> Optional[tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]]:
    """Intersection areas of convex polygon pairs as ``geometry.iou.convex_intersection_area`` clips them (before
    its final bound by either polygon's area), in float64, and with ``grad`` their gradient.

    Args:
        poly1: ``(K, n, 2)`` counter-clockwise polygons that get clipped (n <= 8).
        poly2: ``(K, m, 2)`` clipping polygons (m <= 8).
        eps: the machine epsilon of the caller's float type (its snapping tolerance).
        grad: ``(K,)`` gradient of the areas, or None for the areas only.

    Returns:
        ``(area (K,), grad of poly1, grad of poly2)`` (float64; the gradients None without ``grad``), or None when a
        clipped polygon outgrows the kernel's vertex slots (not convex enough; the caller's PyTorch path then).
    """
    lib = _library()
    a = poly1.detach().to(torch.float64).contiguous()
    b = poly2.detach().to(torch.float64).contiguous()
    k, n, m = a.shape[0], a.shape[1], b.shape[1]
    area = torch.empty(k, dtype=torch.float64)
    g = None if grad is None else grad.detach().to(torch.float64).contiguous()
    g1 = torch.empty_like(a) if g is not None else None
    g2 = torch.empty_like(b) if g is not None else None
    rc = lib.sr3d_convex_clip(a.data_ptr(), n, b.data_ptr(), m, k, float(eps), area.data_ptr(),
                              None if g is None else g.data_ptr(), None if g1 is None else g1.data_ptr(),
                              None if g2 is None else g2.data_ptr())
    if rc == 2:
        return None
    if rc:
        raise ValueError(f"convex_clip: polygons of {n} and {m} corners (at most 8 each)")
    return area, g1, g2


def nms_rotated_bev(boxes: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy per-class NMS on `rotated_iou_bev`, boxes in descending score order: a box is suppressed by the first
    kept box before it of its label with IoU above the threshold (the IoU compared in ``boxes``' dtype).

    Args:
        boxes: ``(K, 7)`` float CPU boxes ``(x, y, z, dx, dy, dz, yaw)``, best first.
        labels: ``(K,)`` integer labels.
        iou_threshold: suppression threshold.

    Returns:
        ``(K,)`` bool, True for the kept boxes.
    """
    lib = _library()
    b = boxes.detach().to(torch.float64).contiguous()
    lab = labels.to(torch.int64).contiguous()
    keep = torch.empty(b.shape[0], dtype=torch.uint8)
    if lib.sr3d_nms_rotated_bev(b.data_ptr(), lab.data_ptr(), b.shape[0], float(iou_threshold),
                                int(boxes.dtype != torch.float64), keep.data_ptr()) < 0:
        raise MemoryError("sr3d_nms_rotated_bev: out of memory")
    return keep.bool()


def main() -> int:
    """Build the library now and print its path (``make setup`` runs this)."""
    try:
        print(build())
    except RuntimeError as exc:
        print(f"not built (the pure-PyTorch path will be used): {exc}", file=sys.stderr)
    return 0


