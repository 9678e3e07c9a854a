"""Bindings of the sparse engine's compiled library (``csrc/``, built by ``setup.py`` into ``libsr3d_sparse.so``):
the kernel-map builder, voxelization's sort-unique and the fused gather-GEMM convolution with its gradients and the
max pool.

Everything here has a pure-PyTorch twin that gives identical results (the convolution: equal up to float rounding;
the max pool's gradient goes to the first of tied maxima, not shared among them); the compiled path is used for CPU
tensors when its library is built and current and not switched off (``SR3D_NATIVE=0``, `set_enabled`; see
``extension``). A missing or stale library gives one warning naming the fix, then the PyTorch path.

Every function validates what it hands to C (dtype, device, contiguity, sizes) and raises a ValueError or TypeError
naming itself and the argument instead of touching memory it should not. The work runs on
``torch.get_num_threads()`` threads, with the same bits at any count.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Optional

import torch

from . import extension
from .extension import check_tensor, raise_on, require, set_enabled, threads

__all__ = [
    "available",
    "set_enabled",
    "conv_supported",
    "kernel_pairs",
    "kernel_pairs_down",
    "pairs_to_table",
    "transpose_map",
    "unique_pick",
    "unique",
    "voxel_keys",
    "pair_list",
    "conv_forward",
    "conv_input_grad",
    "conv_weight_grad",
    "max_pool",
    "max_pool_grad",
    "PairList",
    "CONV_GEMM_EVENTS",
]

_P, _I64, _INT, _DBL = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
LIBRARY = extension.CompiledLibrary(
    "sparse",
    {
        "sr3d_kernel_pairs_search": ([_P, _I64, _P, _I64, _P, _I64, _INT, _I64, _INT, _P, _P, _P], _I64),
        "sr3d_kernel_pairs_pack": ([_P, _I64, _INT, _I64, _I64, _INT, _P, _P, _P, _P, _P], None),
        "sr3d_kernel_pairs_down3": ([_P, _I64, _P, _I64, _P, _INT, _INT, _I64, _INT, _P, _P, _P], _I64),
        "sr3d_pairs_to_table": ([_P, _P, _P, _I64, _I64, _I64, _I64, _INT, _P], _INT),
        "sr3d_transpose_map": ([_P, _I64, _I64, _I64, _INT, _P], None),
        "sr3d_pair_starts": ([_P, _I64, _I64, _I64, _P], _I64),
        "sr3d_pair_fill": ([_P, _I64, _I64, _I64, _P, _P], None),
        "sr3d_unique_pick": ([_P, _P, _I64, _INT, _INT, _P, _P, _P, _P, _P, _P], _I64),
        "sr3d_voxel_keys": ([_P, _I64, _I64, _DBL, _INT, _I64, _INT, _I64, _INT, _P], _INT),
        "sr3d_conv_pairs": ([_P, _I64, _P, _P, _P, _I64, _I64, _I64, _I64, _P, _I64, _P, _INT, _INT, _INT], _INT),
        "sr3d_conv_weight_grad": ([_P, _I64, _P, _P, _P, _I64, _I64, _I64, _I64, _P, _I64, _P, _INT, _INT], _INT),
        "sr3d_transpose_weights": ([_P, _I64, _I64, _I64, _P], None),
        "sr3d_max_pool": ([_P, _I64, _I64, _P, _I64, _P, _P, _INT], _INT),
        "sr3d_max_pool_grad": ([_P, _P, _I64, _I64, _P, _I64, _INT], _INT),
        "sr3d_set_parallel_scale": ([_DBL], _DBL),
        "sr3d_isa": ([], _INT),
    },
)
_F32, _I64T = torch.float32, torch.int64


class PairList(tuple):
    """``(starts (K + 1,), rows_in (P,), rows_out (P,))`` int64: offset k's pairs are ``[starts[k], starts[k + 1])``,
    output rows ascending. One this module built is trusted (``checked``): the calls that take it skip the checks of
    its tensors (dtype, layout, lengths: fixed when it was built) and the convolution its O(P) check of the row
    indices; only the sets it joins are compared. A plain 3-tuple works too and is checked on every use."""

    checked = False
    n_in = n_out = -1  # the sizes of its sets, where it is trusted

    @classmethod
    def trusted(
        cls, starts: torch.Tensor, rows_in: torch.Tensor, rows_out: torch.Tensor, n_in: int, n_out: int
    ) -> "PairList":
        """A pair list built by this module between sets of ``n_in`` and ``n_out`` rows (valid by construction)."""
        out = cls((starts, rows_in, rows_out))
        out.checked, out.n_in, out.n_out = True, n_in, n_out
        return out


def _check_sets(fn: str, pairs: PairList, n_in: int, n_out: int) -> None:
    """A trusted pair list is used only between the sets it was built for (its rows are not checked again)."""
    if getattr(pairs, "checked", False):
        require(
            fn,
            pairs.n_in == n_in and pairs.n_out == n_out,
            lambda: f"the pair list joins sets of {pairs.n_in} and {pairs.n_out} rows, not {n_in} and {n_out}",
        )


_library = LIBRARY.loaded
available = LIBRARY.usable  # (*tensors) -> bool: enabled, built, current, and the tensors on the CPU


def _check_keys(fn: str, arg: str, keys: torch.Tensor) -> None:
    check_tensor(fn, arg, keys, _I64T, 1)


# Packed keys hold a batch field above three coordinate fields of axis_bits each, in 63 bits.
_MAX_AXIS_BITS = 20


def _check_axis_bits(fn: str, axis_bits: int) -> None:
    require(
        fn,
        isinstance(axis_bits, int) and 1 <= axis_bits <= _MAX_AXIS_BITS,
        lambda: f"axis_bits must be an int in [1, {_MAX_AXIS_BITS}], got {axis_bits!r}",
    )


def _check_pairs(fn: str, pairs: PairList, kvol: Optional[int] = None) -> tuple[torch.Tensor, ...]:
    if type(pairs) is PairList and pairs.checked:
        # Built here from tensors this module allocated (contiguous int64 CPU, equal lengths, K + 1 starts): checked
        # once by construction, not on each of the several convolutions that share a kernel map.
        require(
            fn,
            kvol is None or pairs[0].shape[0] == kvol + 1,
            lambda: f"starts has {pairs[0].shape[0]} entries for {kvol} kernel offsets",
        )
        return pairs
    require(fn, isinstance(pairs, tuple) and len(pairs) == 3, lambda: "pairs must be (starts, rows_in, rows_out)")
    starts, rows_in, rows_out = pairs
    check_tensor(fn, "starts", starts, _I64T, 1)
    check_tensor(fn, "rows_in", rows_in, _I64T, 1)
    check_tensor(fn, "rows_out", rows_out, _I64T, 1)
    require(
        fn,
        rows_in.shape[0] == rows_out.shape[0] and starts.shape[0] >= 2,
        lambda: f"rows_in ({rows_in.shape[0]}) and rows_out ({rows_out.shape[0]}) differ in length, or starts "
        f"({starts.shape[0]}) has fewer than 2 entries",
    )
    require(
        fn,
        kvol is None or starts.shape[0] == kvol + 1,
        lambda: f"starts has {starts.shape[0]} entries for {kvol} kernel offsets",
    )
    return starts, rows_in, rows_out


# Output ranges of a search per thread: tasks of (kernel column, range), several per thread for balance.
_RANGES_PER_THREAD = 4


def kernel_pairs(src_keys: torch.Tensor, dst_keys: torch.Tensor, deltas: list[int], symmetric: bool) -> PairList:
    """The pair list of a kernel map (as `pair_list` gives it) straight from the keys, no table built: offset k's
    pairs (i, o) with ``src_keys[i] == dst_keys[o] + deltas[k]``.

    Args:
        src_keys, dst_keys: strictly ascending int64 contiguous CPU key arrays.
        deltas: the key difference of every offset of a ``ks**3`` kernel in `coords.kernel_offsets` order.
        symmetric: ``src_keys`` is ``dst_keys`` and the kernel is odd (``deltas[K - 1 - k] == -deltas[k]``): only
            about half of the offsets are searched, the rest are their mirrors.
    """
    fn = "kernel_pairs"
    _check_keys(fn, "src_keys", src_keys)
    _check_keys(fn, "dst_keys", dst_keys)
    kvol, n_out = len(deltas), dst_keys.shape[0]
    ks = round(kvol ** (1 / 3))
    require(fn, ks**3 == kvol and 1 <= ks <= 64, lambda: f"{kvol} offsets are not a cube of 1 to 64")
    require(
        fn, not symmetric or src_keys is dst_keys or ks % 2 == 1, lambda: "symmetric needs an odd kernel on one key set"
    )
    nt = threads()
    ranges = max(1, min(nt * _RANGES_PER_THREAD, n_out // 2048)) if nt > 1 else 1
    delta = torch.tensor(deltas, dtype=torch.int64)
    count = torch.empty(kvol * ranges, dtype=torch.int64)
    seg = _scratch_rows("pairs", 2, kvol * n_out)
    lib = _library()
    total = lib.sr3d_kernel_pairs_search(
        src_keys.data_ptr(),
        src_keys.shape[0],
        dst_keys.data_ptr(),
        n_out,
        delta.data_ptr(),
        ks,
        int(symmetric),
        ranges,
        nt,
        count.data_ptr(),
        seg[0].data_ptr(),
        seg[1].data_ptr(),
    )
    return _pack_pairs(count, ks, symmetric, src_keys.shape[0], n_out, ranges, seg, total)


def _pack_pairs(
    count: torch.Tensor, ks: int, symmetric: bool, n_in: int, n_out: int, ranges: int, seg: torch.Tensor, total: int
) -> PairList:
    """The exact-size pair list from a search's per-offset, per-range segments (``sr3d_kernel_pairs_pack``)."""
    starts = torch.empty(ks**3 + 1, dtype=torch.int64)
    rows = torch.empty((2, total), dtype=torch.int64)
    _library().sr3d_kernel_pairs_pack(
        count.data_ptr(),
        ks,
        int(symmetric),
        n_out,
        ranges,
        threads(),
        seg[0].data_ptr(),
        seg[1].data_ptr(),
        starts.data_ptr(),
        rows[0].data_ptr(),
        rows[1].data_ptr(),
    )
    return PairList.trusted(starts, rows[0], rows[1], n_in, n_out)


