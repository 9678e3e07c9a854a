"""Tests of the indoor mAP evaluator (VoteNet / mmdet3d protocol).

Hand-worked cases use an exact axis-aligned IoU written here, so they test the protocol alone; the
random cases compare against a slow, independent reference (plain loops + shapely IoU).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely.geometry

from sr3d_core.detections import Detections
from sr3d_core.evaluation import (
    IndoorMapEvaluator,
    SceneGroundTruth,
    average_precision_area,
    indoor_eval,
)

# ---------------------------------------------------------------------------------------------
# Test-local IoUs
# ---------------------------------------------------------------------------------------------


def aa_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact IoU of axis-aligned boxes (yaw must be 0), vectorised."""
    assert not a[:, 6].any() and not b[:, 6].any()
    lo = np.maximum(a[:, None, :3] - a[:, None, 3:6] / 2, b[None, :, :3] - b[None, :, 3:6] / 2)
    hi = np.minimum(a[:, None, :3] + a[:, None, 3:6] / 2, b[None, :, :3] + b[None, :, 3:6] / 2)
    inter = np.clip(hi - lo, 0, None).prod(-1)
    union = a[:, 3:6].prod(-1)[:, None] + b[:, 3:6].prod(-1)[None, :] - inter
    return inter / union


def _bev_polygon(box: np.ndarray) -> shapely.geometry.Polygon:
    x, y, _, dx, dy, _, yaw = (float(v) for v in box)
    c, s = math.cos(yaw), math.sin(yaw)
    corners = []
    for u, v in ((dx / 2, dy / 2), (-dx / 2, dy / 2), (-dx / 2, -dy / 2), (dx / 2, -dy / 2)):
        corners.append((x + c * u - s * v, y + s * u + c * v))
    return shapely.geometry.Polygon(corners)


def shapely_iou_pair(a: np.ndarray, b: np.ndarray) -> float:
    """Reference 3-D IoU of two rotated boxes: BEV polygon overlap × z overlap / union."""
    area = _bev_polygon(a).intersection(_bev_polygon(b)).area
    zov = max(0.0, min(a[2] + a[5] / 2, b[2] + b[5] / 2) - max(a[2] - a[5] / 2, b[2] - b[5] / 2))
    inter = area * zov
    union = a[3] * a[4] * a[5] + b[3] * b[4] * b[5] - inter
    return inter / union if union > 0 else 0.0


def shapely_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([[shapely_iou_pair(p, q) for q in b] for p in a]).reshape(len(a), len(b))


# ---------------------------------------------------------------------------------------------
# Slow reference, written as plain loops in the structure of mmdet3d's eval_det_cls
# ---------------------------------------------------------------------------------------------


def reference_eval(gts, dets, num_classes, thresholds):
    """Return {class: [(ap, recall) per threshold]} for the classes that appear anywhere."""
    out = {}
    for c in range(num_classes):
        gt_by_scene = []
        for boxes, labels in gts:
            gt_by_scene.append([boxes[i] for i in range(len(labels)) if labels[i] == c])
        npos = sum(len(g) for g in gt_by_scene)
        pool = []
        for s, (boxes, scores, labels) in enumerate(dets):
            for i in range(len(labels)):
                if labels[i] == c:
                    pool.append((float(scores[i]), s, boxes[i]))
        if npos == 0 and not pool:
            continue
        pool = sorted(pool, key=lambda d: -d[0])  # Python's sort is stable
        per_thr = []
        for thr in thresholds:
            if npos == 0:
                per_thr.append((math.nan, math.nan))
                continue
            if not pool:
                per_thr.append((0.0, 0.0))
                continue
            used = [[False] * len(g) for g in gt_by_scene]
            flags = []
            for _, s, box in pool:
                best, jbest = -math.inf, None
                for j, g in enumerate(gt_by_scene[s]):
                    v = shapely_iou_pair(box, g)
                    if v > best:
                        best, jbest = v, j
                if jbest is not None and best > thr and not used[s][jbest]:
                    used[s][jbest] = True
                    flags.append(1)
                else:
                    flags.append(0)
            rec, prec, tp = [], [], 0
            for k, f in enumerate(flags):
                tp += f
                rec.append(tp / npos)
                prec.append(tp / (k + 1))
            mrec = [0.0] + rec + [1.0]
            mpre = [0.0] + prec + [0.0]
            for i in range(len(mpre) - 2, -1, -1):
                mpre[i] = max(mpre[i], mpre[i + 1])
            ap = 0.0
            for i in range(len(mrec) - 1):
                if mrec[i + 1] != mrec[i]:
                    ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1]
            per_thr.append((ap, rec[-1]))
        out[c] = per_thr
    return out


