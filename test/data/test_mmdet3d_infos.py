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


@pytest.mark.parametrize("layout", ["v11", "shipped"])
def test_a_sunrgbd_model_reads_scannet_on_the_shared_classes(tmp_path, layout):
    # A SUN RGB-D model pointed at a ScanNet folder: the ScanNet file is found, its table and chair keep the SUN
    # labels, its cabinet and shower curtain (no SUN class) are not read, and SUN's dresser and night stand are
    # named as classes this ground truth cannot judge.
    write_scannet(tmp_path, layout)
    ds = InfoScenes.for_evaluation(tmp_path, "sunrgbd_infos_val.pkl", "val", SUNRGBD_CLASSES)
    assert ds.info_path.name == "scannet_infos_val.pkl" and ds.dataset == "scannet"
    assert ds.unannotated == ("dresser", "night_stand")
    first, second = ds.load(0), ds.load(1)
    assert first.gt_labels.tolist() == [SUNRGBD_CLASSES.index("table")]
    np.testing.assert_allclose(first.gt_boxes, [[1.15, 2.20, 0.62, 0.54, 2.53, 1.21, 0.0]], rtol=1e-6)
    assert second.gt_labels.tolist() == [SUNRGBD_CLASSES.index("chair")]
    assert ds.scene_labels(0).tolist() == [SUNRGBD_CLASSES.index("table")]
    # Its own file wins when present, and then nothing is unannotated.
    write_sunrgbd(tmp_path, "v11")
    own = InfoScenes.for_evaluation(tmp_path, "sunrgbd_infos_val.pkl", "val", SUNRGBD_CLASSES)
    assert own.info_path.name == "sunrgbd_infos_val.pkl" and own.unannotated == ()


def test_evaluation_info_file_choice_and_its_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="mine_val.pkl .nor any scannet_infos_val.pkl.sunrgbd_infos_val.pkl"):
        InfoScenes.for_evaluation(tmp_path, "mine_val.pkl", "val", SUNRGBD_CLASSES)
    write_scannet(tmp_path, "v11")
    write_sunrgbd(tmp_path, "v11")
    with pytest.raises(ValueError, match="several info files"):
        InfoScenes.for_evaluation(tmp_path, "mine_val.pkl", "val", SUNRGBD_CLASSES)
    # Named explicitly (absolute or relative to the root), either is read.
    named = InfoScenes.for_evaluation(tmp_path, "mine_val.pkl", "val", SCANNET_CLASSES, "sunrgbd_infos_val.pkl")
    assert named.dataset == "sunrgbd" and "cabinet" in named.unannotated and "dresser" not in named.unannotated
    with pytest.raises(ValueError, match="annotates none of the model's classes"):
        InfoScenes.for_evaluation(tmp_path, "x.pkl", "val", ("door", "window"), tmp_path / "sunrgbd_infos_val.pkl")
    # Training keeps the strict rule: a configured class the file lacks is an error, not a silent gap.
    with pytest.raises(ValueError, match=r"\['dresser', 'night_stand'\]"):
        InfoScenes(DatasetConfig(str(tmp_path), "scannet_infos_val.pkl", SUNRGBD_CLASSES))
