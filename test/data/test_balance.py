"""Class-balanced scene sampling (repeat factors) against hand-worked numbers, and its use by StepDataset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sr3d_core.data.balance import epoch_indices, repeat_factors
from sr3d_core.data.classes import SCANNET_CLASSES
from sr3d_core.data.info_scenes import DatasetConfig, InfoScenes
from sr3d_core.data.loader import StepDataset
from sr3d_core.preprocess import InputContract


def test_repeat_factors_by_hand():
    # Four scenes, three classes: class 0 in all four (share 1), class 1 in one (0.25), class 2 in two (0.5).
    labels = [np.array([0, 0, 1]), np.array([0]), np.array([0, 2]), np.array([2, 0, 2])]
    # t = 0.5: class 1 counts sqrt(0.5 / 0.25) = sqrt(2); class 2 sqrt(0.5 / 0.5) = 1; class 0 max(1, sqrt(0.5)) = 1.
    np.testing.assert_allclose(repeat_factors(labels, 3, 0.5), [math.sqrt(2), 1, 1, 1])
    # t = 1: class 1 counts 2, class 2 sqrt(2); a scene takes its rarest class's factor.
    np.testing.assert_allclose(repeat_factors(labels, 3, 1.0), [2, 1, math.sqrt(2), math.sqrt(2)])
    # A scene without objects keeps 1 (class 1, in half of the scenes, counts sqrt(2)).
    np.testing.assert_allclose(repeat_factors([np.array([], np.int64), np.array([1])], 2, 1.0), [1, math.sqrt(2)])


def test_repeat_factors_refuse_bad_input():
    with pytest.raises(ValueError, match="threshold"):
        repeat_factors([np.array([0])], 1, 0.0)
    with pytest.raises(ValueError, match="outside"):
        repeat_factors([np.array([0, 3])], 3, 0.5)


def test_epoch_indices_repeat_in_proportion():
    factors = np.array([1.0, 2.0, 1.5])
    rng = np.random.default_rng(0)
    counts = np.zeros(3)
    for _ in range(2000):
        order = epoch_indices(factors, 4, rng)  # the expanded list holds 4 or 5 entries, cut to 4
        assert len(order) == 4 and set(order.tolist()) <= {0, 1, 2}
        counts += np.bincount(order, minlength=3)
    share = counts / counts.sum()
    np.testing.assert_allclose(share, factors / factors.sum(), atol=0.02)


def _source(root):
    return InfoScenes(DatasetConfig(str(root), "scannet_infos_train.pkl", SCANNET_CLASSES))


def test_scene_labels_are_the_loaded_labels(scannet_root):
    source = _source(scannet_root)
    for i in range(len(source)):
        np.testing.assert_array_equal(source.scene_labels(i), source.load(i).gt_labels)


def test_step_dataset_draws_balanced_epochs(scannet_root):
    source = _source(scannet_root)
    c = InputContract(0.05, True)
    plain = StepDataset(source, c, batch_size=2, seed=3)
    off = StepDataset(source, c, batch_size=2, seed=3, class_balance=0.0, num_classes=len(SCANNET_CLASSES))
    np.testing.assert_array_equal(plain._perm(0), off._perm(0))  # off: the order of before
    on = [StepDataset(source, c, batch_size=2, seed=3, class_balance=1.0, num_classes=len(SCANNET_CLASSES))] * 2
    assert on[0].iters_per_epoch == plain.iters_per_epoch  # the schedule keeps its length
    np.testing.assert_array_equal(on[0]._perm(1), on[1]._perm(1))  # deterministic per (seed, epoch)
    expected = repeat_factors([source.scene_labels(i) for i in range(len(source))], len(SCANNET_CLASSES), 1.0)
    np.testing.assert_allclose(on[0]._factors, expected)
