"""Reading mmdet3d v1.1 info files (`{metainfo, data_list}`) and their point files, with clear errors."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sr3d_core.data.classes import check_class_names


@dataclass
class Sample:
    """One loaded sample, in the library's conventions.

    Attributes:
        points: (N, 6) float32 xyz + RGB in [0, 1], gravity-aligned z-up frame.
        gt_boxes: (K, 7) float32 (x, y, z, dx, dy, dz, yaw), gravity centre; yaw = 0 for ScanNet.
        gt_labels: (K,) int64 indices into the configured class names (ignored labels removed).
        sample_idx: Identifier from the info file.
    """

    points: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    sample_idx: Any


def load_infos(path: str | Path) -> dict[str, Any]:
    """Load and sanity-check an info file.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a v1.1 `{metainfo, data_list}` dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"info file not found: {path}")
    with open(path, "rb") as f:
        d = pickle.load(f)
    if not isinstance(d, dict) or "metainfo" not in d or "data_list" not in d:
        raise ValueError(f"{path} is not an mmdet3d v1.1 info file (expected keys metainfo, data_list); "
                         "convert old infos with mmdet3d's update_infos_to_v2.py")
    if "categories" not in d["metainfo"]:
        raise ValueError(f"{path}: metainfo has no 'categories'")
    return d


def read_points(data_root: str | Path, info: dict[str, Any], points_dir: str = "points",
                expected_feats: int = 6) -> np.ndarray:
    """Read a float32 `.bin` point file named by `info['lidar_points']`.

    Args:
        data_root: Root holding `points_dir`.
        info: One data_list entry.
        points_dir: Sub-folder of the point files (mmdet3d's `data_prefix['pts']`).
        expected_feats: Columns the loader needs.

    Raises:
        FileNotFoundError: If the .bin file is missing.
        ValueError: If num_pts_feats is not `expected_feats` or the file size does not fit it.
    """
    lp = info["lidar_points"]
    n_feats = int(lp["num_pts_feats"])
    if n_feats != expected_feats:
        raise ValueError(f"sample {info.get('sample_idx')}: lidar_points.num_pts_feats is {n_feats}, "
                         f"expected {expected_feats} (xyz + RGB)")
    path = Path(data_root) / points_dir / lp["lidar_path"]
    if not path.is_file():
        raise FileNotFoundError(f"point file not found: {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % n_feats:
        raise ValueError(f"{path}: {raw.size} floats is not a multiple of num_pts_feats={n_feats}")
    return raw.reshape(-1, n_feats)


def label_map(categories: dict[str, int], class_names: tuple[str, ...] | list[str], source: str) -> np.ndarray:
    """Lookup table file label -> configured label (-1 where the class is not configured)."""
    check_class_names(class_names, categories, source)
    n = max(categories.values()) + 1 if categories else 0
    lut = np.full(n, -1, np.int64)
    for i, name in enumerate(class_names):
        lut[categories[name]] = i
    return lut


def instances(info: dict[str, Any], box_dim: int, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GT boxes (K, box_dim) and remapped labels, with -1 / unconfigured labels dropped."""
    inst = info.get("instances", [])
    boxes = np.asarray([i["bbox_3d"] for i in inst], np.float32).reshape(-1, box_dim)
    raw = np.asarray([i["bbox_label_3d"] for i in inst], np.int64)
    labels = np.where((raw >= 0) & (raw < len(lut)), lut[np.clip(raw, 0, max(len(lut) - 1, 0))], -1) \
        if len(raw) else raw
    keep = labels >= 0
    return boxes[keep], labels[keep]