def random_scenes(seed, rotated, num_classes=4, num_scenes=5):
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for _ in range(num_scenes):
        g = int(rng.integers(0, 7))
        centre = rng.uniform(-3, 3, (g, 3))
        size = rng.uniform(0.3, 2.0, (g, 3))
        yaw = rng.uniform(-np.pi, np.pi, (g, 1)) if rotated else np.zeros((g, 1))
        gboxes = np.concatenate([centre, size, yaw], 1)
        glabels = rng.integers(-1, num_classes - 1, g)  # the last class never has GT; -1 = ignored
        dboxes, dlabels = [], []
        for b, lab in zip(gboxes, glabels):
            for _ in range(int(rng.integers(0, 3))):  # misses and duplicates
                jit = b.copy()
                jit[:3] += rng.normal(0, 0.25, 3) * b[3:6]
                jit[3:6] *= rng.uniform(0.7, 1.3, 3)
                if rotated:
                    jit[6] += rng.normal(0, 0.3)
                dboxes.append(jit)
                dlabels.append(max(int(lab), 0) if rng.random() > 0.1 else int(rng.integers(0, num_classes)))
        for _ in range(int(rng.integers(0, 4))):  # background false positives
            dboxes.append(
                np.concatenate([rng.uniform(-3, 3, 3), rng.uniform(0.3, 2, 3), [rng.uniform(-3, 3) if rotated else 0]])
            )
            dlabels.append(int(rng.integers(0, num_classes)))
        k = len(dboxes)
        dboxes = np.array(dboxes).reshape(k, 7)
        scores = np.round(rng.random(k), 1)  # coarse scores: many ties
        gts.append((gboxes, glabels))
        dets.append((dboxes, scores, np.array(dlabels, dtype=np.int64)))
    return gts, dets


def _as_inputs(gts, dets):
    return (
        [SceneGroundTruth(b, lab) for b, lab in gts],
        [{"boxes": b, "scores": s, "labels": lab} for b, s, lab in dets],
    )


def _compare_with_reference(gts, dets, num_classes, iou_fn):
    thrs = (0.25, 0.5)
    names = tuple(f"c{i}" for i in range(num_classes))
    res = indoor_eval(*_as_inputs(gts, dets), names, thrs, iou_fn=iou_fn)
    ref = reference_eval(gts, dets, num_classes, thrs)
    assert sorted(ref) == list(np.flatnonzero(res.evaluated))
    for c, per_thr in ref.items():
        for i, (ap, rec) in enumerate(per_thr):
            np.testing.assert_allclose(res.ap[i, c], ap, rtol=0, atol=1e-9, equal_nan=True)
            np.testing.assert_allclose(res.recall[i, c], rec, rtol=0, atol=1e-9, equal_nan=True)
    for i in range(len(thrs)):
        aps = [per_thr[i][0] for per_thr in ref.values()]
        np.testing.assert_allclose(res.mean_ap[i], np.mean(aps) if aps else np.nan, atol=1e-9, equal_nan=True)
    return res


# ---------------------------------------------------------------------------------------------
# Hand-worked cases (IoU of boxes with power-of-two sizes is exact in floating point)
# ---------------------------------------------------------------------------------------------


def box(x=0.0, y=0.0, z=0.0, dx=2.0, dy=2.0, dz=2.0, yaw=0.0):
    return [x, y, z, dx, dy, dz, yaw]


def run(gts, dets, names=("a",), **kw):
    """gts: [(boxes, labels)], dets: [(boxes, scores, labels)] as lists."""
    g = [SceneGroundTruth(np.array(b, float).reshape(-1, 7), np.array(lab, np.int64)) for b, lab in gts]
    d = [
        {"boxes": np.array(b, float).reshape(-1, 7), "scores": np.array(s, float), "labels": np.array(lab, np.int64)}
        for b, s, lab in dets
    ]
    return indoor_eval(g, d, names, iou_fn=aa_iou, **kw)


