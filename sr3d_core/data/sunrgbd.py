"""SUN RGB-D as produced by mmdet3d's `create_data.py sunrgbd` (v1.1 infos + points/*.bin).

Points are in the upright depth frame (z up, origin at the camera) with RGB already in [0, 1]
(the TR3D config does no colour scaling). `bbox_3d` holds 7 numbers with yaw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sr3d_core.data.infos import Sample, instances, read_points, sample_id


def load_sunrgbd_sample(
    info: dict[str, Any], data_root: str | Path, lut: np.ndarray, points_dir: str = "points"
) -> Sample:
    """Load one SUN RGB-D sample (points as stored, boxes (K, 7), remapped labels)."""
    pts = read_points(data_root, info, points_dir).copy()
    boxes, labels = instances(info, 7, lut)
    return Sample(pts, boxes, labels, sample_id(info))
