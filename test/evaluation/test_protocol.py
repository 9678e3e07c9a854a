"""The evaluation protocol: one object of rules, shared by sr3d-evaluate and sr3d-replay and saved with results."""

import dataclasses
import json

import numpy as np
import pytest

from sr3d_core.config import DEPLOY_SCORE_THRESHOLD, load_config
from sr3d_core.data.sources import build_source
from sr3d_core.evaluation.detector_pass import evaluate_detector
from sr3d_core.evaluation.indoor_map import DEFAULT_IOU_THRESHOLDS
from sr3d_core.evaluation.protocol import EvaluationProtocol
from sr3d_core.inference import Detector, write_random_checkpoint


def test_defaults_are_what_both_tools_run():
    p = EvaluationProtocol()
    assert p.iou_thresholds == DEFAULT_IOU_THRESHOLDS and p.skip_classes_without_gt
    assert p.score_threshold is None and p.max_detections is None  # the checkpoint's post-processing
    assert p.pr_score_threshold == DEPLOY_SCORE_THRESHOLD
    assert p.postprocess_overrides() == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.max_detections = 3


def test_round_trip_through_json():
    p = EvaluationProtocol(
        iou_thresholds=(0.25,),
        skip_classes_without_gt=False,
        score_threshold=0.05,
        max_detections=7,
        nms_iou=0.25,
        pr_score_threshold=None,
    )
    back = EvaluationProtocol.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p and hash(back) == hash(p)
    assert p.postprocess_overrides() == {"score_threshold": 0.05, "max_detections": 7, "nms_iou": 0.25}
    with pytest.raises(ValueError, match="unknown"):
        EvaluationProtocol.from_dict({"max_dets": 3})


@pytest.mark.parametrize(
    "bad",
    [
        {"iou_thresholds": ()},
        {"iou_thresholds": (0.0,)},
        {"iou_thresholds": (1.0,)},
        {"score_threshold": 1.0},
        {"pr_score_threshold": -0.1},
        {"max_detections": 0},
        {"nms_iou": 0.0},
        {"nms_iou": 1.5},
        {"nms_iou": float("nan")},
    ],
)
def test_invalid_values_are_refused(bad):
    with pytest.raises(ValueError):
        EvaluationProtocol(**bad)


def test_the_evaluator_applies_every_rule(tmp_path):
    cfg = load_config("toy_tiny", ["postprocess.score_threshold=0.0"])
    ck = write_random_checkpoint(tmp_path / "toy.pt", cfg, seed=3)
    source = build_source(cfg, "val")
    plain = evaluate_detector(Detector.from_checkpoint(ck), source, keep_scenes=True)
    assert plain.protocol == EvaluationProtocol() and plain.precision_recall is not None
    assert max(len(d) for _, d in plain.scenes) > 2
    capped = evaluate_detector(
        Detector.from_checkpoint(ck), source, EvaluationProtocol(max_detections=2), keep_scenes=True
    )
    for (_, d), (_, full) in zip(capped.scenes, plain.scenes):  # the cap keeps the best-scored boxes
        assert len(d) == min(2, len(full))
        assert np.array_equal(d.scores, np.sort(full.scores)[::-1][: len(d)])
    strict = evaluate_detector(
        Detector.from_checkpoint(ck), source, EvaluationProtocol(skip_classes_without_gt=False, iou_thresholds=(0.25,))
    )
    assert np.array_equal(strict.result.in_mean, strict.result.evaluated)  # mmdet3d: every evaluated class
    assert strict.result.iou_thresholds == (0.25,) and strict.precision_recall.iou_thresholds == (0.25,)
    assert strict.evaluator.skip_classes_without_gt is False


def _bev_iou_aligned(a: np.ndarray, b: np.ndarray) -> float:
    """Axis-aligned BEV IoU of two (x, y, z, dx, dy, dz, ...) boxes, by hand."""
    ox = max(0.0, min(a[0] + a[3] / 2, b[0] + b[3] / 2) - max(a[0] - a[3] / 2, b[0] - b[3] / 2))
    oy = max(0.0, min(a[1] + a[4] / 2, b[1] + b[4] / 2) - max(a[1] - a[4] / 2, b[1] - b[4] / 2))
    inter = ox * oy
    return inter / (a[3] * a[4] + b[3] * b[4] - inter)


def test_the_evaluator_applies_the_nms_iou(tmp_path):
    cfg = load_config("toy_tiny", ["postprocess.score_threshold=0.0"])
    ck = write_random_checkpoint(tmp_path / "toy.pt", cfg, seed=3)
    source = build_source(cfg, "val")

    def worst_same_class_overlap(protocol: EvaluationProtocol) -> float:
        ev = evaluate_detector(Detector.from_checkpoint(ck), source, protocol, keep_scenes=True)
        worst = 0.0
        for _, d in ev.scenes:
            for i in range(len(d)):
                for j in range(i):
                    if d.labels[i] == d.labels[j]:
                        worst = max(worst, _bev_iou_aligned(d.boxes[i], d.boxes[j]))
        return worst

    assert worst_same_class_overlap(EvaluationProtocol()) > 0.1  # the checkpoint's NMS (0.5) keeps such pairs
    assert worst_same_class_overlap(EvaluationProtocol(nms_iou=0.1)) <= 0.1 + 1e-6


def test_boxes_of_unjudged_classes_leave_every_count():
    # Ground truth labelled without night stands (ScanNet): one bed. The model reports the bed and a night stand
    # beside it. Judged, the night stand is a false positive (precision 1/2); unjudged it is not counted (1/1).
    from sr3d_core.detections import Detections
    from sr3d_core.evaluation.indoor_map import SceneGroundTruth

    names = ("bed", "night_stand", "dresser")
    gt = SceneGroundTruth(np.array([[0, 0, 0.5, 2, 1.5, 1, 0]], np.float32), np.array([0]))
    det = Detections(
        np.array([[0, 0, 0.5, 2, 1.5, 1, 0], [2, 0, 0.3, 0.5, 0.5, 0.6, 0], [4, 0, 0.5, 1, 0.5, 1, 0]], np.float32),
        np.array([0.9, 0.8, 0.7], np.float32),
        np.array([0, 1, 2]),
        names,
    )
    for unjudged, precision, kept in (((), 1 / 3, [0, 1, 2]), (("night_stand", "dresser"), 1.0, [0])):
        p = EvaluationProtocol(unjudged_classes=unjudged)
        judged = p.judged(det)
        assert judged.labels.tolist() == kept and judged.class_names == names
        counter = p.pr_counter(names)
        counter.add(gt, judged)
        row = counter.compute().rows(0.25)["all classes"]
        assert row["precision"] == pytest.approx(precision) and row["recall"] == 1.0
        ev = p.map_evaluator(names)
        ev.add(gt, judged)
        assert ev.compute().map_at(0.25) == 1.0
    assert EvaluationProtocol().judged(det) is det
    with pytest.raises(ValueError, match="sequence of class names"):
        EvaluationProtocol(unjudged_classes="night_stand")
    p = EvaluationProtocol(unjudged_classes=["night_stand"])  # a list from JSON
    assert p.unjudged_classes == ("night_stand",)
    assert EvaluationProtocol.from_dict(json.loads(json.dumps(p.to_dict()))) == p
