"""The training data path: a scene source batched by StepDataset, through a 2-worker DataLoader."""

from __future__ import annotations

import numpy as np
import torch

from sr3d_core.config import load_config
from sr3d_core.data.augment import AUGMENTS, training_augment
from sr3d_core.data.classes import SCANNET_CLASSES, SUNRGBD_CLASSES
from sr3d_core.data.info_scenes import DatasetConfig, InfoScenes
from sr3d_core.data.loader import StepDataset, iters_per_epoch, step_loader
from sr3d_core.data.sources import build_source
from sr3d_core.data.toy import ToyScenes
from sr3d_core.preprocess import InputContract


def test_workers_give_the_batches_of_one_process(scannet_root):
    c = InputContract(0.05, True)
    source = InfoScenes(
        DatasetConfig(str(scannet_root), "scannet_infos_train.pkl", SCANNET_CLASSES), AUGMENTS["scannet"]
    )
    data = StepDataset(source, c, batch_size=2, seed=7, repeat=2)
    assert data.iters_per_epoch == 2
    batches = list(step_loader(data, 0, 4, num_workers=2))
    assert len(batches) == 4
    b = batches[0]
    assert b.x.feats.shape[1] == 3 and b.x.batch_size == 2
    assert [t.shape[1] for t in b.gt_boxes] == [7, 7] and all(t.dtype == torch.int64 for t in b.gt_labels)
    for step, got in enumerate(batches):  # a step's batch does not depend on the process that drew it
        ref = data[step]
        assert torch.equal(got.x.coords, ref.x.coords) and torch.equal(got.x.feats, ref.x.feats)
    # another epoch draws other augmentations
    assert not torch.equal(batches[0].x.feats, batches[2].x.feats) or not torch.equal(
        batches[0].x.coords, batches[2].x.coords
    )


def test_ranks_split_the_global_batch(scannet_root):
    source = InfoScenes(DatasetConfig(str(scannet_root), "scannet_infos_train.pkl", SCANNET_CLASSES))
    c = InputContract(0.05, True)
    whole = StepDataset(source, c, batch_size=2, seed=0)[0]
    halves = [StepDataset(source, c, batch_size=2, seed=0, rank=r, world=2)[0] for r in (0, 1)]
    assert [h.x.batch_size for h in halves] == [1, 1]
    assert [len(h.gt_boxes[0]) for h in halves] == [len(b) for b in whole.gt_boxes]


def test_evaluation_reads_scenes_unaugmented(sunrgbd_root):
    source = InfoScenes(
        DatasetConfig(str(sunrgbd_root), "sunrgbd_infos_train.pkl", SUNRGBD_CLASSES), AUGMENTS["sunrgbd"]
    )
    rng = np.random.default_rng(0)
    raw = source.load(0)
    plain = source.get(0, rng, train=False)
    assert np.array_equal(plain.points, raw.points) and np.array_equal(plain.gt_boxes, raw.gt_boxes)
    trained = source.get(0, rng, train=True)
    assert len(trained.points) == 100_000 and not np.array_equal(trained.gt_boxes, raw.gt_boxes)


def test_training_augment_follows_the_config():
    cfg = load_config("synth_scannet_small", ["data.rot_range=3.14"])
    aug = training_augment(cfg.data)
    assert aug.sample_fraction == (0.33, 1.0) and aug.sample_points is None and aug.rot_range == 3.14
    assert aug.flip_x_prob == AUGMENTS["scannet"].flip_x_prob
    off = training_augment(load_config("synth_scannet_small", ["data.augment=false"]).data)
    assert off.flip_x_prob == 0 and off.rot_range == 0 and off.sample_fraction == (0.33, 1.0)
    toy = training_augment(load_config("toy_tiny", ["data.augment=true", "data.train_points=100"]).data)
    assert toy.sample_points == 100 and toy.flip_x_prob == 0 and toy.scale_range == (1.0, 1.0)


def test_toy_scenes_sample_with_the_one_sampler():
    cfg = load_config("toy_tiny", ["data.train_point_fraction=0.5"])
    source = build_source(cfg, "train")
    assert isinstance(source, ToyScenes) and len(source) == 2
    full = source.get(0, np.random.default_rng(0), train=False).points
    part = source.get(0, np.random.default_rng(0), train=True).points
    assert len(full) // 2 <= len(part) <= len(full)
    assert iters_per_epoch(len(source), 1, cfg.train.batch_size) == 1