def kernel_pairs_down(
    src_keys: torch.Tensor, dst_keys: torch.Tensor, parent: torch.Tensor, stride: int, axis_bits: int
) -> PairList:
    """`kernel_pairs` of a stride-2 convolution with a 3 x 3 x 3 kernel from a set at ``stride`` (a power of two)
    onto its parents, from the parent map (``parent[i]``: the row of input i's parent in ``dst_keys``) instead of a
    search per kernel column: the same pair list."""
    fn = "kernel_pairs_down"
    _check_keys(fn, "src_keys", src_keys)
    _check_keys(fn, "dst_keys", dst_keys)
    check_tensor(fn, "parent", parent, _I64T, 1)
    require(
        fn,
        parent.shape[0] == src_keys.shape[0],
        lambda: f"parent has {parent.shape[0]} rows for {src_keys.shape[0]} keys",
    )
    require(fn, stride >= 1 and stride & (stride - 1) == 0, lambda: f"stride {stride} is not a power of two")
    _check_axis_bits(fn, axis_bits)
    require(fn, stride < 1 << (axis_bits - 1), lambda: f"stride {stride} does not fit {axis_bits}-bit fields")
    n_out = dst_keys.shape[0]
    nt = threads()
    ranges = max(1, min(nt, n_out))  # one range of parents per thread: the same pair list for any count
    count = torch.empty(27 * ranges, dtype=torch.int64)
    seg = _scratch_rows("pairs", 2, 27 * n_out)
    total = _library().sr3d_kernel_pairs_down3(
        src_keys.data_ptr(),
        src_keys.shape[0],
        dst_keys.data_ptr(),
        n_out,
        parent.data_ptr(),
        stride.bit_length() - 1,
        axis_bits,
        ranges,
        nt,
        count.data_ptr(),
        seg[0].data_ptr(),
        seg[1].data_ptr(),
    )
    if total == -2:
        raise ValueError(f"{fn}: a parent row lies outside [0, {n_out})")
    if total == -3:
        raise ValueError(f"{fn}: src_keys are not distinct children of their parents (two share a position)")
    if total < 0:
        raise MemoryError(f"{fn}: out of memory")
    return _pack_pairs(count, 3, False, src_keys.shape[0], n_out, ranges, seg, total)


