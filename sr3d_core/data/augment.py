"""TR3D's training augmentations, keeping GT boxes consistent with the points.

Everything is a pure function of (points, boxes, rng), so a seeded generator reproduces a batch.
Order follows the TR3D configs: point sampling, flips, then rotate -> scale -> translate. `sample_points` is the
one training point sampler, for every data format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sr3d_core.boxes import enclosing_axis_aligned, wrap_angle
from sr3d_core.config import DataConfig


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation parameters (defaults: none; see AUGMENTS for the dataset settings).

    Attributes:
        sample_fraction: (lo, hi) -> keep floor(f * N) points, f ~ U(lo, hi), no replacement.
        sample_points: Fixed number of points (drawn with replacement when the cloud is smaller).
        flip_x_prob: Probability of x -> -x (yaw -> pi - yaw).
        flip_y_prob: Probability of y -> -y (yaw -> -yaw).
        rot_range: Rotation about z, U(-r, r) radians.
        scale_range: Isotropic scale, U(lo, hi).
        trans_std: Std of a Gaussian translation per axis (m).
        axis_aligned: Boxes are axis-aligned: after rotation they are replaced by the enclosing
            axis-aligned box (yaw stays 0).
    """

    sample_fraction: tuple[float, float] | None = None
    sample_points: int | None = None
    flip_x_prob: float = 0.0
    flip_y_prob: float = 0.0
    rot_range: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    trans_std: float = 0.0
    axis_aligned: bool = False


AUGMENTS: dict[str, AugmentConfig] = {
    "scannet": AugmentConfig(
        sample_fraction=(0.33, 1.0),
        flip_x_prob=0.5,
        flip_y_prob=0.5,
        rot_range=0.02,
        scale_range=(0.9, 1.1),
        trans_std=0.1,
        axis_aligned=True,
    ),
    "sunrgbd": AugmentConfig(
        sample_points=100_000,
        flip_x_prob=0.5,
        rot_range=0.523599,
        scale_range=(0.85, 1.15),
        trans_std=0.1,
        axis_aligned=False,
    ),
    "none": AugmentConfig(),
}


def training_augment(data: DataConfig) -> AugmentConfig:
    """The training augmentation a data config asks for.

    The geometric part is the format's entry of `AUGMENTS` (none when ``data.augment`` is off or the format has
    no entry, as the toy scenes), with ``data.rot_range`` overriding its rotation; the point sampling always comes
    from ``data.train_points`` / ``data.train_point_fraction``.
    """
    geometric = data.augment and data.format in AUGMENTS
    aug = AUGMENTS[data.format] if geometric else AugmentConfig()
    frac = data.train_point_fraction
    aug = dataclasses.replace(
        aug, sample_points=data.train_points, sample_fraction=None if frac is None else (frac, 1.0)
    )
    if geometric and data.rot_range is not None:
        aug = dataclasses.replace(aug, rot_range=data.rot_range)
    return aug


def sample_points(points: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random point subset per `sample_fraction` or `sample_points` (indices sorted, order kept)."""
    n = len(points)
    if cfg.sample_fraction is not None and n > 0:
        k = max(1, int(np.floor(rng.uniform(*cfg.sample_fraction) * n)))
        return points[np.sort(rng.choice(n, k, replace=False))]
    if cfg.sample_points is not None and n > 0:
        return points[rng.choice(n, cfg.sample_points, replace=n < cfg.sample_points)]
    return points


def flip(points: np.ndarray, boxes: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mirror across the plane axis=0 (axis 0: x -> -x, yaw -> pi - yaw; axis 1: y -> -y, yaw -> -yaw)."""
    points = points.copy()
    boxes = boxes.copy()
    points[:, axis] *= -1
    boxes[:, axis] *= -1
    boxes[:, 6] = wrap_angle(np.pi - boxes[:, 6]) if axis == 0 else wrap_angle(-boxes[:, 6])
    return points, boxes


def rot_scale_trans(
    points: np.ndarray, boxes: np.ndarray, angle: float, scale: float, trans: np.ndarray, axis_aligned: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about z by `angle`, scale, translate; axis-aligned boxes are re-boxed after rotating."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)
    points = points.copy()
    points[:, :3] = ((points[:, :3].astype(np.float64) @ R.T) * scale + trans).astype(np.float32)
    b = boxes.astype(np.float64)
    b[:, :3] = b[:, :3] @ R.T
    b[:, 6] = wrap_angle(b[:, 6] + angle)
    if axis_aligned and len(b):
        b = np.asarray(enclosing_axis_aligned(b), np.float64)
    b[:, :6] *= scale
    b[:, :3] += trans
    return points, b.astype(np.float32)


def augment(
    points: np.ndarray, boxes: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the whole training augmentation.

    Args:
        points: (N, 3 + C) float32.
        boxes: (K, 7) float32 GT boxes (labels are unchanged by every step).
        cfg: Parameters.
        rng: Generator; the same state gives the same result.

    Returns:
        Augmented (points, boxes).
    """
    points = sample_points(points, cfg, rng)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 7)
    if rng.random() < cfg.flip_x_prob:
        points, boxes = flip(points, boxes, 0)
    if rng.random() < cfg.flip_y_prob:
        points, boxes = flip(points, boxes, 1)
    if cfg.axis_aligned:
        boxes[:, 6] = 0.0  # a flipped axis-aligned box is still axis-aligned; keep the yaw-free convention
    angle = rng.uniform(-cfg.rot_range, cfg.rot_range) if cfg.rot_range > 0 else 0.0
    scale = rng.uniform(*cfg.scale_range)
    trans = rng.normal(0.0, cfg.trans_std, 3) if cfg.trans_std > 0 else np.zeros(3)
    return rot_scale_trans(points, boxes, angle, scale, trans, cfg.axis_aligned)
