"""Vectorized construction of derived coordinate sets and kernel maps (pure PyTorch, any device)."""

from __future__ import annotations

import torch

from .coords import RADIX, CoordSet, KernelMap, check_coords, kernel_offsets, pack, unpack


def downsample(src: CoordSet, factor: int = 2) -> tuple[CoordSet, torch.Tensor]:
    """Coordinates at stride ``factor * s``: unique(floor(c / (factor*s)) * factor*s) (ME's stride rule).

    Args:
        src: input set at stride s.
        factor: stride multiplier.

    Returns:
        The output set and, for every input row, the row of its parent (int64, (N_in,)).
    """
    out_stride = src.stride * factor
    c = src.coords.clone()
    c[:, 1:] = torch.div(c[:, 1:], out_stride, rounding_mode="floor") * out_stride
    keys, inverse = torch.unique(pack(c), sorted=True, return_inverse=True)
    return CoordSet(unpack(keys), keys, out_stride), inverse


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
    offs = torch.tensor(kernel_offsets(kernel_size, out_stride), dtype=torch.long, device=src.keys.device)
    n, k = src.coords.shape[0], offs.shape[0]
    child = src.coords[:, None, :].expand(n, k, 4).clone()
    child[:, :, 1:] += offs[None]
    child = child.reshape(n * k, 4)
    check_coords(child, "generative transposed conv output")
    keys, inverse = torch.unique(pack(child), sorted=True, return_inverse=True)
    return CoordSet(unpack(keys), keys, out_stride), inverse.reshape(n, k)


def union(a: CoordSet, b: CoordSet) -> tuple[CoordSet, torch.Tensor, torch.Tensor]:
    """Union of two sets at the same stride, with the union row of every row of ``a`` and of ``b``."""
    keys, inverse = torch.unique(torch.cat([a.keys, b.keys]), sorted=True, return_inverse=True)
    na = a.keys.shape[0]
    return CoordSet(unpack(keys), keys, a.stride), inverse[:na], inverse[na:]


def _search_column(in_keys: torch.Tensor, base: torch.Tensor, dz: list[int], step: int
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Find, for each query base key and each z offset in ``dz``, the input row holding ``base + dz``.

    One ``searchsorted`` per (dx, dy) column instead of one per offset: the inputs in a column with z in
    [dz[0], dz[-1]] are consecutive in the sorted key array and there are at most len(dz) of them (input z values
    are multiples of ``step`` and dz is an arithmetic progression with difference ``step``), so a window of
    len(dz) keys starting at the first key >= base + dz[0] holds every candidate.

    Returns:
        For each dz: (query rows that have a neighbour, the neighbour's input rows), both ascending.
    """
    n_in, width = in_keys.shape[0], len(dz)
    start = torch.searchsorted(in_keys, base + dz[0])
    pos = (start[:, None] + torch.arange(width, device=in_keys.device)).clamp_(max=n_in - 1)
    rel = in_keys[pos] - (base + dz[0])[:, None]  # z distance (in base voxels) from the first offset
    out = []
    for j in range(width):
        hit = rel == j * step
        rows = hit.any(1).nonzero().squeeze(1)
        col = hit[rows].to(torch.uint8).argmax(1)
        out.append((rows, pos[rows, col]))
    return out


# Dense look-up tables are used while they have at most this many cells per voxel (or up to _GRID_MIN_CELLS);
# beyond that the sorted-key search is cheaper in memory and time.
_GRID_CELLS_PER_VOXEL = 24
_GRID_MIN_CELLS = 1 << 21
_GRID_MAX_CELLS = 1 << 24  # 64 MiB of int32


def _grid_lookup(src: CoordSet, dst: CoordSet, offs: list[tuple[int, int, int]], wanted: list[int]
                 ) -> dict[int, tuple[torch.Tensor, torch.Tensor]] | None:
    """Kernel-map pairs through a dense index table over the bounding box (None when the box is too sparse).

    The box is padded by the kernel reach on every side, so a neighbour never wraps into another row, plane or
    scene; a query is then one gather per offset instead of a binary search.
    """
    s = src.stride
    reach = max(max(abs(v) for v in o) for o in offs)
    both = torch.cat([src.coords[:, 1:], dst.coords[:, 1:]])
    lo = (torch.div(both.min(0).values - reach, s, rounding_mode="floor") * s)
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

    table = torch.full((cells,), -1, dtype=torch.int32, device=src.keys.device)
    table[lin(src.coords)] = torch.arange(src.keys.numel(), dtype=torch.int32, device=src.keys.device)
    base = lin(dst.coords)
    found = {}
    for k in wanted:
        ox, oy, oz = offs[k]
        idx = table[base + ((ox // s) * dy + oy // s) * dz + oz // s]
        rows = (idx >= 0).nonzero().squeeze(1)
        if rows.numel():
            found[k] = (idx[rows].long(), rows)
    return found


def build_kernel_map(src: CoordSet, dst: CoordSet, kernel_size: int) -> KernelMap:
    """Kernel map of a (non-transposed) conv from ``src`` (stride s) to ``dst``.

    ME semantics: output row o receives input row i under kernel index k when coord(i) = coord(o) + offset_k(s)
    (same batch). When src is dst and the kernel is odd, the map is symmetric (offset -d is offset d with rows
    swapped, and ME's index of -d is K - 1 - k), so only half of the columns are searched.
    """
    s, ks = src.stride, kernel_size
    n_in, n_out = src.keys.shape[0], dst.keys.shape[0]
    kvol = ks**3
    if n_in == 0 or n_out == 0:
        return KernelMap([], None, n_in, n_out)
    offs = kernel_offsets(ks, s)
    same = src is dst and ks % 2 == 1
    center = kvol // 2
    wanted = [k for k in range(kvol) if not same or k < center]
    grid = _grid_lookup(src, dst, offs, wanted)
    found: dict[int, tuple[torch.Tensor, torch.Tensor]] = {} if grid is None else grid
    for col in range(ks * ks if grid is None else 0):
        ix, iy = col % ks, col // ks
        if same and col > (ks * ks) // 2:
            continue  # mirrored from a searched column below
        dx, dy = offs[ix][0], offs[iy * ks][1]
        ks_in_col = [ix + iy * ks + iz * ks * ks for iz in range(ks)]
        dzs = [offs[k][2] for k in ks_in_col]
        base = dst.keys + (dx * RADIX + dy) * RADIX
        for k, (rows_out, rows_in) in zip(ks_in_col, _search_column(src.keys, base, dzs, s)):
            if same and k == center:
                continue
            if rows_out.numel():
                found[k] = (rows_in, rows_out)
    if same:
        for k in list(found):
            if kvol - 1 - k not in found:
                rows_in, rows_out = found[k]
                found[kvol - 1 - k] = (rows_out, rows_in)
    # int32 rows halve the memory of maps that live through forward and backward (index ops accept int32).
    pairs = [(k, found[k][0].int(), found[k][1].int()) for k in sorted(found)]
    return KernelMap(pairs, center if same else None, n_in, n_out)