_scratch = threading.local()


def _scratch_rows(name: str, rows: int, n: int) -> torch.Tensor:
    """A ``(rows, >= n)`` int64 buffer kept per thread and name, grown as needed: working memory that would
    otherwise be fresh (page-faulted) memory in every call."""
    buf = getattr(_scratch, name, None)
    if buf is None or buf.shape[1] < n:
        buf = torch.empty((rows, max(n, 1)), dtype=torch.int64)
        setattr(_scratch, name, buf)
    return buf


def pairs_to_table(pairs: PairList, n_in: int, n_out: int) -> torch.Tensor:
    """The ``(K, N_out)`` neighbour table of a pair list (`KernelMap.cols`): N_in where a site is empty."""
    fn = "pairs_to_table"
    starts, rows_in, rows_out = _check_pairs(fn, pairs)
    _check_sets(fn, pairs, n_in, n_out)
    kvol = starts.shape[0] - 1
    cols = torch.empty((kvol, n_out), dtype=torch.int64)
    rc = _library().sr3d_pairs_to_table(
        starts.data_ptr(),
        rows_in.data_ptr(),
        rows_out.data_ptr(),
        rows_in.shape[0],
        kvol,
        n_in,
        n_out,
        threads(),
        cols.data_ptr(),
    )
    raise_on(fn, rc)
    return cols


