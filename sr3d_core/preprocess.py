"""The one module that turns a point cloud into network input.

Training, evaluation and the ROS node all call `prepare_points` then `to_sparse_batch`, so what
the network sees at deployment is exactly what it saw in training. The `InputContract` holding
the settings is saved in every checkpoint and read back by the node.

Points are float32 `(N, 3 + C)` in a gravity-aligned z-up frame; columns 3:6, when present, are
RGB in [0, 1] (colours in 0-255 are rescaled here, by the one rule in `scale_colors`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # the sparse package loads a backend: imported when used
    from sr3d_core.sparse import SparseTensor


@dataclass(frozen=True)
class InputContract:
    """What the network expects as input; saved with each checkpoint.

    Attributes:
        voxel_size: Edge of a voxel in metres (TR3D: 0.01).
        use_color: Feed RGB as the 3 voxel features. When False, each voxel gets one constant
            1.0 feature so the network still has a non-empty input channel.
        point_range: Crop `(x_min, y_min, z_min, x_max, y_max, z_max)` in metres, or None.
        max_points: Cap on the number of input rows, or None for no cap. It is applied to the rows as
            given, before invalid points are dropped and before cropping (`cap_rows`), so a caller holding
            a raw sensor cloud can apply it before even decoding the other rows: a model trained on SUN
            RGB-D's 50k-point frames gains nothing from a camera's 300k.
        quantize_dtype: The arithmetic of ``floor(xyz / voxel_size)`` (`sr3d_core.sparse.voxelize.QUANTIZE_DTYPES`):
            ``"float64"`` for SR3D's own models; a model trained elsewhere takes its trainer's, so that a point near
            a voxel boundary lands in the voxel it landed in there (TR3D: ``"float32_reciprocal"``). Checkpoints
            written before the option existed read as ``"float64"``, which they used.
    """

    voxel_size: float
    use_color: bool
    point_range: tuple[float, float, float, float, float, float] | None = None
    max_points: int | None = None
    quantize_dtype: str = "float64"

    def __post_init__(self) -> None:
        from sr3d_core.sparse.voxelize import check_quantize_dtype  # late: the sparse package may load a backend

        check_quantize_dtype(self.quantize_dtype)
        if not 1e-3 <= self.voxel_size <= 1.0:
            raise ValueError(f"voxel_size must lie in [0.001, 1] m (a 1 mm to 1 m grid), got {self.voxel_size}")
        if self.point_range is not None:
            pr = tuple(float(v) for v in self.point_range)
            if len(pr) != 6 or any(pr[i] >= pr[i + 3] for i in range(3)):
                raise ValueError(
                    "point_range must be (x0, y0, z0, x1, y1, z1) with x0 < x1 etc., " f"got {self.point_range}"
                )
            object.__setattr__(self, "point_range", pr)
        if self.max_points is not None and self.max_points <= 0:
            raise ValueError(f"max_points must be positive or None, got {self.max_points}")

    @property
    def reach(self) -> float:
        """Largest |coordinate| in metres the sparse grid holds with room for the network's strides; points
        farther out are dropped by `prepare_points`."""
        from sr3d_core.sparse.coords import COORD_LIMIT

        return 0.5 * COORD_LIMIT * self.voxel_size

    @property
    def in_channels(self) -> int:
        """Number of voxel feature channels: 3 (RGB) or 1 (constant)."""
        return 3 if self.use_color else 1

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict for checkpoints and YAML."""
        d = asdict(self)
        d["point_range"] = list(self.point_range) if self.point_range is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputContract":
        """Inverse of `to_dict`; unknown keys are an error so a typo cannot pass silently."""
        unknown = set(d) - {"voxel_size", "use_color", "point_range", "max_points", "quantize_dtype"}
        if unknown:
            raise ValueError(f"unknown InputContract key(s): {sorted(unknown)}")
        pr = d.get("point_range")
        return cls(
            voxel_size=float(d["voxel_size"]),
            use_color=bool(d["use_color"]),
            point_range=tuple(pr) if pr is not None else None,
            max_points=int(d["max_points"]) if d.get("max_points") is not None else None,
            quantize_dtype=str(d.get("quantize_dtype", "float64")),
        )


