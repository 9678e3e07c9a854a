"""InfoDataset + SparseCollate through a 2-worker DataLoader."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from sr3d_core.data.classes import SCANNET_CLASSES, SUNRGBD_CLASSES
from sr3d_core.data.dataset import DatasetConfig, InfoDataset, SparseCollate
from sr3d_core.preprocess import InputContract


def test_dataloader_two_workers(scannet_root):
    c = InputContract(0.05, True)
    ds = InfoDataset(DatasetConfig(str(scannet_root), "scannet_infos_train.pkl", SCANNET_CLASSES,
                                   augment="scannet", repeat=2), c, seed=7)
    assert len(ds) == 4
    dl = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=SparseCollate(c, seed=0))
    batches = list(dl)
    assert len(batches) == 2
    b = batches[0]
    assert b["sparse"].feats.shape[1] == 3
    assert b["point2voxel"].shape[0] == sum(len(p) for p in b["points"])
    assert [t.shape[1] for t in b["gt_boxes"]] == [7, 7] and all(t.dtype == torch.int64 for t in b["gt_labels"])
    # same seed and epoch -> the same augmented item; another epoch -> a different one
    a0 = ds[0]["points"]
    assert np.array_equal(a0, ds[0]["points"])
    ds.set_epoch(1)
    assert not np.array_equal(a0, ds[0]["points"])


def test_test_mode_has_no_augmentation(sunrgbd_root):
    c = InputContract(0.02, False, max_points=500)
    ds = InfoDataset(DatasetConfig(str(sunrgbd_root), "sunrgbd_infos_train.pkl", SUNRGBD_CLASSES), c)
    item = ds[0]
    raw = ds.load(0)
    assert item["points"].shape == (500, 3)
    assert np.array_equal(item["gt_boxes"], raw.gt_boxes)
    batch = SparseCollate(c)([item, ds[1]])
    assert batch["sparse"].feats.shape[1] == 1
