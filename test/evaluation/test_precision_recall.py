"""Precision / recall at one score threshold: a hand-worked scene and a brute-force reference.

Every case runs the production IoU (the mAP's ``default_iou_fn``); the reference below computes its IoUs with
shapely and matches with plain loops.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely.geometry

from sr3d_core.detections import Detections
from sr3d_core.evaluation.indoor_map import SceneGroundTruth
from sr3d_core.evaluation.precision_recall import ALL_CLASSES, PrecisionRecallCounter, greedy_match

NAMES = ("chair", "table", "sofa")


def box(x: float, y: float = 0.0, dx: float = 1.0, dy: float = 1.0, yaw: float = 0.0) -> list[float]:
    """A box 1 m high standing on z = 0."""
    return [x, y, 0.5, dx, dy, 1.0, yaw]


def dets(rows: list[tuple[float, int, list[float]]]) -> Detections:
    """Detections from (score, label, box) rows."""
    return Detections(
        np.array([r[2] for r in rows], np.float32).reshape(-1, 7),
        np.array([r[0] for r in rows], np.float64),
        np.array([r[1] for r in rows], np.int64),
        NAMES,
    )


def counts(result, t: float) -> dict[str, tuple[int, int, int]]:
    return {name: (r["tp"], r["fp"], r["fn"]) for name, r in result.rows(t).items()}


def test_hand_worked_scene():
    # GT: chairs A (x=0) and B (x=5); tables T1 and T2 (2 x 2 m).
    gt = SceneGroundTruth(np.array([box(0), box(5), box(0, 5, 2, 2), box(5, 5, 2, 2)]), np.array([0, 0, 1, 1]))
    det = dets(
        [
            (0.9, 0, box(0)),  # chair on A, IoU 1: TP at 0.25 and 0.5
            (0.8, 0, box(0.5)),  # chair, IoU 1/3 with A (taken), 0 with B: FP
            (0.7, 0, box(5.4)),  # chair, IoU 0.6 / 1.4 = 0.43 with B: TP at 0.25, FP at 0.5
            (0.6, 2, box(10, 10)),  # sofa, a class without GT: FP
            (0.3, 1, box(0.5, 5, 2, 2, np.pi)),  # table at exactly the threshold, IoU 3 / 5 with T1: TP
            (0.2, 1, box(5, 5, 2, 2)),  # table on T2, below the threshold: not counted, T2 is missed
        ]
    )
    pr = PrecisionRecallCounter(NAMES, score_threshold=0.3)
    pr.add(gt, det)
    res = pr.compute()
    assert counts(res, 0.25) == {"chair": (2, 1, 0), "table": (1, 0, 1), "sofa": (0, 1, 0), ALL_CLASSES: (3, 2, 1)}
    assert counts(res, 0.5) == {"chair": (1, 2, 1), "table": (1, 0, 1), "sofa": (0, 1, 0), ALL_CLASSES: (2, 3, 2)}
    all25, all50 = res.rows(0.25)[ALL_CLASSES], res.rows(0.5)[ALL_CLASSES]
    assert (all25["precision"], all25["recall"]) == pytest.approx((3 / 5, 3 / 4))
    assert (all50["precision"], all50["recall"]) == pytest.approx((2 / 5, 2 / 4))
    assert math.isnan(res.rows(0.25)["sofa"]["recall"])  # no GT: recall undefined
    assert res.precision(0.25).tolist()[:2] == pytest.approx([2 / 3, 1.0])


def test_a_taken_best_gt_leaves_the_next_free_one():
    # Chairs at x = 0 and 0.6. The first detection takes x = 0 (IoU 0.67); the second overlaps x = 0 best (0.82),
    # already taken, so it takes x = 0.6 (IoU 1/3): a TP at 0.25, not at 0.5.
    gt = SceneGroundTruth(np.array([box(0), box(0.6)]), np.array([0, 0]))
    pr = PrecisionRecallCounter(NAMES, 0.3)
    pr.add(gt, dets([(0.9, 0, box(0.2)), (0.8, 0, box(0.1))]))
    res = pr.compute()
    assert counts(res, 0.25)["chair"] == (2, 0, 0) and counts(res, 0.5)["chair"] == (1, 1, 1)


def test_scenes_add_up_and_gt_only_classes_count_as_missed():
    pr = PrecisionRecallCounter(NAMES, 0.5)
    pr.add(SceneGroundTruth(np.array([box(0)]), np.array([1])), dets([]))  # a table nobody reported
    pr.add({"boxes": np.zeros((0, 7)), "labels": np.zeros(0, np.int64)}, dets([(0.9, 0, box(0))]))
    pr.add(SceneGroundTruth(np.array([box(0), box(3)]), np.array([0, -1])), dets([(0.7, 0, box(3))]))  # ignored GT
    res = pr.compute()
    assert res.num_scenes == 3
    assert counts(res, 0.25) == {"chair": (0, 2, 1), "table": (0, 0, 1), ALL_CLASSES: (0, 2, 2)}
    assert math.isnan(res.rows(0.25)["table"]["precision"])
    d = json.loads(json.dumps(res.to_dict()))  # strict JSON: undefined ratios are null
    assert d["score_threshold"] == 0.5 and d["iou_0.50"]["table"]["precision"] is None
    assert d["iou_0.25"][ALL_CLASSES] == {"tp": 0, "fp": 2, "fn": 2, "precision": 0.0, "recall": 0.0}
    table = res.as_table()
    assert "all classes" in table and "sofa" not in table and "| -" in table


def test_greedy_match_and_bad_arguments():
    iou = np.array([[0.9, 0.3], [0.8, -np.inf], [0.25, 0.25]])
    assert greedy_match(iou, 0.25).tolist() == [0, -1, 1]
    assert greedy_match(iou, 0.5).tolist() == [0, -1, -1]
    assert greedy_match(np.zeros((2, 0)), 0.25).tolist() == [-1, -1]
    for bad in (dict(score_threshold=1.0), dict(score_threshold=-0.1), dict(score_threshold=0.3, iou_thresholds=(0,))):
        with pytest.raises(ValueError):
            PrecisionRecallCounter(NAMES, **bad)
    with pytest.raises(ValueError, match="detections.labels"):
        PrecisionRecallCounter(NAMES, 0.3).add(
            SceneGroundTruth(np.zeros((0, 7)), np.zeros(0, np.int64)),
            {"boxes": [box(0)], "scores": [0.5], "labels": [3]},
        )


# ---------------------------------------------------------------------------------------------
# Brute-force reference
# ---------------------------------------------------------------------------------------------


def _polygon(b: np.ndarray) -> shapely.geometry.Polygon:
    x, y, _, dx, dy, _, yaw = (float(v) for v in b)
    c, s = math.cos(yaw), math.sin(yaw)
    return shapely.geometry.Polygon(
        [
            (x + c * u - s * v, y + s * u + c * v)
            for u, v in ((dx / 2, dy / 2), (-dx / 2, dy / 2), (-dx / 2, -dy / 2), (dx / 2, -dy / 2))
        ]
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    z = max(0.0, min(a[2] + a[5] / 2, b[2] + b[5] / 2) - max(a[2] - a[5] / 2, b[2] - b[5] / 2))
    inter = _polygon(a).intersection(_polygon(b)).area * z
    return inter / (np.prod(a[3:6]) + np.prod(b[3:6]) - inter)


def reference_counts(scenes, num_classes, score_threshold, iou_threshold):
    """{class: [tp, fp, fn]} by plain loops: every kept detection in score order takes its best free GT."""
    out = {c: [0, 0, 0] for c in range(num_classes)}
    for (gt_boxes, gt_labels), (boxes, scores, labels) in scenes:
        kept = sorted((i for i in range(len(scores)) if scores[i] >= score_threshold), key=lambda i: -scores[i])
        free = [lab >= 0 for lab in gt_labels]
        for i in kept:
            best, best_iou = -1, -1.0
            for g in range(len(gt_labels)):
                if free[g] and gt_labels[g] == labels[i]:
                    v = _iou(boxes[i], gt_boxes[g])
                    if v > best_iou:
                        best, best_iou = g, v
            if best >= 0 and best_iou >= iou_threshold:
                free[best] = False
                out[labels[i]][0] += 1
            else:
                out[labels[i]][1] += 1
        for g, lab in enumerate(gt_labels):
            if lab >= 0 and free[g]:
                out[lab][2] += 1
    return out


def random_scenes(rng, rotated, num_classes=3, num_scenes=4):
    """Scenes where detections are jittered GT copies (some relabelled, some twice) plus random boxes."""
    scenes = []
    for _ in range(num_scenes):
        g = int(rng.integers(0, 6))
        gt_boxes = np.c_[
            rng.uniform(-4, 4, (g, 2)),
            rng.uniform(0, 1, g),
            rng.uniform(0.4, 2, (g, 3)),
            rng.uniform(-np.pi, np.pi, g) if rotated else np.zeros(g),
        ]
        gt_labels = rng.integers(-1, num_classes, g)
        src = rng.integers(0, g, 2 * g) if g else np.zeros(0, np.int64)
        copies = (
            gt_boxes[src]
            + np.c_[
                rng.normal(0, 0.3, (len(src), 3)),
                np.zeros((len(src), 3)),
                rng.normal(0, 0.3, len(src)) if rotated else np.zeros(len(src)),
            ]
        )
        copy_labels = np.where(
            rng.uniform(size=len(src)) < 0.8, np.maximum(gt_labels[src], 0), rng.integers(0, num_classes, len(src))
        )
        extra = np.c_[
            rng.uniform(-4, 4, (3, 2)),
            rng.uniform(0, 1, 3),
            rng.uniform(0.4, 2, (3, 3)),
            rng.uniform(-np.pi, np.pi, 3) if rotated else np.zeros(3),
        ]
        boxes = np.concatenate([copies, extra]).astype(np.float32)
        labels = np.concatenate([copy_labels, rng.integers(0, num_classes, 3)])
        scores = np.round(rng.uniform(0, 1, len(boxes)), 1).astype(np.float32)  # ties, and scores on the threshold
        scenes.append(((gt_boxes.astype(np.float32), gt_labels), (boxes, scores, labels)))
    return scenes


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_reference(seed, rotated):
    rng = np.random.default_rng(seed)
    scenes = random_scenes(rng, rotated)
    names = ("a", "b", "c")
    pr = PrecisionRecallCounter(names, score_threshold=0.3)
    for (gb, gl), (b, s, lab) in scenes:
        pr.add(SceneGroundTruth(gb, gl), Detections(b, s, lab, names))
    res = pr.compute()
    for t in (0.25, 0.5):
        ref = reference_counts(scenes, 3, 0.3, t)
        i = res.iou_thresholds.index(t)
        assert [tuple(ref[c]) for c in range(3)] == list(zip(res.tp[i], res.fp[i], res.fn[i])), (seed, rotated, t)
    assert res.tp.sum() > 0 and res.fp.sum() > 0 and res.fn.sum() > 0  # the cases exercise every count