def cap_rows(num_rows: int, contract: InputContract, rng: np.random.Generator | None = None) -> np.ndarray | None:
    """The rows of an input cloud that `contract.max_points` keeps, in their original order.

    This is the one definition of the cap: `prepare_points` applies it, and the ROS node applies it to
    a raw PointCloud2 before decoding it, which gives exactly the same points.

    Args:
        num_rows: Rows in the cloud (for an organized cloud, width x height, valid or not).
        contract: The input contract.
        rng: Generator for a random subset (training). When None the subset is evenly strided, so
            inference is deterministic and still covers the whole cloud (for an organized cloud it is
            a regular pixel decimation; clouds are often stored row by row, so first-N would crop).

    Returns:
        Sorted int64 row indices, or None when every row is kept.
    """
    cap = contract.max_points
    if cap is None or num_rows <= cap:
        return None
    if rng is None:
        return np.linspace(0, num_rows - 1, cap).astype(np.int64)
    return np.sort(rng.choice(num_rows, cap, replace=False))


# The colour fed to a colour model for a cloud that has none (a depth-only sensor, a lidar, a driver with colour
# off): mid-grey, the centre of the training colour range, so no colour direction is favoured.
NEUTRAL_COLOR = (0.5, 0.5, 0.5)


def with_neutral_color(points: np.ndarray) -> np.ndarray:
    """``points`` coloured ``NEUTRAL_COLOR``, the one place that colour is applied (the node's ``missing_color:
    neutral``, ``sr3d-evaluate --neutral-color``).

    Args:
        points: ``(N, 3)`` xyz, which gains three colour columns, or ``(N, 6 + C)``, whose colour columns 3:6 are
            overwritten in a copy.

    Returns:
        A new ``(N, 6)`` or ``(N, 6 + C)`` array of ``points``' dtype.

    Raises:
        ValueError: ``points`` has 4 or 5 columns (a partial colour).
    """
    if points.ndim != 2 or points.shape[1] in (4, 5) or points.shape[1] < 3:
        raise ValueError(f"points must be (N, 3) or (N, 6 + C), got shape {points.shape}")
    if points.shape[1] == 3:
        grey = np.broadcast_to(np.asarray(NEUTRAL_COLOR, points.dtype), (len(points), 3))
        return np.concatenate([points, grey], axis=1)
    out = points.copy()
    out[:, 3:6] = NEUTRAL_COLOR
    return out


@dataclass(frozen=True)
class PrepareStats:
    """What `prepare_points` removed from one cloud.

    Attributes:
        rows_in: rows given.
        capped: rows left out by the `max_points` cap.
        non_finite: points with a NaN or infinite coordinate or colour.
        out_of_range: points outside `point_range`, or farther from the origin than the sparse grid can hold
            (`InputContract.reach`).
        colors_rescaled: colours looked like 0-255 and were divided by 255.
    """

    rows_in: int
    capped: int
    non_finite: int
    out_of_range: int
    colors_rescaled: bool


def scale_colors(rgb: np.ndarray) -> bool:
    """Bring colours to [0, 1] in place: divided by 255 when any exceeds 1 (a 0-255 cloud), then clipped.

    This is the one rule for colours, used by `prepare_points` (the library, training, evaluation) and by the
    ROS node's cloud decoding. Returns whether the colours were rescaled.
    """
    # Column by column: numpy reduces and clips a strided (N, 3) view several times slower than three columns.
    columns = [rgb[:, j] for j in range(rgb.shape[1])] if rgb.ndim == 2 else [rgb]
    # NaN is skipped, as by nanmax (the plain max, ~5x faster, unless a column has one).
    peaks = [float(c.max()) for c in columns if c.size]
    peaks = [float(np.fmax.reduce(c)) if np.isnan(m) else m for c, m in zip(columns, peaks)]
    rescale = any(m > 1.0 for m in peaks)
    if rescale:
        rgb *= np.float32(1.0 / 255.0)
    for c in columns:
        np.clip(c, 0.0, 1.0, out=c)
    return rescale


def prepare_points(points: np.ndarray, contract: InputContract, rng: np.random.Generator | None = None) -> np.ndarray:
    """Validate, subsample, clean and crop one cloud (see `prepare_points_with_stats`)."""
    return prepare_points_with_stats(points, contract, rng)[0]


