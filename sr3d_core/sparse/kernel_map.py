"""Vectorized construction of derived coordinate sets and kernel maps (pure PyTorch, any device)."""

from __future__ import annotations

import torch

from . import native
from .coords import AXIS_BITS, COORD_LIMIT, OFFSET, CoordSet, KernelMap, check_coords, kernel_offsets, offset_key, pack


def _unique(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique keys and the row of every key among them (compiled on the CPU when available)."""
    if native.available(keys):
        return native.unique(keys.contiguous(), AXIS_BITS)
    return torch.unique(keys, sorted=True, return_inverse=True)


def downsample(src: CoordSet, factor: int = 2) -> tuple[CoordSet, torch.Tensor]:
    """Coordinates at stride ``factor * s``: unique(floor(c / (factor*s)) * factor*s) (ME's stride rule).

    Args:
        src: input set at stride s.
        factor: stride multiplier.

    Returns:
        The output set and, for every input row, the row of its parent (int64, (N_in,)).
    """
    out_stride = src.stride * factor
    if out_stride & (out_stride - 1) == 0 and out_stride <= OFFSET:
        # Each packed field holds c + OFFSET, and OFFSET is a multiple of the power-of-two stride S, so
        # floor(c / S) * S is that field with its low log2(S) bits cleared: one mask over the keys.
        low = out_stride - 1
        parent_keys = src.keys & ~(low | low << AXIS_BITS | low << (2 * AXIS_BITS))
    else:
        c = src.coords.clone()
        c[:, 1:] = torch.div(c[:, 1:], out_stride, rounding_mode="floor") * out_stride
        parent_keys = pack(c)
    keys, inverse = _unique(parent_keys)
    return CoordSet(None, keys, out_stride), inverse


def generative_upsample(src: CoordSet, kernel_size: int, factor: int = 2) -> tuple[CoordSet, torch.Tensor]:
    """Every child coordinate of a generative transposed conv: c + offset_k at the output stride s = S / factor.

    Mirrors ME's ``stride_region`` with a transposed kernel region: the region is laid out at the output stride
    and every offset of every input coordinate becomes an output coordinate.

    Returns:
        The output set at stride S / factor and the (N_in, K) output row of input row i under kernel index k.
    """
    if src.stride % factor:
        raise ValueError(f"cannot upsample a tensor at stride {src.stride} by {factor}")
    out_stride = src.stride // factor
    offs = kernel_offsets(kernel_size, out_stride)
    n, k = src.keys.shape[0], len(offs)
    reach = max(abs(d) for o in offs for d in o)
    xyz = src.coords[:, 1:]
    if n and (int(xyz.min()) - reach < -COORD_LIMIT or int(xyz.max()) + reach > COORD_LIMIT):
        child = src.coords[:, None, :].expand(n, k, 4).clone()
        child[:, :, 1:] += torch.tensor(offs, dtype=torch.long, device=src.keys.device)[None]
        check_coords(child.reshape(n * k, 4), "generative transposed conv output")  # names the bad coordinate
    # Inside the range a child's key is its parent's plus the offset's key difference (no carry between fields).
    deltas = torch.tensor([offset_key(*o) for o in offs], dtype=torch.long, device=src.keys.device)
    keys, inverse = _unique((src.keys[:, None] + deltas[None]).reshape(-1))
    return CoordSet(None, keys, out_stride), inverse.reshape(n, k)


def union(a: CoordSet, b: CoordSet) -> tuple[CoordSet, torch.Tensor, torch.Tensor]:
    """Union of two sets at the same stride, with the union row of every row of ``a`` and of ``b``."""
    keys, inverse = _unique(torch.cat([a.keys, b.keys]))
    na = a.keys.shape[0]
    return CoordSet(None, keys, a.stride), inverse[:na], inverse[na:]


# Dense look-up tables are used while they have at most this many cells per voxel (or up to _GRID_MIN_CELLS);
# beyond that the sorted-key search is cheaper in memory and time.
_GRID_CELLS_PER_VOXEL = 24
_GRID_MIN_CELLS = 1 << 21
_GRID_MAX_CELLS = 1 << 24  # 64 MiB of int32


def _grid_lookup(src: CoordSet, dst: CoordSet, offs: list[tuple[int, int, int]]) -> torch.Tensor | None:
    """Neighbour table through a dense index table over the bounding box (None when the box is too sparse).

    The box is padded by the kernel reach on every side, so a neighbour never wraps into another row, plane or
    scene; every (output, offset) query is then one gather, all offsets at once.

    Returns:
        (K, N_out) int64 input rows, -1 where the neighbour does not exist.
    """
    s = src.stride
    reach = max(max(abs(v) for v in o) for o in offs)
    both = torch.cat([src.coords[:, 1:], dst.coords[:, 1:]])
    lo = torch.div(both.min(0).values - reach, s, rounding_mode="floor") * s
    dims = (both.max(0).values + reach - lo) // s + 1
    n_batch = int(max(src.coords[:, 0].max(), dst.coords[:, 0].max())) + 1
    dx, dy, dz = (int(v) for v in dims)
    cells = n_batch * dx * dy * dz
    budget = max(_GRID_MIN_CELLS, _GRID_CELLS_PER_VOXEL * (src.keys.numel() + dst.keys.numel()))
    if cells > min(budget, _GRID_MAX_CELLS):
        return None

    def lin(c: torch.Tensor) -> torch.Tensor:
        g = (c[:, 1:] - lo) // s
        return ((c[:, 0] * dx + g[:, 0]) * dy + g[:, 1]) * dz + g[:, 2]

    device = src.keys.device
    table = torch.full((cells,), -1, dtype=torch.int32, device=device)  # int32: the table can be large
    table[lin(src.coords)] = torch.arange(src.keys.numel(), dtype=torch.int32, device=device)
    step = torch.tensor([((ox // s) * dy + oy // s) * dz + oz // s for ox, oy, oz in offs], device=device)
    return table[step[:, None] + lin(dst.coords)[None, :]].long()


def _search_lookup(src: CoordSet, dst: CoordSet, kernel_size: int) -> torch.Tensor:
    """Neighbour table by binary search in the sorted input keys, one search per (output, x/y column).

    Keys sort by (batch, x, y, z), so the inputs of one (x, y) column with z in the kernel's range are
    consecutive, and there are at most ``kernel_size`` of them (input z are multiples of the stride, the kernel's
    z offsets are consecutive multiples too): a window of ``kernel_size`` keys from the first key >= the lowest
    z offset holds every candidate. That is ks^2 searches per output instead of ks^3.

    Returns:
        (K, N_out) int64 input rows, -1 where the neighbour does not exist.
    """
    s, ks = src.stride, kernel_size
    offs = kernel_offsets(ks, s)
    n, n_in = dst.keys.shape[0], src.keys.shape[0]
    dev = src.keys.device
    # Column c = ix + iy * ks starts at offset index c (iz = 0); k = c + iz * ks^2.
    low = torch.tensor([offset_key(*offs[c]) for c in range(ks * ks)], device=dev)
    first = dst.keys[:, None] + low[None, :]  # (N, ks^2) key of the lowest z offset of every column
    pos = torch.searchsorted(src.keys, first)[..., None] + torch.arange(ks, device=dev)  # (N, ks^2, window)
    pos.clamp_(max=n_in - 1)
    rel = src.keys[pos] - first[..., None]  # z distance from the lowest offset, in base voxels
    # A window key in another column lies thousands of keys away (the packing margin), and same-column keys are
    # multiples of s apart, so the keys inside [0, ks * s) are exactly the neighbours; rel // s is their z index.
    # (rel < 0: the window was clamped at the end of the array.)
    hits = ((rel >= 0) & (rel < ks * s)).view(-1).nonzero().squeeze(1)
    slot = torch.div(hits, ks, rounding_mode="floor") * ks + torch.div(rel.view(-1)[hits], s, rounding_mode="floor")
    nbr = torch.full((n * ks * ks * ks,), -1, dtype=torch.long, device=dev)
    nbr[slot] = pos.view(-1)[hits]
    return nbr.view(n, ks * ks, ks).permute(2, 1, 0).reshape(ks**3, n)  # k = column + iz * ks^2


def build_kernel_map(src: CoordSet, dst: CoordSet, kernel_size: int, parent: torch.Tensor | None = None) -> KernelMap:
    """Kernel map of a (non-transposed) conv from ``src`` (stride s) to ``dst``.

    ME semantics: output row o receives input row i under kernel index k when coord(i) = coord(o) + offset_k(s)
    (same batch). On the CPU the compiled merge of the sorted key arrays builds its pair list (``native``); for a
    3 x 3 x 3 kernel onto ``src``'s parents (``dst`` from `downsample`, ``parent`` its row of every input) the
    parent map gives it with fewer searches (a 1 x 1 x 1 kernel: no search at all). Otherwise it is a neighbour
    table built in one vectorized pass for all K offsets (a dense index table over the bounding box when it is
    small enough, a sorted-key search otherwise).
    All give the same map.
    """
    n_in, n_out = src.keys.shape[0], dst.keys.shape[0]
    kvol = kernel_size**3
    if n_in == 0 or n_out == 0:
        return KernelMap(
            torch.full((kvol, n_out), n_in, dtype=torch.long, device=dst.keys.device), n_in, n_out, symmetric=False
        )
    offs = kernel_offsets(kernel_size, src.stride)
    symmetric = src is dst and kernel_size % 2 == 1
    if native.available(src.keys, dst.keys):
        # The pair list only: the compiled convolution reads nothing else (the table is derived if asked for).
        onto_parents = (
            parent is not None
            and dst.stride == 2 * src.stride
            and src.stride & (src.stride - 1) == 0
            and src.stride <= OFFSET
        )
        if onto_parents and kernel_size == 3:
            pairs = native.kernel_pairs_down(
                src.keys.contiguous(), dst.keys.contiguous(), parent.contiguous(), src.stride, AXIS_BITS
            )
        elif onto_parents and kernel_size == 1:
            # A 1 x 1 x 1 kernel onto the parents: the inputs on the parents' grid (the bit of stride s clear in
            # every field), each to its parent; ascending inputs there have ascending parents.
            odd = src.stride | src.stride << AXIS_BITS | src.stride << (2 * AXIS_BITS)
            rows_in = ((src.keys & odd) == 0).nonzero().squeeze(1)
            starts = torch.tensor([0, rows_in.numel()], dtype=torch.long)
            pairs = (starts, rows_in, parent.index_select(0, rows_in))
        else:
            src_keys = src.keys.contiguous()
            dst_keys = src_keys if src is dst else dst.keys.contiguous()
            pairs = native.kernel_pairs(src_keys, dst_keys, [offset_key(*o) for o in offs], symmetric)
        return KernelMap(None, n_in, n_out, symmetric, pair_list=pairs)
    cols = _grid_lookup(src, dst, offs)
    if cols is None:
        cols = _search_lookup(src, dst, kernel_size)
    # Missing neighbours point at row n_in: the zero row appended to the features by the convolution.
    cols = torch.where(cols < 0, n_in, cols)
    # With src == dst and an odd kernel, offset -d is index K - 1 - k, so the transposed map is a column flip.
    return KernelMap(cols, n_in, n_out, symmetric)
