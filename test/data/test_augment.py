"""Augmentations: points inside a box stay inside it; seeded runs repeat exactly."""

from __future__ import annotations

import numpy as np
import pytest
from data_test_helpers import cloud_with_boxes, points_in_box

from sr3d_core.data.augment import AUGMENTS, augment, flip, rot_scale_trans, sample_points

BOXES = np.array([[1.0, 0.5, 0.45, 0.5, 0.7, 0.9, 0.3], [-1.5, -1.0, 0.4, 2.0, 0.9, 0.8, -2.5]], np.float32)


def _inside_sets(points, boxes):
    return [points_in_box(points, b) for b in boxes]


@pytest.mark.parametrize("axis", [0, 1])
def test_flip_keeps_points_in_boxes(axis):
    p = cloud_with_boxes(np.random.default_rng(0), BOXES)
    before = _inside_sets(p, BOXES)
    q, b = flip(p, BOXES, axis)
    for m, box in zip(before, b):
        assert points_in_box(q, box)[m].all()
    expect = np.pi - BOXES[:, 6] if axis == 0 else -BOXES[:, 6]
    assert np.allclose(np.cos(b[:, 6]), np.cos(expect), atol=1e-6)
    assert np.allclose(np.sin(b[:, 6]), np.sin(expect), atol=1e-6)


@pytest.mark.parametrize("axis_aligned", [False, True])
def test_rot_scale_trans_keeps_points_in_boxes(axis_aligned):
    boxes = BOXES.copy()
    if axis_aligned:
        boxes[:, 6] = 0
    p = cloud_with_boxes(np.random.default_rng(1), boxes)
    before = _inside_sets(p, boxes)
    q, b = rot_scale_trans(p, boxes, 0.4, 1.1, np.array([0.1, -0.2, 0.05]), axis_aligned)
    if axis_aligned:
        assert (b[:, 6] == 0).all()
        assert (b[:, 3:5] > boxes[:, 3:5] * 1.1).all()  # re-boxed: the enclosing box grows
    for m, box in zip(before, b):
        assert points_in_box(q, box, eps=1e-4)[m].all()


@pytest.mark.parametrize("name", ["scannet", "sunrgbd"])
def test_full_augment_consistent_and_seeded(name):
    cfg = AUGMENTS[name]
    boxes = BOXES.copy()
    if cfg.axis_aligned:
        boxes[:, 6] = 0
    p = cloud_with_boxes(np.random.default_rng(2), boxes)
    # tag each point with its box membership in an extra column so it survives sampling
    tag = np.zeros(len(p), np.float32)
    for k, b in enumerate(boxes):
        tag[points_in_box(p, b)] = k + 1
    for seed in range(5):
        q, b = augment(np.c_[p, tag], boxes, cfg, np.random.default_rng(seed))
        q2, b2 = augment(np.c_[p, tag], boxes, cfg, np.random.default_rng(seed))
        assert np.array_equal(q, q2) and np.array_equal(b, b2)
        if cfg.axis_aligned:
            assert (b[:, 6] == 0).all()
        for k, box in enumerate(b):
            sel = q[:, -1] == k + 1
            assert sel.any() and points_in_box(q[sel], box, eps=1e-4).all()


def test_point_sampling_sizes():
    p = np.zeros((1000, 6), np.float32)
    rng = np.random.default_rng(0)
    n = [len(sample_points(p, AUGMENTS["scannet"], rng)) for _ in range(50)]
    assert 330 <= min(n) and max(n) <= 1000
    assert len(sample_points(p, AUGMENTS["sunrgbd"], rng)) == 100_000  # with replacement, as TR3D does
