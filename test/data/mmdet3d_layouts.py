"""Info files in the exact layouts mmdetection3d writes and ships, field for field (plain module for the data tests).

- ``v11``: what ``tools/create_data.py`` writes (the data converters, then ``update_infos_to_v2.py``): ``metainfo =
  {categories, dataset, info_version}``; ScanNet's categories spell ``showercurtrain``, as mmdet3d's class list does.
- ``shipped``: the v1.1 files in mmdet3d's repository (``demo/data/sunrgbd/sunrgbd_000017_infos.pkl``,
  ``tests/data/sunrgbd/sunrgbd_infos.pkl``, ``tests/data/scannet/scannet_infos.pkl``): ``metainfo = {'DATASET':
  'SUNRGBD'}`` (or ``'SCANNET'``), no categories; the data lists are as above.
- ``old``: the list of samples that mmdet3d before v1.1 wrote (``sunrgbd_data_utils.py``, ``scannet_data_utils.py``).

Neither converter writes ``sample_idx`` into v1.1 SUN RGB-D / ScanNet samples. Points are float32 ``.bin`` files of
6 columns: SUN RGB-D in the upright depth frame with RGB in [0, 1], ScanNet in the raw scan frame with RGB 0-255.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from data_test_helpers import cloud_with_boxes

from sr3d_core.data.classes import SUNRGBD_CLASSES

LAYOUTS = ("v11", "shipped", "old")

# mmdet3d's ScanNet class list (its METAINFO / ScanNetData.classes), spelling included.
MMDET3D_SCANNET_CLASSES = (
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "desk",
    "curtain",
    "refrigerator",
    "showercurtrain",
    "toilet",
    "sink",
    "bathtub",
    "garbagebin",
)

# Per SUN RGB-D frame: (index, [(class, box (x, y, z, dx, dy, dz, yaw), 2-D box (x1, y1, x2, y2))]).
SUNRGBD_FRAMES = (
    (
        1,
        [
            ("bed", (1.047, 4.169, -0.247, 2.302, 1.888, 1.970, -1.696), (328.0, 152.0, 674.0, 472.0)),
            ("night_stand", (2.583, 4.812, -0.787, 0.585, 0.883, 0.973, -1.650), (572.5, 275.6, 670.9, 328.8)),
            ("dresser", (-1.086, 1.905, -0.148, 0.713, 1.563, 2.105, -0.102), (1.0, 1.0, 222.0, 530.0)),
        ],
    ),
    (
        17,
        [
            ("night_stand", (-1.508, 3.3, -0.902, 0.350, 0.638, 0.703, -1.119), (54.9, 233.1, 187.0, 360.7)),
            ("bed", (-0.014, 2.994, -0.561, 2.293, 1.580, 1.277, -1.105), (176.4, 147.1, 637.0, 521.0)),
        ],
    ),
)

# Per ScanNet scan: (name, [(class, aligned box (x, y, z, dx, dy, dz))]); the classes include mmdet3d's spelling.
SCANNET_SCANS = (
    (
        "scene0000_00",
        [
            ("table", (1.15, 2.20, 0.62, 0.54, 2.53, 1.21)),
            ("showercurtrain", (2.79, 1.29, 0.91, 0.94, 1.23, 1.81)),
            ("cabinet", (-2.76, 2.41, 1.14, 1.48, 1.49, 2.34)),
        ],
    ),
    ("scene0001_01", [("chair", (0.5, -1.0, 0.45, 0.5, 0.5, 0.9))]),
)


def _rotation_z(a: float) -> np.ndarray:
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return m


def _dump(path: Path, obj: object) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


def write_sunrgbd(root: Path, layout: str, name: str = "sunrgbd_infos_val.pkl") -> Path:
    """Write the SUN RGB-D frames of :data:`SUNRGBD_FRAMES` (points/<idx:06d>.bin) and an info file in ``layout``.

    Returns:
        The info file's path.
    """
    rng = np.random.default_rng(0)
    (root / "points").mkdir(parents=True, exist_ok=True)
    data_list, old = [], []
    for idx, objects in SUNRGBD_FRAMES:
        boxes = np.array([o[1] for o in objects], np.float64)
        cloud_with_boxes(rng, boxes).tofile(root / "points" / f"{idx:06d}.bin")  # float32, 6 columns
        labels = [SUNRGBD_CLASSES.index(o[0]) for o in objects]
        K = np.array([[529.5, 0.0, 0.0], [0.0, 529.5, 0.0], [365.0, 265.0, 1.0]])
        Rt = _rotation_z(0.1)[:3, :3]
        depth2img = K @ (np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]) @ Rt.T)
        data_list.append(
            {
                "lidar_points": {"num_pts_feats": 6, "lidar_path": f"{idx:06d}.bin"},
                "images": {
                    "CAM0": {
                        "img_path": f"{idx:06d}.jpg",
                        "height": np.int32(530),
                        "width": np.int32(730),
                        "depth2img": depth2img.tolist(),
                    }
                },
                "instances": [
                    {"bbox": list(o[2]), "bbox_label": k, "bbox_3d": list(o[1]), "bbox_label_3d": k}
                    for o, k in zip(objects, labels)
                ],
            }
        )
        old.append(
            {
                "point_cloud": {"num_features": 6, "lidar_idx": idx},
                "pts_path": f"points/{idx:06d}.bin",
                "image": {
                    "image_idx": idx,
                    "image_shape": np.array([530, 730], np.int32),
                    "image_path": f"image/{idx:06d}.jpg",
                },
                "calib": {"K": K, "Rt": Rt},
                "annos": {
                    "gt_num": len(objects),
                    "name": np.array([o[0] for o in objects]),
                    "bbox": np.array([o[2] for o in objects], np.float64),
                    "location": boxes[:, :3],
                    "dimensions": boxes[:, [3, 5, 4]],  # (dx, dz, dy): the label files' order, not the box columns
                    "rotation_y": boxes[:, 6],
                    "index": np.arange(len(objects), dtype=np.int32),
                    "class": np.array(labels, np.int64),
                    "gt_boxes_upright_depth": boxes,
                },
            }
        )
    if layout == "old":
        return _dump(root / name, old)
    meta = (
        {"categories": {n: k for k, n in enumerate(SUNRGBD_CLASSES)}, "dataset": "sunrgbd", "info_version": "1.1"}
        if layout == "v11"
        else {"DATASET": "SUNRGBD"}
    )
    return _dump(root / name, {"metainfo": meta, "data_list": data_list})


def write_scannet(root: Path, layout: str, name: str = "scannet_infos_val.pkl") -> Path:
    """Write the ScanNet scans of :data:`SCANNET_SCANS` (raw frame, RGB 0-255) and an info file in ``layout``.

    Returns:
        The info file's path.
    """
    rng = np.random.default_rng(1)
    (root / "points").mkdir(parents=True, exist_ok=True)
    data_list, old = [], []
    for k, (scan, objects) in enumerate(SCANNET_SCANS):
        aligned = np.array([o[1] for o in objects], np.float64)
        A = _rotation_z(0.7 + k)
        A[:3, 3] = [-5.38, -2.87, -0.06]
        cloud = cloud_with_boxes(rng, np.c_[aligned, np.zeros(len(aligned))])
        raw = cloud.astype(np.float64)
        Ainv = np.linalg.inv(A)
        raw[:, :3] = raw[:, :3] @ Ainv[:3, :3].T + Ainv[:3, 3]
        raw[:, 3:] = np.round(raw[:, 3:] * 255)
        raw.astype(np.float32).tofile(root / "points" / f"{scan}.bin")
        labels = [MMDET3D_SCANNET_CLASSES.index(o[0]) for o in objects]
        data_list.append(
            {
                "lidar_points": {"num_pts_feats": 6, "lidar_path": f"{scan}.bin"},
                "pts_semantic_mask_path": f"{scan}.bin",
                "pts_instance_mask_path": f"{scan}.bin",
                "axis_align_matrix": A.tolist(),
                "instances": [{"bbox_3d": list(o[1]), "bbox_label_3d": lab} for o, lab in zip(objects, labels)],
            }
        )
        unaligned = aligned.copy()
        unaligned[:, :3] = aligned[:, :3] @ Ainv[:3, :3].T + Ainv[:3, 3]
        old.append(
            {
                "point_cloud": {"num_features": 6, "lidar_idx": scan},
                "pts_path": f"points/{scan}.bin",
                "pts_instance_mask_path": f"instance_mask/{scan}.bin",
                "pts_semantic_mask_path": f"semantic_mask/{scan}.bin",
                "annos": {
                    "gt_num": len(objects),
                    "name": np.array([o[0] for o in objects]),
                    "location": aligned[:, :3],
                    "dimensions": aligned[:, 3:6],
                    "gt_boxes_upright_depth": aligned,
                    "unaligned_location": unaligned[:, :3],
                    "unaligned_dimensions": unaligned[:, 3:6],
                    "unaligned_gt_boxes_upright_depth": unaligned,
                    "index": np.arange(len(objects), dtype=np.int32),
                    "class": np.array(labels, np.int64),
                    "axis_align_matrix": A,
                },
            }
        )
    if layout == "old":
        return _dump(root / name, old)
    meta = (
        {
            "categories": {n: k for k, n in enumerate(MMDET3D_SCANNET_CLASSES)},
            "dataset": "scannet",
            "info_version": "1.1",
        }
        if layout == "v11"
        else {"DATASET": "SCANNET"}
    )
    return _dump(root / name, {"metainfo": meta, "data_list": data_list})
