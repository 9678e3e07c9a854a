"""Points -> voxels: floor(xyz / voxel_size), one feature row per occupied voxel.

How the quotient is computed decides which voxel a point on (or within a rounding error of) a voxel boundary lands
in, so it is a choice of the input contract (`QUANTIZE_DTYPES`): on points on a millimetre grid and 1 cm voxels,
float64 and float32 arithmetic put 4-5% of the coordinates (over 10% of the points) one voxel apart.
"""

from __future__ import annotations

import functools
import math

import torch

from . import native
from .coords import AXIS_BITS, COORD_LIMIT, check_coords, pack, unpack
from .tensor import SparseTensor

#: How ``floor(xyz / voxel_size)`` is computed, by name (the value is the compiled helper's mode number):
#:
#: - ``"float64"``: the float32 coordinates divided in float64 (SR3D's own models);
#: - ``"float32"``: coordinates rounded to float32, divided by the voxel size rounded to float32, in float32
#:   (MinkowskiEngine's ``sparse_quantize`` on a numpy array or a CPU tensor);
#: - ``"float32_reciprocal"``: coordinates rounded to float32, multiplied in float32 by the float32 reciprocal of the
#:   voxel size rounded to float32. PyTorch computes a CUDA tensor divided by a Python number this way, so this is
#:   what TR3D's ``points[:, :3] / voxel_size`` gives on the GPU it trained and was evaluated on, before
#:   MinkowskiEngine floors it.
QUANTIZE_DTYPES: dict[str, int] = {"float64": 0, "float32": 1, "float32_reciprocal": 2}


def check_quantize_dtype(quantize_dtype: str, where: str = "quantize_dtype") -> None:
    """Raise ``ValueError`` naming ``where`` and the choices unless ``quantize_dtype`` is one of `QUANTIZE_DTYPES`."""
    if quantize_dtype not in QUANTIZE_DTYPES:
        raise ValueError(
            f"{where} must be one of {', '.join(repr(k) for k in QUANTIZE_DTYPES)}, got " f"{quantize_dtype!r}"
        )


def quantize(xyz: torch.Tensor, voxel_size: float, quantize_dtype: str = "float64") -> torch.Tensor:
    """``floor(xyz / voxel_size)`` in the arithmetic ``quantize_dtype`` names (see `QUANTIZE_DTYPES`).

    Returns:
        The floored quotients, float64 or float32 (not yet checked for range).
    """
    check_quantize_dtype(quantize_dtype, "voxelize: quantize_dtype")
    if quantize_dtype == "float64":
        return torch.floor(xyz.double() / voxel_size)
    # A 0-dim tensor on the points' device, not a Python number: PyTorch turns a division of a CUDA tensor by a
    # Python number into a product with its reciprocal, so the float32 quotient would depend on the device.
    voxel32 = torch.tensor(voxel_size, dtype=torch.float32, device=xyz.device)
    if quantize_dtype == "float32":
        return torch.floor(xyz.float() / voxel32)
    return torch.floor(xyz.float() * (1.0 / voxel32))  # 1 / voxel32 is a float32 0-dim tensor


