"""Post-processing: pre-filter, per-class threshold, BEV NMS, cap."""

import numpy as np
import torch

from sr3d_core.config import PostprocessConfig
from sr3d_core.postprocess import PostprocessCounts, postprocess_scene, prefilter

NAMES = ("a", "b")


def logit(p):
    return torch.log(torch.as_tensor(p) / (1 - torch.as_tensor(p)))


def run(scores, boxes, rotated=False, **kw):
    cfg = PostprocessConfig(**kw)
    boxes = torch.as_tensor(boxes, dtype=torch.float32)
    return postprocess_scene(logit(torch.tensor(scores)), lambda k: boxes[k], cfg, rotated, NAMES)


def test_prefilter_keeps_top_by_max_class_score():
    s = torch.tensor([[0.1, 0.9], [0.5, 0.2], [0.3, 0.3], [0.95, 0.0]])
    assert sorted(prefilter(s, 2).tolist()) == [0, 3]
    assert prefilter(s, 10).tolist() == [0, 1, 2, 3]


def test_threshold_nms_and_multiclass():
    boxes = [[0, 0, 0, 1, 1, 1, 0], [0.1, 0, 5, 1, 1, 1, 0], [3, 3, 0, 1, 1, 1, 0]]
    scores = [[0.9, 0.6], [0.8, 0.005], [0.7, 0.02]]
    d = run(scores, boxes)
    # Class a: box 1 overlaps box 0 in BEV (z ignored) → suppressed; box 2 kept.
    # Class b: box 1 below the threshold; boxes 0 and 2 kept. A box may appear under both classes.
    got = sorted(zip(d.labels.tolist(), d.scores.tolist()))
    assert [g[0] for g in got] == [0, 0, 1, 1]
    assert np.allclose([g[1] for g in got], [0.7, 0.9, 0.02, 0.6], atol=1e-5)
    assert (np.diff(d.scores) <= 0).all()
    assert len(run(scores, boxes, max_detections=2)) == 2
    assert len(run(scores, boxes, score_threshold=0.95)) == 0
    # A higher NMS threshold keeps the overlapping box (IoU 0.9/1.1 ≈ 0.82).
    assert len(run(scores, boxes, nms_iou=0.9)) == 5


def test_aligned_output_has_zero_yaw_and_rotated_keeps_it():
    boxes = [[0, 0, 0, 1, 2, 1, 0.4]]
    assert run([[0.9, 0.0]], boxes).boxes[0, 6] == 0.0
    assert abs(run([[0.9, 0.0]], boxes, rotated=True).boxes[0, 6] - 0.4) < 1e-6


def test_non_finite_boxes_and_logits_are_dropped_before_nms_and_counted():
    nan, inf = float("nan"), float("inf")
    boxes = torch.tensor(
        [
            [0, 0, 0, 1, 1, 1, 0],
            [0.1, 0, 0, nan, 1, 1, 0],
            [3, 3, 0, 1, 1, 1, 0],
            [6, 6, 0, inf, 1, 1, 0],
            [9, 9, 0, 1, 1, 1, 0],
        ]
    )
    logits = logit(torch.tensor([[0.9, 0.0], [0.95, 0.0], [0.7, 0.0], [0.8, 0.0], [0.6, 0.0]]))
    logits[4, 1] = nan
    counts = PostprocessCounts()
    cfg = PostprocessConfig(nms_pre=4)
    d = postprocess_scene(logits, lambda k: boxes[k], cfg, True, NAMES, counts)
    # Box 1 would have suppressed box 0 (IoU 0.9); it is dropped instead, as are the infinite box 3 and anchor 4
    # with its NaN score (which takes no pre-filter place: nms_pre 4 still reaches anchors 0-3). The -inf logits
    # of class b (score 0) are ordinary.
    assert np.allclose(d.scores, [0.9, 0.7]) and np.array_equal(d.boxes, boxes[[0, 2]].numpy())
    assert counts.non_finite == 3
    postprocess_scene(logits, lambda k: boxes[k], cfg, True, NAMES, counts)
    assert counts.non_finite == 6
