"""Dense references for the sparse ops: scatter to a grid, run torch.nn.functional, gather the output sites."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_coords(
    n: int, extent: int, batch_size: int = 1, stride: int = 1, seed: int = 0, lo: int = -7
) -> torch.Tensor:
    """Unique random (batch, x, y, z) coordinates, multiples of stride, in [lo, lo + extent) * stride."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(0, extent, (n, 4), generator=g)
    c[:, 0] = torch.randint(0, batch_size, (n,), generator=g)
    c[:, 1:] = (c[:, 1:] + lo) * stride
    return torch.unique(c, dim=0)


class Grid:
    """Dense grid of one tensor stride covering some coordinates, origin a multiple of ``align``."""

    def __init__(self, coords: torch.Tensor, stride: int, batch_size: int, align: int, pad: int = 2) -> None:
        lo = coords[:, 1:].min(0).values - pad * align
        hi = coords[:, 1:].max(0).values + pad * align
        self.origin = torch.div(lo, align, rounding_mode="floor") * align
        self.stride = stride
        self.shape = tuple(((hi - self.origin) // stride + 1).tolist())
        self.batch_size = batch_size

    def index(self, coords: torch.Tensor) -> tuple[torch.Tensor, ...]:
        g = (coords[:, 1:] - self.origin) // self.stride
        return coords[:, 0], g[:, 0], g[:, 1], g[:, 2]

    def scatter(self, coords: torch.Tensor, feats: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """(B, C, X, Y, Z) grid; differentiable w.r.t. feats."""
        grid = feats.new_full((self.batch_size, *self.shape, feats.shape[1]), fill)
        grid = grid.index_put(self.index(coords), feats)
        return grid.permute(0, 4, 1, 2, 3)

    def gather(self, dense: torch.Tensor, coords: torch.Tensor, origin_shift: int = 0) -> torch.Tensor:
        """Rows of a (B, C, X', Y', Z') output grid at coords; grid index (c - origin)/stride + shift."""
        b, x, y, z = self.index(coords)
        return dense.permute(0, 2, 3, 4, 1)[b, x + origin_shift, y + origin_shift, z + origin_shift]


def dense_weight(w: torch.Tensor, ks: int, transposed: bool = False) -> torch.Tensor:
    """(K, Cin, Cout) in ME order (x fastest) -> conv3d (Cout, Cin, kx, ky, kz) or conv_transpose3d layout."""
    w5 = w.reshape(ks, ks, ks, w.shape[1], w.shape[2])  # (kz, ky, kx, Cin, Cout)
    return w5.permute(3, 4, 2, 1, 0) if transposed else w5.permute(4, 3, 2, 1, 0)


def expected_down(coords: torch.Tensor, out_stride: int) -> set[tuple[int, ...]]:
    """ME stride rule, brute force."""
    return {
        (b, (x // out_stride) * out_stride, (y // out_stride) * out_stride, (z // out_stride) * out_stride)
        for b, x, y, z in coords.tolist()
    }


def ref_conv(coords, feats, w, ks, stride, in_stride, out_coords, batch_size):
    """Dense reference of SparseConv3d at the given output coordinates."""
    grid = Grid(torch.cat([coords, out_coords]), in_stride, batch_size, align=2 * in_stride)
    dense = grid.scatter(coords, feats)
    pad = ks // 2 if ks % 2 == 1 else 0
    out = F.conv3d(dense, dense_weight(w, ks), stride=stride, padding=pad)
    if stride == 1:
        return grid.gather(out, out_coords)
    og = Grid.__new__(Grid)
    og.origin, og.stride, og.batch_size = grid.origin, in_stride * stride, batch_size
    return og.gather(out, out_coords)


def ref_conv_transpose(coords, feats, w, ks, in_stride, out_coords, batch_size):
    """Dense reference of the generative transposed conv (k odd, stride 2) at the given output coordinates."""
    s = in_stride // 2
    grid = Grid(torch.cat([coords, out_coords]), in_stride, batch_size, align=in_stride)
    dense = grid.scatter(coords, feats)
    out = F.conv_transpose3d(dense, dense_weight(w, ks, transposed=True), stride=2)
    fine = Grid.__new__(Grid)
    fine.origin, fine.stride, fine.batch_size = grid.origin, s, batch_size
    return fine.gather(out, out_coords, origin_shift=ks // 2)


def ref_max_pool(coords, feats, in_stride, out_coords, batch_size):
    """Dense reference of the k2 s2 max pool (missing sites are -inf, so only existing children count)."""
    grid = Grid(torch.cat([coords, out_coords]), in_stride, batch_size, align=2 * in_stride)
    dense = grid.scatter(coords, feats, fill=float("-inf"))
    out = F.max_pool3d(dense, 2, 2)
    og = Grid.__new__(Grid)
    og.origin, og.stride, og.batch_size = grid.origin, 2 * in_stride, batch_size
    return og.gather(out, out_coords)
