"""ScanNet v2 as produced by mmdet3d's `create_data.py scannet` (v1.1 infos + points/*.bin).

Stored points are in the raw scan frame with RGB in 0-255; this loader applies the scene's
`axis_align_matrix` (mmdet3d `GlobalAlignment`) and divides colours by 255 (`NormalizePointsColor`),
so points come out aligned with RGB in [0, 1]. `bbox_3d` holds 6 numbers (axis-aligned, gravity
centre, already in the aligned frame); yaw 0 is appended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sr3d_core.data.infos import Sample, instances, read_points, sample_id


def load_scannet_sample(
    info: dict[str, Any], data_root: str | Path, lut: np.ndarray, points_dir: str = "points"
) -> Sample:
    """Load one ScanNet sample.

    Args:
        info: One data_list entry.
        data_root: Folder holding `points_dir`.
        lut: File label -> configured label table (`infos.label_map`).
        points_dir: Sub-folder with the .bin files.

    Returns:
        The sample: aligned points, RGB /255, boxes (K, 7) with yaw 0.
    """
    pts = read_points(data_root, info, points_dir).copy()
    A = np.asarray(info.get("axis_align_matrix", np.eye(4)), np.float64)
    if A.shape != (4, 4):
        raise ValueError(f"sample {sample_id(info)}: axis_align_matrix must be 4x4, got {A.shape}")
    pts[:, :3] = (pts[:, :3].astype(np.float64) @ A[:3, :3].T + A[:3, 3]).astype(np.float32)
    pts[:, 3:6] /= 255.0
    boxes6, labels = instances(info, 6, lut)
    boxes = np.concatenate([boxes6, np.zeros((len(boxes6), 1), np.float32)], 1)
    return Sample(pts, boxes, labels, sample_id(info))