def test_voc_area_ap_hand_example():
    # mrec = [0, .2, .4, .4, .6, 1], mpre = [0, 1, 1, 2/3, .75, 0] -> envelope [1, 1, 1, .75, .75, 0]
    # AP = .2*1 + .2*1 + (.4->.4 skipped) + .2*.75 + .4*0 = 0.55
    ap = average_precision_area(np.array([0.2, 0.4, 0.4, 0.6]), np.array([1.0, 1.0, 2 / 3, 0.75]))
    assert ap == pytest.approx(0.55, abs=1e-12)
    # a perfect ranking with full recall gives 1; no recall gives 0
    assert average_precision_area(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    assert average_precision_area(np.array([0.0, 0.0]), np.array([0.0, 0.0])) == 0.0


def test_duplicate_detection_is_one_tp_one_fp():
    # GT A; dets A (0.9) and A again (0.8). Ranked: TP, FP -> rec [1, 1], prec [1, .5].
    # mrec [0,1,1,1], envelope [1,1,.5,0] -> AP = 1*1 = 1; recall 1.
    res = run([([box()], [0])], [([box(), box()], [0.9, 0.8], [0, 0])])
    assert res.to_dict() == {
        "a_AP_0.25": 1.0, "mAP_0.25": 1.0, "a_rec_0.25": 1.0, "mAR_0.25": 1.0,
        "a_AP_0.50": 1.0, "mAP_0.50": 1.0, "a_rec_0.50": 1.0, "mAR_0.50": 1.0,
    }  # fmt: skip
    # The duplicate ranked first instead: FP (0.9, far away), TP (0.8) -> rec [0, 1], prec [0, .5]
    # mrec [0,0,1,1], envelope [.5,.5,.5,0] -> AP = (1-0)*.5 = .5
    res = run([([box()], [0])], [([box(x=10), box()], [0.9, 0.8], [0, 0])])
    assert res.map_at(0.25) == pytest.approx(0.5) and res.mar_at(0.5) == 1.0


def test_unmatched_gt_lowers_recall():
    # GTs A, B; one det on A. rec [.5], prec [1] -> mrec [0,.5,1], env [1,1,0] -> AP = .5*1 = .5
    res = run([([box(), box(x=10)], [0, 0])], [([box()], [0.7], [0])])
    assert res.ap[0, 0] == pytest.approx(0.5) and res.recall[0, 0] == pytest.approx(0.5)
    assert res.num_gt[0] == 2


def test_no_fallback_to_second_best_gt():
    # GT A at x=0, GT B at x=1.5 (cubes of side 2). d1 = A (0.9); d2 at x=.5 (0.8):
    # IoU(d2, A) = (2-.5)/(2+.5) = .6, IoU(d2, B) = (2-1)/(2+1) = 1/3 > .25, but d2 takes A, which is
    # matched -> FP, no fallback to B. rec [.5, .5], prec [1, .5] -> AP .5, recall .5 at both thresholds.
    res = run([([box(), box(x=1.5)], [0, 0])], [([box(), box(x=0.5)], [0.9, 0.8], [0, 0])])
    np.testing.assert_allclose(res.ap[:, 0], [0.5, 0.5])
    np.testing.assert_allclose(res.recall[:, 0], [0.5, 0.5])


def test_iou_between_thresholds_counts_only_at_025():
    # GT cube of side 2 (volume 8); det (2, 2, 0.75) inside it: IoU = 3/8 = .375 -> TP at .25, FP at .5
    res = run([([box()], [0])], [([box(dz=0.75)], [0.9], [0])])
    assert res.to_dict()["a_AP_0.25"] == 1.0 and res.to_dict()["a_rec_0.25"] == 1.0
    assert res.to_dict()["a_AP_0.50"] == 0.0 and res.to_dict()["a_rec_0.50"] == 0.0


@pytest.mark.parametrize("dz, thr", [(0.5, 0.25), (1.0, 0.5)])
def test_threshold_is_strict(dz, thr):
    # det (2, 2, dz) inside a side-2 cube: IoU = dz/2, exactly the threshold -> not a TP (mmdet3d: iou > thr)
    res = run([([box()], [0])], [([box(dz=dz)], [0.9], [0])], iou_thresholds=(thr,))
    assert res.ap[0, 0] == 0.0 and res.recall[0, 0] == 0.0


def test_classes_without_gt_follow_mmdet3d():
    # a: GT + perfect det -> AP 1; b: det, no GT anywhere -> rec = 0/0 = nan -> AP nan, mAP nan;
    # c: nothing at all -> absent from the output and the means; d: GT, no det -> AP 0, rec 0.
    names = ("a", "b", "c", "d")
    gts = [([box(), box(x=10)], [0, 3])]
    dets = [([box(), box(x=20)], [0.9, 0.8], [0, 1])]
    res = run(gts, dets, names)
    out = res.to_dict()
    assert out["a_AP_0.25"] == 1.0 and out["d_AP_0.25"] == 0.0 and out["d_rec_0.25"] == 0.0
    assert math.isnan(out["b_AP_0.25"]) and math.isnan(out["b_rec_0.25"])
    assert math.isnan(out["mAP_0.25"]) and math.isnan(out["mAR_0.50"])
    assert not any(k.startswith("c_") for k in out)
    assert list(res.evaluated) == [True, True, False, True]
    # Our documented deviation: classes without GT leave the means -> (1 + 0) / 2
    res = run(gts, dets, names, skip_classes_without_gt=True)
    assert res.map_at(0.25) == pytest.approx(0.5) and res.mar_at(0.25) == pytest.approx(0.5)
    assert math.isnan(res.to_dict()["b_AP_0.25"])
    assert "*" in res.as_table()


def test_nothing_to_evaluate_gives_nan():
    res = run([([], [])], [([], [], [])])
    assert math.isnan(res.map_at(0.25)) and not res.evaluated.any()


def test_ties_keep_pooled_order():
    # Equal scores: FP (x=10) listed before TP -> ranked FP, TP -> AP .5 (see duplicate test);
    # listed after -> TP, FP -> AP 1.
    res = run([([box()], [0])], [([box(x=10), box()], [0.5, 0.5], [0, 0])])
    assert res.map_at(0.25) == pytest.approx(0.5)
    res = run([([box()], [0])], [([box(), box(x=10)], [0.5, 0.5], [0, 0])])
    assert res.map_at(0.25) == pytest.approx(1.0)
    # Across scenes: the earlier scene's detection ranks first. Scene 0 holds the FP, scene 1 the TP.
    res = run([([], []), ([box()], [0])], [([box()], [0.5], [0]), ([box()], [0.5], [0])])
    assert res.map_at(0.25) == pytest.approx(0.5)


def test_many_ties_use_a_stable_sort():
    # 10 FPs at 0.9, then 30 dets at 0.5 of which only the LAST matches the GT. Stable ranking puts the
    # TP at rank 40: rec jumps 0 -> 1 where prec = 1/40 -> AP = 1/40. (numpy's default quicksort may
    # move it; mmdet3d's order among ties is therefore platform dependent.)
    rng = np.random.default_rng(0)
    fp = [box(x=10 + 3 * i) for i in range(39)]
    order = rng.permutation(39)
    boxes = [fp[i] for i in order[:10]] + [fp[i] for i in order[10:]] + [box()]
    scores = [0.9] * 10 + [0.5] * 30
    inter = rng.permutation(10)  # interleave the 0.9s among the first 20 entries, keeping the TP last
    boxes2, scores2 = list(boxes), list(scores)
    for k, j in enumerate(inter):
        boxes2[2 * k], boxes2[2 * j + 1] = boxes2[2 * j + 1], boxes2[2 * k]
        scores2[2 * k], scores2[2 * j + 1] = scores2[2 * j + 1], scores2[2 * k]
    assert boxes2[-1] == box() and scores2[-1] == 0.5
    res = run([([box()], [0])], [(boxes2, scores2, [0] * 40)])
    assert res.map_at(0.25) == pytest.approx(1 / 40, abs=1e-12)


def test_two_scenes_no_cross_scene_matching():
    # Scene 0: GT at 0. Scene 1: GTs at 10 and 20. Dets: s1@10 (.9) TP; s1@0 (.8) FP (that GT is in
    # scene 0); s0@0 (.6) TP. npos 3: rec [1/3, 1/3, 2/3], prec [1, 1/2, 2/3].
    # mrec [0,1/3,1/3,2/3,1], envelope [1,1,2/3,2/3,0] -> AP = 1/3*1 + 1/3*2/3 = 5/9; recall 2/3.
    gts = [([box()], [0]), ([box(x=10), box(x=20)], [0, 0])]
    dets = [([box()], [0.6], [0]), ([box(x=10), box()], [0.9, 0.8], [0, 0])]
    res = run(gts, dets)
    np.testing.assert_allclose(res.ap[:, 0], [5 / 9, 5 / 9], atol=1e-12)
    np.testing.assert_allclose(res.recall[:, 0], [2 / 3, 2 / 3], atol=1e-12)


def test_ignored_gt_is_dropped():
    # Label -1 GT at x=10 is removed: the det on it (.9) is an ordinary FP and npos = 1.
    # Ranked FP, TP -> AP .5, recall 1.
    res = run([([box(x=10), box()], [-1, 0])], [([box(x=10), box()], [0.9, 0.8], [0, 0])])
    assert res.ap[0, 0] == pytest.approx(0.5) and res.recall[0, 0] == 1.0 and res.num_gt[0] == 1


def test_first_maximum_wins_on_equal_iou():
    # Two identical GTs; dets identical to them: d1 takes GT 0 (first max), d2 also picks GT 0 -> FP
    # (mmdet3d keeps the first maximum, no fallback). rec [.5, .5] -> AP .5.
    res = run([([box(), box()], [0, 0])], [([box(), box()], [0.9, 0.8], [0, 0])])
    assert res.ap[0, 0] == pytest.approx(0.5) and res.recall[0, 0] == pytest.approx(0.5)


def test_streaming_equals_one_shot_and_reset():
    gts, dets = random_scenes(7, rotated=False)
    names = ("c0", "c1", "c2", "c3")
    g, d = _as_inputs(gts, dets)
    one = indoor_eval(g, d, names, iou_fn=aa_iou)
    ev = IndoorMapEvaluator(names, iou_fn=aa_iou)
    ev.add(g[0], d[0])
    ev.reset()
    for gi, di in zip(g, d):
        ev.add(gi, di)
    two = ev.compute()
    assert ev.num_scenes == len(g) == two.num_scenes
    np.testing.assert_array_equal(one.ap, two.ap)
    assert one.to_dict().keys() == two.to_dict().keys()


def test_input_forms_are_equivalent():
    names = ("a", "b")
    b = np.array([box(), box(x=5, dx=1.0)], np.float32)
    gt = SceneGroundTruth(b, np.array([0, 1]))
    det = Detections(b, np.array([0.8, 0.7], np.float32), np.array([0, 1], np.int64), names)
    ref = indoor_eval([gt], [det], names, iou_fn=aa_iou).to_dict()
    mm = indoor_eval(
        [{"gt_bboxes_3d": b[:, :6], "gt_labels_3d": np.array([0, 1])}],  # ScanNet: 6 numbers, no yaw
        [{"bboxes_3d": b, "scores_3d": det.scores, "labels_3d": det.labels}],
        names,
        iou_fn=aa_iou,
    ).to_dict()
    assert ref == mm and ref["mAP_0.25"] == 1.0
    torch = pytest.importorskip("torch")
    tt = indoor_eval(
        [{"boxes": torch.from_numpy(b), "labels": torch.tensor([0, 1])}],
        [{"boxes": torch.from_numpy(b), "scores": torch.tensor([0.8, 0.7]), "labels": torch.tensor([0, 1])}],
        names,
        iou_fn=aa_iou,
    ).to_dict()
    assert tt == ref


def test_table_and_dict_keys():
    res = run([([box()], [0])], [([box()], [0.9], [0])], names=("chair", "table"))
    table = res.as_table()
    assert "chair" in table and "Overall" in table and "AP_0.25" in table and "AR_0.50" in table
    assert "table " not in table.split("Overall")[0].split("chair")[1]  # class without GT/dets omitted
    assert list(res.to_dict()) == [
        "chair_AP_0.25", "mAP_0.25", "chair_rec_0.25", "mAR_0.25",
        "chair_AP_0.50", "mAP_0.50", "chair_rec_0.50", "mAR_0.50",
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Random cases against the slow reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_matches_slow_reference(seed, rotated):
    gts, dets = random_scenes(seed, rotated)
    _compare_with_reference(gts, dets, 4, shapely_iou)


def test_random_cases_exercise_the_edge_cases():
    """Guards the generator: the seeds above must hit duplicates, ties, ignored GT and no-GT classes."""
    seen_tie = seen_ignored = seen_nan = False
    for seed in range(6):
        gts, dets = random_scenes(seed, True)
        scores = np.concatenate([s for _, s, _ in dets])
        seen_tie |= len(np.unique(scores)) < len(scores)
        seen_ignored |= any((lab == -1).any() for _, lab in gts)
        res = indoor_eval(*_as_inputs(gts, dets), ("c0", "c1", "c2", "c3"), iou_fn=shapely_iou)
        seen_nan |= bool(np.isnan(res.ap[:, res.evaluated]).any())
    assert seen_tie and seen_ignored and seen_nan


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_default_iou_matches_slow_reference(seed, rotated):
    pytest.importorskip("sr3d_core.geometry.iou")
    gts, dets = random_scenes(100 + seed, rotated)
    _compare_with_reference(gts, dets, 4, None)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def _ev():
    return IndoorMapEvaluator(("a", "b"), iou_fn=aa_iou)


GOOD_GT = {"boxes": np.array([box()]), "labels": np.array([0])}
GOOD_DET = {"boxes": np.array([box()]), "scores": np.array([0.5]), "labels": np.array([0])}


@pytest.mark.parametrize(
    "gt, det, match",
    [
        ({"boxes": np.zeros((1, 5)), "labels": np.array([0])}, GOOD_DET, "SceneGroundTruth.boxes"),
        ({"boxes": np.array([box(x=np.nan)]), "labels": np.array([0])}, GOOD_DET, "SceneGroundTruth.boxes"),
        ({"boxes": np.array([box(dx=-1)]), "labels": np.array([0])}, GOOD_DET, "SceneGroundTruth.boxes"),
        ({"boxes": np.array([box()]), "labels": np.array([0, 1])}, GOOD_DET, "SceneGroundTruth.labels"),
        ({"boxes": np.array([box()]), "labels": np.array([0.0])}, GOOD_DET, "SceneGroundTruth.labels"),
        ({"boxes": np.array([box()]), "labels": np.array([-2])}, GOOD_DET, "SceneGroundTruth.labels"),
        ({"boxes": np.array([box()]), "labels": np.array([2])}, GOOD_DET, "ground_truth.labels"),
        ({"labels": np.array([0])}, GOOD_DET, "ground_truth"),
        (GOOD_GT, {**GOOD_DET, "boxes": np.zeros((1, 8))}, "detections.boxes"),
        (GOOD_GT, {**GOOD_DET, "boxes": np.array([box(yaw=np.inf)])}, "detections.boxes"),
        (GOOD_GT, {**GOOD_DET, "scores": np.array([0.5, 0.4])}, "detections.scores"),
        (GOOD_GT, {**GOOD_DET, "scores": np.array([np.nan])}, "detections.scores"),
        (GOOD_GT, {**GOOD_DET, "labels": np.array([0, 0])}, "detections.labels"),
        (GOOD_GT, {**GOOD_DET, "labels": np.array([2])}, "detections.labels"),
        (GOOD_GT, {**GOOD_DET, "labels": np.array([-1])}, "detections.labels"),
        (GOOD_GT, "not detections", "detections"),
        ([1, 2], GOOD_DET, "ground_truth"),
    ],
)
def test_bad_input_names_the_argument(gt, det, match):
    with pytest.raises(ValueError, match=match):
        _ev().add(gt, det)


def test_bad_construction_and_pairing():
    with pytest.raises(ValueError, match="class_names"):
        IndoorMapEvaluator(("a", "a"))
    with pytest.raises(ValueError, match="iou_thresholds"):
        IndoorMapEvaluator(("a",), iou_thresholds=(1.0,))
    with pytest.raises(ValueError, match="iou_thresholds"):
        IndoorMapEvaluator(("a",), iou_thresholds=(0.251, 0.252))
    with pytest.raises(ValueError, match="detections"):
        indoor_eval([GOOD_GT, GOOD_GT], [GOOD_DET], ("a", "b"), iou_fn=aa_iou)
    det = Detections.empty(("x", "y"))
    with pytest.raises(ValueError, match="class_names"):
        _ev().add(GOOD_GT, det)
    with pytest.raises(ValueError, match="iou_fn"):
        IndoorMapEvaluator(("a", "b"), iou_fn=lambda a, b: np.full((len(a), len(b)), np.nan)).add(GOOD_GT, GOOD_DET)
    with pytest.raises(ValueError, match="not evaluated"):
        run([([box()], [0])], [([box()], [0.9], [0])]).map_at(0.7)
