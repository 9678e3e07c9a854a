"""Helpers shared by the data tests (plain module: test folders are not packages here)."""

from __future__ import annotations

import numpy as np


def points_in_box(points: np.ndarray, box: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Mask of points inside one (7,) box (local test helper, independent of the code under test)."""
    d = points[:, :3].astype(np.float64) - box[:3]
    c, s = np.cos(box[6]), np.sin(box[6])
    x = c * d[:, 0] + s * d[:, 1]
    y = -s * d[:, 0] + c * d[:, 1]
    return (np.abs(x) <= box[3] / 2 + eps) & (np.abs(y) <= box[4] / 2 + eps) & (np.abs(d[:, 2]) <= box[5] / 2 + eps)


def cloud_with_boxes(rng: np.random.Generator, boxes: np.ndarray, n_bg: int = 2000, n_in: int = 300) -> np.ndarray:
    """Background points plus `n_in` points strictly inside each box; xyz + RGB in [0, 1]."""
    parts = [np.c_[rng.uniform(-4, 4, (n_bg, 2)), rng.uniform(0, 2.5, n_bg)]]
    for b in boxes:
        loc = rng.uniform(-0.45, 0.45, (n_in, 3)) * b[3:6]
        c, s = np.cos(b[6]), np.sin(b[6])
        parts.append(np.c_[c * loc[:, 0] - s * loc[:, 1], s * loc[:, 0] + c * loc[:, 1], loc[:, 2]] + b[:3])
    xyz = np.concatenate(parts)
    return np.c_[xyz, rng.uniform(0, 1, (len(xyz), 3))].astype(np.float32)