def prepare_points_with_stats(
    points: np.ndarray, contract: InputContract, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, PrepareStats]:
    """Validate, subsample, clean and crop one cloud, and count what was removed.

    Points with a NaN/inf value, outside `point_range`, or beyond the reach of the sparse grid are dropped
    (and counted): one stray point never costs the whole frame. Colours in 0-255 are scaled to [0, 1]
    (`scale_colors`).

    Args:
        points: `(N, 3 + C)` float array, xyz then (optionally) RGB in [0, 1] (0-255 is rescaled).
        contract: The input contract.
        rng: Generator for the random subsample to `max_points` (see `cap_rows`); None for the
            deterministic strided one.

    Returns:
        float32 `(M, 6)` (xyz + RGB) if `contract.use_color`, else `(M, 3)`, `M <= max_points`; and the counts.

    Raises:
        ValueError: If `points` has the wrong rank, too few columns or a non-float dtype.
    """
    if not isinstance(points, np.ndarray) or points.ndim != 2:
        raise ValueError(
            f"points must be a 2-D numpy array (N, 3 + C), got {type(points).__name__} "
            f"with shape {getattr(points, 'shape', None)}"
        )
    need = 6 if contract.use_color else 3
    if points.shape[1] < need:
        raise ValueError(
            f"points has {points.shape[1]} columns but the contract needs {need} " f"(use_color={contract.use_color})"
        )
    if not np.issubdtype(points.dtype, np.floating):
        raise ValueError(f"points must be a float array, got dtype {points.dtype}")
    rows = cap_rows(len(points), contract, rng)
    pts = points[:, :need] if rows is None else points[rows, :need]
    pts = np.array(pts, dtype=np.float32, copy=rows is None)  # never scale the caller's array in place
    n_capped = len(pts)
    # Row tests as one pass per column: numpy's all(axis=1) over a few columns is several times slower.
    finite = np.isfinite(pts[:, 0])
    for j in range(1, need):
        finite &= np.isfinite(pts[:, j])
    if not finite.all():
        pts = pts[finite]
    n_finite = len(pts)
    reach = np.float32(contract.reach)
    inside = np.ones(len(pts), dtype=bool)
    for j in range(3):
        inside &= np.abs(pts[:, j]) < reach
        if contract.point_range is not None:
            inside &= pts[:, j] >= np.float32(contract.point_range[j])
            inside &= pts[:, j] < np.float32(contract.point_range[j + 3])
    if not inside.all():
        pts = pts[inside]
    rescaled = scale_colors(pts[:, 3:6]) if contract.use_color else False
    stats = PrepareStats(len(points), len(points) - n_capped, n_capped - n_finite, n_finite - len(pts), rescaled)
    return np.ascontiguousarray(pts), stats


def to_sparse_batch(
    prepared: list[np.ndarray], contract: InputContract, *, reduce: str = "random", seed: int | None = None
) -> tuple[Any, torch.Tensor]:
    """Voxelize a list of prepared clouds into one batched sparse tensor.

    Args:
        prepared: Outputs of `prepare_points`, one per scene.
        contract: The input contract (voxel size, feature choice).
        reduce: How points sharing a voxel are merged: "random" (TR3D / MinkowskiEngine default)
            or "mean".
        seed: Seed for the "random" reduction; None for nondeterministic.

    Returns:
        `(SparseTensor, point2voxel)` as returned by `sr3d_core.sparse.voxelize`, the points quantized in the
        contract's ``quantize_dtype``.
    """
    from sr3d_core.sparse import voxelize  # imported late: the sparse package may load a backend

    items = []
    for i, p in enumerate(prepared):
        if p.ndim != 2 or p.shape[1] < 3:
            raise ValueError(f"prepared[{i}] must be (N, >=3), got shape {p.shape}")
        # Column views of the cloud, not copies: voxelization reads xyz in place and gathers one row per voxel.
        cloud = torch.from_numpy(np.ascontiguousarray(p, dtype=np.float32))
        xyz = cloud[:, :3]
        if contract.use_color:
            if p.shape[1] < 6:
                raise ValueError(f"prepared[{i}] has no colour columns but contract.use_color is True")
            feats = cloud[:, 3:6]
        else:
            feats = torch.ones((len(p), 1), dtype=torch.float32)
        items.append((xyz, feats))
    return voxelize(items, contract.voxel_size, reduce=reduce, seed=seed, quantize_dtype=contract.quantize_dtype)


def sparse_to(x: SparseTensor, device: torch.device | str) -> SparseTensor:
    """Move a stride-1 sparse batch to ``device`` (rebuilt there, since the coordinate maps live per device)."""
    if x.feats.device == torch.device(device):
        return x
    from sr3d_core.sparse import from_coords

    return from_coords(x.coords.to(device), x.feats.to(device), batch_size=x.batch_size, stride=x.stride)[0]