def voxelize_coords(
    points: list[tuple[torch.Tensor, torch.Tensor]],
    voxel_size: float,
    reduce: str = "random",
    seed: int | None = None,
    quantize_dtype: str = "float64",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backend-independent part of `voxelize`.

    Returns:
        coords (M, 4) int64 sorted by key, keys (M,), feats (M, C), point2voxel (sum Ni,) int64.
    """
    keys, feats, p2v = voxelize_keys(points, voxel_size, reduce, seed, quantize_dtype)
    return unpack(keys), keys, feats, p2v


def voxelize_keys(
    points: list[tuple[torch.Tensor, torch.Tensor]],
    voxel_size: float,
    reduce: str = "random",
    seed: int | None = None,
    quantize_dtype: str = "float64",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`voxelize_coords` without the coordinates (the keys hold them; unpacking is a third of the compiled path).

    Returns:
        keys (M,) ascending, feats (M, C), point2voxel (sum Ni,) int64.
    """
    check_quantize_dtype(quantize_dtype, "voxelize: quantize_dtype")
    if not isinstance(points, (list, tuple)) or len(points) == 0:
        raise ValueError("voxelize: points must be a non-empty list of (xyz, feats) pairs, one per scene")
    if reduce not in ("random", "mean"):
        raise ValueError(f"voxelize: reduce must be 'random' or 'mean', got {reduce!r}")
    if not (isinstance(voxel_size, (int, float)) and math.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"voxelize: voxel_size must be a positive finite number, got {voxel_size!r}")
    n_feat = None
    for b, pair in enumerate(points):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"voxelize: scene {b} must be an (xyz, feats) pair")
        xyz, feats = pair
        if xyz.dim() != 2 or xyz.shape[1] != 3 or not xyz.is_floating_point():
            raise ValueError(
                f"voxelize: scene {b} xyz must be a float (N, 3) tensor, got {xyz.dtype} " f"{tuple(xyz.shape)}"
            )
        if feats.dim() != 2 or feats.shape[0] != xyz.shape[0]:
            raise ValueError(
                f"voxelize: scene {b} feats must have shape ({xyz.shape[0]}, C), got "
                f"{tuple(feats.shape)} (mismatched lengths)"
            )
        if n_feat is None:
            n_feat = feats.shape[1]
        elif feats.shape[1] != n_feat:
            raise ValueError(f"voxelize: scene {b} has {feats.shape[1]} feature channels, scene 0 has {n_feat}")
    feats = points[0][1] if len(points) == 1 else torch.cat([f for _, f in points])
    # Read in place unless the columns are not adjacent (the compiled quantization reads x, y, z side by side).
    xyzs = [x if x.shape[0] == 0 or x.stride(1) == 1 else x.contiguous() for x, _ in points]
    if reduce == "random" and native.available(feats, *xyzs) and all(x.dtype == torch.float32 for x in xyzs):
        # Compiled: quantize + pack in one pass, then the sort-unique and the pick; the same voxels, rows and
        # winners as the PyTorch code below, which still runs (and names the problem) for a bad point.
        keys = native.voxel_keys(xyzs, voxel_size, AXIS_BITS, COORD_LIMIT, QUANTIZE_DTYPES[quantize_dtype])
        if keys is not None:
            prio = _priorities(keys.shape[0], seed, feats.device)
            keys, inverse, pick = native.unique_pick(keys, prio.contiguous(), AXIS_BITS)
            return keys, feats.index_select(0, pick), inverse  # 3x faster than feats[pick] on a view
    coords_all = []
    for b, (xyz, _) in enumerate(points):
        if xyz.numel() and not bool(torch.isfinite(xyz).all()):
            raise ValueError(f"voxelize: scene {b} xyz contains NaN or inf")
        q = quantize(xyz, voxel_size, quantize_dtype)
        c = torch.empty((xyz.shape[0], 4), dtype=torch.long, device=xyz.device)
        c[:, 0] = b
        if q.numel():
            lim = float(2**40)
            if bool((q.abs() > lim).any()):
                raise ValueError(f"voxelize: scene {b} coordinates are far out of range for voxel {voxel_size}")
        c[:, 1:] = q.long()
        coords_all.append(c)
    coords = torch.cat(coords_all)
    check_coords(coords, "voxelize: coordinates")
    keys, inverse = torch.unique(pack(coords), sorted=True, return_inverse=True)
    m, n = keys.shape[0], coords.shape[0]
    if reduce == "mean":
        count = torch.zeros(m, dtype=feats.dtype, device=feats.device).index_add_(
            0, inverse, torch.ones(n, dtype=feats.dtype, device=feats.device)
        )
        vfeats = (
            torch.zeros((m, feats.shape[1]), dtype=feats.dtype, device=feats.device).index_add_(0, inverse, feats)
            / count.clamp(min=1)[:, None]
        )
    else:
        prio = _priorities(n, seed, feats.device)
        best = torch.full((m,), -1, dtype=torch.long, device=feats.device).scatter_reduce(
            0, inverse, prio, "amax", include_self=True
        )
        winner = (prio == best[inverse]).nonzero().squeeze(1)
        pick = torch.empty(m, dtype=torch.long, device=feats.device)
        pick[inverse[winner]] = winner
        vfeats = feats[pick]
    return keys, vfeats, inverse


def _priorities(n: int, seed: int | None, device: torch.device) -> torch.Tensor:
    """Distinct random integer priorities: the highest one in each voxel wins (exactly one winner, no ties).

    Read only: a seeded draw may be a cached tensor shared with other calls.
    """
    if seed is None:
        return torch.randperm(n).to(device)
    return _seeded_permutation(n, int(seed)).to(device)


@functools.lru_cache(maxsize=4)
def _seeded_permutation(n: int, seed: int) -> torch.Tensor:
    # A deployed detector voxelizes every frame with the same seed and (capped) point count, so its draw repeats:
    # kept, it saves a 50,000-point randperm (~0.8 ms on one core) per frame.
    return torch.randperm(n, generator=torch.Generator(device="cpu").manual_seed(seed))


def voxelize(
    points: list[tuple[torch.Tensor, torch.Tensor]],
    voxel_size: float,
    reduce: str = "random",
    seed: int | None = None,
    backend: str | None = None,
    quantize_dtype: str = "float64",
) -> tuple[SparseTensor, torch.Tensor]:
    """Quantize one point cloud per scene into a batched sparse tensor at stride 1.

    Args:
        points: one (xyz (Ni, 3) metres, feats (Ni, C)) pair per scene; a scene may be empty.
        voxel_size: edge of the base voxel in metres; integer coordinate = floor(xyz / voxel_size).
        reduce: "random" keeps one random point's features per voxel (ME's default RANDOM_SUBSAMPLE);
            "mean" averages them.
        seed: seed of the random pick (None: torch's global generator).
        backend: backend name; None uses the current default (see `set_backend`).
        quantize_dtype: the arithmetic of ``xyz / voxel_size`` (`QUANTIZE_DTYPES`): ``"float64"`` (default), or
            TR3D's float32 (``"float32"``, ``"float32_reciprocal"``).

    Returns:
        The tensor and point2voxel (sum Ni,): the voxel row of every input point (scenes concatenated).

    Raises:
        ValueError: empty list, mismatched lengths, non-float xyz, NaN/inf, out-of-range coordinates, unknown
            ``quantize_dtype``.
    """
    from .backends import get_backend

    keys, feats, p2v = voxelize_keys(points, voxel_size, reduce, seed, quantize_dtype)
    x, row_of = get_backend(backend).from_sorted_unique(None, keys, feats, len(points), 1)
    return x, (p2v if row_of is None else row_of[p2v])
