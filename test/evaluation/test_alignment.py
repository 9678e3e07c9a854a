"""Tests of the alignment metrics AIC and PCE (the formulas in docs/SR3D.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sr3d_core.evaluation import (
    IndoorMapEvaluator,
    SceneGroundTruth,
    average_inconsistency_coefficient,
    prediction_consistency_error,
    prediction_consistency_error_from,
)


def test_aic_hand_example():
    # |.9-.7| + |.5-.5| + |.2-.6| = .2 + 0 + .4 = .6 -> / 3 = .2
    assert average_inconsistency_coefficient([0.9, 0.5, 0.2], [0.7, 0.5, 0.6]) == pytest.approx(0.2)


def test_aic_accepts_tensors_and_is_nan_without_positives():
    torch = pytest.importorskip("torch")
    p = torch.tensor([1.0, 0.0], requires_grad=True)
    assert average_inconsistency_coefficient(p, torch.tensor([0.5, 0.5])) == pytest.approx(0.5)
    assert math.isnan(average_inconsistency_coefficient([], []))


@pytest.mark.parametrize(
    "scores, ious, match",
    [
        ([0.5, 0.5], [0.5], "ious"),
        ([[0.5]], [0.5], "scores"),
        ([np.nan], [0.5], "scores"),
        ([0.5], [np.inf], "ious"),
        ([2.0], [0.5], "scores"),  # a logit passed by mistake
        ([0.5], [-0.1], "ious"),
    ],
)
def test_aic_bad_input(scores, ious, match):
    with pytest.raises(ValueError, match=match):
        average_inconsistency_coefficient(scores, ious)


def test_pce_keeps_top_k_per_class_and_pools():
    # Class 0: 35 detections. The 30 best (scores .99 .. .70) have error .1 each; the 5 worst
    # (scores .10 .. .06) have error ~.9 and must be cut. Class 1: 2 detections, error .4 each.
    # PCE = (30 * .1 + 2 * .4) / 32 = 3.8 / 32 = .11875
    s0 = np.concatenate([0.99 - 0.01 * np.arange(30), 0.10 - 0.01 * np.arange(5)])
    q0 = np.concatenate([s0[:30] - 0.1, np.ones(5)])
    s1, q1 = np.array([0.9, 0.5]), np.array([0.5, 0.9])
    rng = np.random.default_rng(0)
    perm = rng.permutation(37)  # input order must not matter without ties
    scores = np.concatenate([s0, s1])[perm]
    ious = np.concatenate([q0, q1])[perm]
    labels = np.array([0] * 35 + [1] * 2)[perm]
    assert prediction_consistency_error(scores, ious, labels) == pytest.approx(0.11875)
    # top_k = 1: class 0 keeps .99 (err .1), class 1 keeps .9 (err .4) -> .25
    assert prediction_consistency_error(scores, ious, labels, top_k=1) == pytest.approx(0.25)


def test_pce_ties_at_the_cut_keep_the_earlier_detection():
    # Two detections tied at .5; top_k=1 keeps the first listed: err |.5 - .5| = 0 (not |.5 - 0| = .5)
    assert prediction_consistency_error([0.5, 0.5], [0.5, 0.0], [3, 3], top_k=1) == 0.0
    assert prediction_consistency_error([0.5, 0.5], [0.0, 0.5], [3, 3], top_k=1) == 0.5


def test_pce_bad_input():
    assert math.isnan(prediction_consistency_error([], [], np.zeros(0, np.int64)))
    with pytest.raises(ValueError, match="labels"):
        prediction_consistency_error([0.5], [0.5], [0, 1])
    with pytest.raises(ValueError, match="labels"):
        prediction_consistency_error([0.5], [0.5], [-1])
    with pytest.raises(ValueError, match="top_k"):
        prediction_consistency_error([0.5], [0.5], [0], top_k=0)
    with pytest.raises(ValueError, match="ious"):
        prediction_consistency_error([0.5], [np.nan], [0])


def aa_iou(a, b):
    lo = np.maximum(a[:, None, :3] - a[:, None, 3:6] / 2, b[None, :, :3] - b[None, :, 3:6] / 2)
    hi = np.minimum(a[:, None, :3] + a[:, None, 3:6] / 2, b[None, :, :3] + b[None, :, 3:6] / 2)
    inter = np.clip(hi - lo, 0, None).prod(-1)
    return inter / (a[:, 3:6].prod(-1)[:, None] + b[:, 3:6].prod(-1)[None, :] - inter)


def hand_evaluator():
    # Scene 0: GT class 0, side-2 cube at 0. Scene 1: GT class 1 at 0, ignored GT (-1) at 10.
    # Dets: s0 class 0 (2,2,1) inside the cube, score .8: IoU .5 -> err .3
    #       s0 class 1 at 0, score .6: no class-1 GT in scene 0 -> IoU 0 -> err .6
    #       s1 class 0 at 0, score .4: class-0 GT is in scene 0 only -> IoU 0 -> err .4
    #       s1 class 1 at 10 (on the ignored GT), score .2: IoU with class-1 GT at 0 is 0 -> err .2
    # PCE = (.3 + .6 + .4 + .2) / 4 = .375
    cube = [0, 0, 0, 2, 2, 2, 0]
    ev = IndoorMapEvaluator(("a", "b"), iou_fn=aa_iou)
    ev.add(
        SceneGroundTruth(np.array([cube]), np.array([0])),
        {"boxes": np.array([[0, 0, 0, 2, 2, 1, 0], cube]), "scores": np.array([0.8, 0.6]), "labels": np.array([0, 1])},
    )
    ev.add(
        SceneGroundTruth(np.array([cube, [10, 0, 0, 2, 2, 2, 0]]), np.array([1, -1])),
        {"boxes": np.array([cube, [10, 0, 0, 2, 2, 2, 0]]), "scores": np.array([0.4, 0.2]), "labels": np.array([0, 1])},
    )
    return ev


def test_pce_from_evaluator_uses_best_same_class_gt_in_scene():
    ev = hand_evaluator()
    rec = ev.detection_ious()
    np.testing.assert_allclose(rec.ious, [0.5, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(rec.scene, [0, 0, 1, 1])
    assert prediction_consistency_error_from(ev) == pytest.approx(0.375)


def test_alignment_plot_writes_the_figure_of_the_pce(tmp_path):
    from sr3d_core.evaluation.alignment import plot_alignment

    out = tmp_path / "align.png"
    assert plot_alignment(hand_evaluator(), out, title="hand example") == pytest.approx(0.375)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    # top_k = 1 keeps the best of each class: class 0 (.8, IoU .5) and class 1 (.6, IoU 0).
    assert plot_alignment(hand_evaluator(), out, top_k=1) == pytest.approx((0.3 + 0.6) / 2)
