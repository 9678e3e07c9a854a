"""The info files mmdetection3d writes and ships are read (boxes, labels, points) or refused with the fix."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from data_test_helpers import points_in_box
from mmdet3d_layouts import SCANNET_SCANS, SUNRGBD_FRAMES, write_scannet, write_sunrgbd

from sr3d_core.data.classes import SCANNET_CLASSES, SUNRGBD_CLASSES
from sr3d_core.data.info_scenes import DatasetConfig, InfoScenes
from sr3d_core.data.infos import load_infos


@pytest.mark.parametrize("layout", ["v11", "shipped"])
def test_sunrgbd_infos_are_read(tmp_path, layout):
    info = write_sunrgbd(tmp_path, layout)
    ds = InfoScenes(DatasetConfig(str(tmp_path), info.name, SUNRGBD_CLASSES))
    assert len(ds) == len(SUNRGBD_FRAMES)
    for i, (idx, objects) in enumerate(SUNRGBD_FRAMES):
        s = ds.load(i)
        assert s.points.dtype == np.float32 and s.points.shape[1] == 6 and 0 <= s.points[:, 3:].min()
        np.testing.assert_allclose(s.gt_boxes, np.array([o[1] for o in objects], np.float32))
        assert [SUNRGBD_CLASSES[k] for k in s.gt_labels] == [o[0] for o in objects]
        assert all(points_in_box(s.points, b).sum() >= 300 for b in s.gt_boxes)
        assert s.sample_idx == f"{idx:06d}"  # no sample_idx in these files: the point file names the frame
    meta = load_infos(info)
    assert meta.dataset == "sunrgbd" and meta.standard_categories == (layout == "shipped")
    assert meta.class_names == SUNRGBD_CLASSES


def test_shipped_demo_info_with_a_class_subset(tmp_path):
    info = write_sunrgbd(tmp_path, "shipped", name="sunrgbd_000017_infos.pkl")
    s = InfoScenes(DatasetConfig(str(tmp_path), info.name, ("night_stand", "bed"))).load(1)
    assert s.gt_labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"\['door'\].*no metainfo.categories: the standard sunrgbd classes"):
        InfoScenes(DatasetConfig(str(tmp_path), info.name, ("bed", "door")))


@pytest.mark.parametrize("layout", ["v11", "shipped"])
def test_scannet_infos_are_read(tmp_path, layout):
    info = write_scannet(tmp_path, layout)
    ds = InfoScenes(DatasetConfig(str(tmp_path), info.name, SCANNET_CLASSES))
    for i, (scan, objects) in enumerate(SCANNET_SCANS):
        s = ds.load(i)
        assert s.sample_idx == scan and s.points.shape[1] == 6 and s.points[:, 3:].max() <= 1.0
        np.testing.assert_allclose(s.gt_boxes[:, :6], np.array([o[1] for o in objects], np.float32))
        assert (s.gt_boxes[:, 6] == 0).all()
        # mmdet3d's "showercurtrain" is our "showercurtain", label 13 in both lists.
        assert [SCANNET_CLASSES[k] for k in s.gt_labels] == [o[0].replace("curtrain", "curtain") for o in objects]
        for b in s.gt_boxes:  # axis_align_matrix applied: each object's points sit in its box again
            assert points_in_box(s.points, b).sum() >= 300


@pytest.mark.parametrize("dataset", ["sunrgbd", "scannet"])
def test_old_infos_are_refused_with_the_conversion_command(tmp_path, dataset):
    write = write_sunrgbd if dataset == "sunrgbd" else write_scannet
    info = write(tmp_path, "old", name="infos_train.pkl")  # a name that does not give the dataset away
    command = (
        f"python tools/dataset_converters/update_infos_to_v2.py --dataset {dataset} --pkl-path {info} " "--out-dir"
    )
    with pytest.raises(ValueError, match="before v1.1") as e:
        InfoScenes(DatasetConfig(str(tmp_path), info.name, SUNRGBD_CLASSES))
    assert command in str(e.value)


def test_no_categories_and_no_known_dataset_is_refused(tmp_path):
    info = write_sunrgbd(tmp_path, "shipped", name="rooms.pkl")
    d = load_infos(info)
    assert d.dataset == "sunrgbd"  # named by metainfo DATASET, not by the file name
    with open(info, "wb") as f:
        pickle.dump({"metainfo": {}, "data_list": d.data_list}, f)
    with pytest.raises(ValueError, match="no 'categories'.*None"):
        load_infos(info)
