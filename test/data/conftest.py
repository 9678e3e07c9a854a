"""Fixtures that write tiny data sets in exactly the format of mmdet3d's create_data.py (v1.1)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from data_test_helpers import cloud_with_boxes

from sr3d_core.data.classes import SCANNET_CLASSES, SUNRGBD_CLASSES


@pytest.fixture
def scannet_root(tmp_path: Path) -> Path:
    """Two ScanNet-format scans: raw frame + axis_align_matrix, RGB 0-255, 6-number boxes, a -1 label."""
    rng = np.random.default_rng(0)
    root = tmp_path / "scannet"
    (root / "points").mkdir(parents=True)
    data_list = []
    for i in range(2):
        boxes = np.array(
            [
                [1.0, 0.5, 0.45, 0.5, 0.5, 0.9, 0.0],
                [-1.5, -1.0, 0.4, 2.0, 0.9, 0.8, 0.0],
                [0.0, 2.0, 1.0, 0.8, 0.3, 2.0, 0.0],
            ]
        )
        aligned = cloud_with_boxes(rng, boxes)
        a = rng.uniform(-np.pi, np.pi)
        A = np.eye(4)
        A[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
        A[:3, 3] = [0.3, -0.2, 0.0]
        Ainv = np.linalg.inv(A)
        raw = aligned.copy()
        raw[:, :3] = aligned[:, :3] @ Ainv[:3, :3].T + Ainv[:3, 3]
        raw[:, 3:] = np.round(aligned[:, 3:] * 255)
        raw.astype(np.float32).tofile(root / "points" / f"scene{i:04d}_00.bin")
        labels = [2, 4, -1]  # chair, table, ignored
        data_list.append(
            {
                "sample_idx": f"scene{i:04d}_00",
                "lidar_points": {"num_pts_feats": 6, "lidar_path": f"scene{i:04d}_00.bin"},
                "pts_semantic_mask_path": f"scene{i:04d}_00.bin",
                "pts_instance_mask_path": f"scene{i:04d}_00.bin",
                "axis_align_matrix": A.tolist(),
                "instances": [{"bbox_3d": b[:6].tolist(), "bbox_label_3d": lab} for b, lab in zip(boxes, labels)],
            }
        )
    meta = {"categories": {n: k for k, n in enumerate(SCANNET_CLASSES)}, "dataset": "scannet", "info_version": "1.1"}
    with open(root / "scannet_infos_train.pkl", "wb") as f:
        pickle.dump({"metainfo": meta, "data_list": data_list}, f)
    return root


@pytest.fixture
def sunrgbd_root(tmp_path: Path) -> Path:
    """Two SUN RGB-D-format frames: depth frame, RGB in [0, 1], 7-number boxes with yaw."""
    rng = np.random.default_rng(1)
    root = tmp_path / "sunrgbd"
    (root / "points").mkdir(parents=True)
    data_list = []
    for i in range(2):
        boxes = np.array([[0.5, 2.0, -0.8, 0.6, 0.5, 0.9, 0.7], [-1.0, 3.0, -0.9, 2.1, 1.6, 0.6, -2.0]])
        pts = cloud_with_boxes(rng, boxes)
        pts.tofile(root / "points" / f"{i:06d}.bin")
        data_list.append(
            {
                "sample_idx": i,
                "lidar_points": {"num_pts_feats": 6, "lidar_path": f"{i:06d}.bin"},
                "images": {"CAM0": {"img_path": f"{i:06d}.jpg", "depth2img": np.eye(4).tolist()}},
                "instances": [{"bbox_3d": b.tolist(), "bbox_label_3d": lab} for b, lab in zip(boxes, [3, 0])],
            }
        )
    meta = {"categories": {n: k for k, n in enumerate(SUNRGBD_CLASSES)}, "dataset": "sunrgbd", "info_version": "1.1"}
    with open(root / "sunrgbd_infos_train.pkl", "wb") as f:
        pickle.dump({"metainfo": meta, "data_list": data_list}, f)
    return root
