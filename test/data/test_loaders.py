"""Real-data loaders on fixtures written in the exact mmdet3d v1.1 format."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from data_test_helpers import points_in_box

from sr3d_core.data.classes import SCANNET_CLASSES, SUNRGBD_CLASSES
from sr3d_core.data.info_scenes import DatasetConfig, InfoScenes


def test_class_lists_order():
    assert len(SCANNET_CLASSES) == 18 and SCANNET_CLASSES[:3] == ("cabinet", "bed", "chair")
    assert SCANNET_CLASSES[-1] == "garbagebin"
    assert len(SUNRGBD_CLASSES) == 10 and SUNRGBD_CLASSES[6:8] == ("dresser", "night_stand")


def test_scannet_alignment_colour_and_ignored_label(scannet_root):
    ds = InfoScenes(DatasetConfig(str(scannet_root), "scannet_infos_train.pkl", SCANNET_CLASSES))
    s = ds.load(0)
    assert s.points.dtype == np.float32 and s.points.shape[1] == 6
    assert s.points[:, 3:].max() <= 1.0 and s.points[:, 3:].max() > 0.5  # 0-255 became [0, 1]
    assert s.gt_boxes.shape == (2, 7) and (s.gt_boxes[:, 6] == 0).all()
    assert s.gt_labels.tolist() == [2, 4]  # the -1 instance is dropped
    for b in s.gt_boxes:  # the axis_align_matrix was applied: the object points sit in their boxes again
        assert points_in_box(s.points, b).sum() >= 300


def test_sunrgbd_boxes_with_yaw(sunrgbd_root):
    ds = InfoScenes(DatasetConfig(str(sunrgbd_root), "sunrgbd_infos_train.pkl", SUNRGBD_CLASSES))
    s = ds.load(1)
    assert s.gt_boxes.shape == (2, 7) and s.gt_labels.tolist() == [3, 0]
    for b in s.gt_boxes:
        assert points_in_box(s.points, b).sum() >= 300


def test_class_subset_remaps_labels(sunrgbd_root):
    ds = InfoScenes(DatasetConfig(str(sunrgbd_root), "sunrgbd_infos_train.pkl", ("chair",)))
    s = ds.load(0)
    assert s.gt_labels.tolist() == [0] and len(s.gt_boxes) == 1


def test_clear_errors(scannet_root, tmp_path):
    cfg = DatasetConfig(str(scannet_root), "scannet_infos_train.pkl", SCANNET_CLASSES)
    with pytest.raises(FileNotFoundError, match="info file"):
        InfoScenes(DatasetConfig(str(scannet_root), "nope.pkl", SCANNET_CLASSES))
    with pytest.raises(ValueError, match="sofa_bed"):
        InfoScenes(DatasetConfig(str(scannet_root), "scannet_infos_train.pkl", ("chair", "sofa_bed")))
    ds = InfoScenes(cfg)
    ds.data_list[0]["lidar_points"]["num_pts_feats"] = 4
    with pytest.raises(ValueError, match="num_pts_feats"):
        ds.load(0)
    (scannet_root / "points" / "scene0001_00.bin").unlink()
    with pytest.raises(FileNotFoundError, match="scene0001_00.bin"):
        ds.load(1)
    bad = tmp_path / "old.pkl"
    with open(bad, "wb") as f:
        pickle.dump([{"point_cloud": {}}], f)  # pre-v1.1 list layout
    with pytest.raises(ValueError, match="v1.1"):
        InfoScenes(DatasetConfig(str(tmp_path), "old.pkl", SCANNET_CLASSES))