def transpose_map(cols: torch.Tensor, n_in: int) -> torch.Tensor:
    """``(K, N_in)``: the output row each input row feeds under each offset, N_out where none (see ``KernelMap``)."""
    check_tensor("transpose_map", "cols", cols, _I64T, 2)
    kvol, n_out = cols.shape
    out = torch.empty((kvol, n_in), dtype=torch.int64)
    _library().sr3d_transpose_map(cols.data_ptr(), n_in, n_out, kvol, threads(), out.data_ptr())
    return out


def unique_pick(
    keys: torch.Tensor, prio: torch.Tensor, axis_bits: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Voxelization's grouping: ``torch.unique(keys, sorted=True, return_inverse=True)`` plus, per unique key,
    the point of highest ``prio`` (distinct int64 priorities).

    Any int64 keys are sorted right; packed coordinates (``coords.pack``, ``axis_bits`` per coordinate field)
    sort fastest: the sort runs on their fields' actual ranges.

    Returns:
        ``(unique keys (M,), inverse (N,), pick (M,))``, all int64.
    """
    fn = "unique_pick"
    _check_keys(fn, "keys", keys)
    check_tensor(fn, "prio", prio, _I64T, 1)
    _check_axis_bits(fn, axis_bits)
    n = keys.shape[0]
    require(fn, prio.shape[0] == n, lambda: f"prio has {prio.shape[0]} entries for {n} keys")
    order, tmp, dense, ukeys, pick = _scratch_rows("unique", 5, n).unbind(0)  # ukeys, pick: M <= N, copied out
    inverse = torch.empty(n, dtype=torch.int64)
    m = _library().sr3d_unique_pick(
        keys.data_ptr(),
        prio.data_ptr(),
        n,
        axis_bits,
        threads(),
        order.data_ptr(),
        tmp.data_ptr(),
        dense.data_ptr(),
        ukeys.data_ptr(),
        inverse.data_ptr(),
        pick.data_ptr(),
    )
    if m < 0:
        raise MemoryError(f"{fn}: out of memory")
    return ukeys[:m].clone(), inverse, pick[:m].clone()


def unique(keys: torch.Tensor, axis_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(keys, sorted=True, return_inverse=True)`` by the same radix sort (see `unique_pick`)."""
    ukeys, inverse, _ = unique_pick(keys, keys, axis_bits)  # any priorities: the pick is not used
    return ukeys, inverse


def voxel_keys(
    xyzs: list[torch.Tensor], voxel_size: float, axis_bits: int, limit: int, mode: int = 0
) -> Optional[torch.Tensor]:
    """Packed keys of ``floor(xyz / voxel_size)`` for float32 ``(N_b, 3)`` point sets, scene b in batch slot b.

    ``mode`` is the arithmetic of the quotient, ``voxelize.QUANTIZE_DTYPES``' number for it (0: float64).

    The sets may be row-strided views (e.g. the xyz columns of an ``(N, 6)`` cloud): they are read in place; their
    columns must be adjacent. ``limit`` must leave room for the sign in an ``axis_bits``-wide field, and the batch
    for its field above them.

    Returns:
        ``(sum N_b,)`` int64 keys (``coords.pack``'s layout), or None when a point is not finite or a coordinate
        lies outside ``[-limit, limit]``.
    """
    fn = "voxel_keys"
    for b, xyz in enumerate(xyzs):
        if not (
            isinstance(xyz, torch.Tensor)
            and xyz.dtype is torch.float32
            and xyz.is_cpu
            and xyz.dim() == 2
            and xyz.shape[1] == 3
            and (xyz.stride(1) == 1 or xyz.shape[0] == 0)
        ):
            raise (TypeError if not isinstance(xyz, torch.Tensor) or xyz.dtype is not torch.float32 else ValueError)(
                f"{fn}: xyzs[{b}] must be a float32 CPU (N, 3) tensor with adjacent columns, got "
                f"{getattr(xyz, 'dtype', type(xyz).__name__)} {tuple(getattr(xyz, 'shape', ()))}"
            )
    require(fn, voxel_size > 0 and mode in (0, 1, 2), lambda: f"voxel size {voxel_size} or mode {mode} invalid")
    _check_axis_bits(fn, axis_bits)
    require(
        fn,
        0 <= limit < 1 << (axis_bits - 1) and len(xyzs) <= 1 << (63 - 3 * axis_bits),
        lambda: f"limit {limit} or {len(xyzs)} scenes do not fit keys of {axis_bits}-bit fields",
    )
    lib = _library()
    keys = torch.empty(sum(x.shape[0] for x in xyzs), dtype=torch.int64)
    start = 0
    for b, xyz in enumerate(xyzs):
        n = xyz.shape[0]
        if n and lib.sr3d_voxel_keys(
            xyz.data_ptr(),
            n,
            xyz.stride(0),
            float(voxel_size),
            int(mode),
            b,
            axis_bits,
            limit,
            threads(),
            keys[start:].data_ptr(),
        ):
            return None
        start += n
    return keys


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
    fn = "pair_list"
    check_tensor(fn, "cols", cols, _I64T, 2)
    require(
        fn,
        bool(cols.numel() == 0 or (int(cols.min()) >= 0 and int(cols.max()) <= n_in)),
        lambda: f"table entries must lie in [0, {n_in}]",
    )
    lib = _library()
    kvol, n_out = cols.shape
    starts = torch.empty(kvol + 1, dtype=torch.int64)
    total = lib.sr3d_pair_starts(cols.data_ptr(), kvol, n_out, n_in, starts.data_ptr())
    rows = torch.empty((2, total + 1), dtype=torch.int64)  # one slot of slack: the branchless fill writes one past
    lib.sr3d_pair_fill(cols.data_ptr(), kvol, n_out, n_in, rows[0].data_ptr(), rows[1].data_ptr())
    return PairList.trusted(starts, rows[0, :total], rows[1, :total], n_in, n_out)


def _check_conv(
    fn: str, x: torch.Tensor, pairs: PairList, weight: torch.Tensor, x_rows: int, x_name: str
) -> tuple[torch.Tensor, ...]:
    check_tensor(fn, x_name, x, _F32, 2)
    check_tensor(fn, "weight", weight, _F32, 3)
    starts, rows_in, rows_out = _check_pairs(fn, pairs, weight.shape[0])
    require(fn, x.shape[0] == x_rows, lambda: f"{x_name} has {x.shape[0]} rows, the pair list's set {x_rows}")
    return starts, rows_in, rows_out


def _conv_pairs(
    fn: str, x: torch.Tensor, pairs: PairList, n_in: int, n_out: int, weight: torch.Tensor, transpose: bool
) -> torch.Tensor:
    starts, rows_in, rows_out = pairs
    kvol, c_in, c_out = weight.shape
    require(
        fn,
        x.shape[1] == c_in and c_out % 8 == 0 and c_out > 0 and c_in > 0,
        lambda: f"features of {x.shape[1]} channels against weights {tuple(weight.shape)} (output channels "
        "must be a multiple of 8)",
    )
    out = torch.empty((n_in if transpose else n_out, c_out), dtype=torch.float32)
    with _gemm_event(0):
        rc = _library().sr3d_conv_pairs(
            x.data_ptr(),
            c_in,
            starts.data_ptr(),
            rows_in.data_ptr(),
            rows_out.data_ptr(),
            rows_in.shape[0],
            kvol,
            n_in,
            n_out,
            weight.data_ptr(),
            c_out,
            out.data_ptr(),
            int(transpose),
            int(not getattr(pairs, "checked", False)),
            threads(),
        )
    raise_on(fn, rc)
    return out


def conv_forward(x: torch.Tensor, pairs: PairList, n_out: int, weight: torch.Tensor) -> torch.Tensor:
    """``out[o] = sum over the pairs (k, i, o) of x[i] @ weight[k]`` in one pass over the existing pairs.

    Args:
        x: ``(N_in, C_in)`` float32 contiguous features.
        pairs: the neighbour table's `pair_list`.
        n_out: rows of the output set.
        weight: ``(K, C_in, C_out)`` float32 contiguous, ``C_out % 8 == 0`` (check ``conv_supported``).

    Returns:
        ``(N_out, C_out)`` float32.
    """
    fn = "conv_forward"
    _check_conv(fn, x, pairs, weight, x.shape[0] if isinstance(x, torch.Tensor) else 0, "x")
    _check_sets(fn, pairs, x.shape[0], n_out)
    return _conv_pairs(fn, x, pairs, x.shape[0], n_out, weight, transpose=False)


def conv_input_grad(grad_out: torch.Tensor, pairs: PairList, n_in: int, weight: torch.Tensor) -> torch.Tensor:
    """The input gradient of `conv_forward`: ``grad_x[i] = sum over the pairs (k, i, o) of grad_out[o] @
    weight[k]^T``, ``(n_in, C_in)`` float32 (``C_in % 8 == 0``); no transposed table needed."""
    fn = "conv_input_grad"
    _check_conv(fn, grad_out, pairs, weight, grad_out.shape[0] if isinstance(grad_out, torch.Tensor) else 0, "grad_out")
    _check_sets(fn, pairs, n_in, grad_out.shape[0])
    kvol, c_in, c_out = weight.shape
    require(
        fn,
        grad_out.shape[1] == c_out and c_in % 8 == 0,
        lambda: f"gradient of {grad_out.shape[1]} channels against weights {tuple(weight.shape)} (input "
        "channels must be a multiple of 8)",
    )
    w_t = torch.empty((kvol, c_out, c_in), dtype=torch.float32)  # weight.transpose(1, 2), compactly
    _library().sr3d_transpose_weights(weight.data_ptr(), kvol, c_in, c_out, w_t.data_ptr())
    return _conv_pairs(fn, grad_out, pairs, n_in, grad_out.shape[0], w_t, transpose=True)


def conv_weight_grad(x: torch.Tensor, pairs: PairList, grad_out: torch.Tensor) -> torch.Tensor:
    """``grad_w[k] = sum over offset k's pairs (i, o) of x[i]^T grad_out[o]``: ``(K, C_in, C_out)`` float32."""
    fn = "conv_weight_grad"
    check_tensor(fn, "x", x, _F32, 2)
    check_tensor(fn, "grad_out", grad_out, _F32, 2)
    starts, rows_in, rows_out = _check_pairs(fn, pairs)
    _check_sets(fn, pairs, x.shape[0], grad_out.shape[0])
    kvol, c_in, c_out = starts.shape[0] - 1, x.shape[1], grad_out.shape[1]
    require(
        fn,
        c_out % 8 == 0 and c_out > 0 and c_in > 0,
        lambda: f"{c_in} input and {c_out} output channels (output channels must be a multiple of 8)",
    )
    gw = torch.empty((kvol, c_in, c_out), dtype=torch.float32)
    with _gemm_event(1):
        rc = _library().sr3d_conv_weight_grad(
            x.data_ptr(),
            c_in,
            starts.data_ptr(),
            rows_in.data_ptr(),
            rows_out.data_ptr(),
            rows_in.shape[0],
            kvol,
            x.shape[0],
            grad_out.shape[0],
            grad_out.data_ptr(),
            c_out,
            gw.data_ptr(),
            int(not getattr(pairs, "checked", False)),
            threads(),
        )
    raise_on(fn, rc)
    return gw


def max_pool(x: torch.Tensor, parent: torch.Tensor, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over the rows of each parent: ``out[p] = max over parent[i] == p of x[i]``, per channel.

    Args:
        x: ``(N, C)`` float32 contiguous features.
        parent: ``(N,)`` int64 parent row of every row; every one of the ``n_out`` parents has a row.
        n_out: number of parents.

    Returns:
        ``out (n_out, C)`` and ``arg (n_out, C)`` int32, the first row holding each maximum (for `max_pool_grad`).
    """
    fn = "max_pool"
    check_tensor(fn, "x", x, _F32, 2)
    check_tensor(fn, "parent", parent, _I64T, 1)
    require(fn, parent.shape[0] == x.shape[0], lambda: f"parent has {parent.shape[0]} rows, x {x.shape[0]}")
    require(fn, x.shape[0] < 2**31, lambda: f"{x.shape[0]} rows do not fit the int32 argmax")
    out = torch.empty((n_out, x.shape[1]), dtype=torch.float32)
    arg = torch.empty((n_out, x.shape[1]), dtype=torch.int32)
    rc = _library().sr3d_max_pool(
        x.data_ptr(), x.shape[0], x.shape[1], parent.data_ptr(), n_out, out.data_ptr(), arg.data_ptr(), threads()
    )
    raise_on(fn, rc)
    return out, arg


def max_pool_grad(grad_out: torch.Tensor, arg: torch.Tensor, n_in: int) -> torch.Tensor:
    """The gradient of `max_pool`: each output's gradient goes to the row in ``arg``, ``(n_in, C)`` float32."""
    fn = "max_pool_grad"
    check_tensor(fn, "grad_out", grad_out, _F32, 2)
    check_tensor(fn, "arg", arg, torch.int32, 2)
    require(
        fn,
        arg.shape == grad_out.shape,
        lambda: f"arg {tuple(arg.shape)} and grad_out " f"{tuple(grad_out.shape)} differ",
    )
    grad_x = torch.empty((n_in, grad_out.shape[1]), dtype=torch.float32)
    rc = _library().sr3d_max_pool_grad(
        grad_out.data_ptr(), arg.data_ptr(), arg.shape[0], arg.shape[1], grad_x.data_ptr(), n_in, threads()
    )
    raise_on(fn, rc)
    return grad_x
