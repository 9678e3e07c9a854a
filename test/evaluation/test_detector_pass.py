"""Evaluating a detector over a scene source goes through Detector.detect, scene by scene."""

import numpy as np
import pytest

from sr3d_core.config import load_config
from sr3d_core.data.sources import build_source
from sr3d_core.evaluation.detector_pass import evaluate_detector
from sr3d_core.evaluation.indoor_map import IndoorMapEvaluator
from sr3d_core.evaluation.precision_recall import PrecisionRecallCounter
from sr3d_core.evaluation.protocol import EvaluationProtocol
from sr3d_core.inference import Detector, write_random_checkpoint


@pytest.fixture(scope="module")
def toy_detector(tmp_path_factory):
    """A random toy detector with a point cap, so test-time sampling has something to draw."""
    cfg = load_config("toy_tiny", ["data.max_points=3000", "postprocess.score_threshold=0.0"])
    ck = write_random_checkpoint(tmp_path_factory.mktemp("ck") / "toy.pt", cfg, seed=3)
    return Detector.from_checkpoint(ck)


def same(a, b):
    return (
        np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores) and np.array_equal(a.labels, b.labels)
    )


def test_first_pass_is_what_detect_returns(toy_detector):
    source = build_source(toy_detector.config, "val")
    res = evaluate_detector(toy_detector, source, keep_scenes=True)
    assert len(res.scenes) == len(source) == 2
    ev = IndoorMapEvaluator(toy_detector.class_names, skip_classes_without_gt=True)
    for i, (gt, det) in enumerate(res.scenes):
        scene = source.get(i, np.random.default_rng(0), train=False)
        assert np.array_equal(gt.boxes, scene.gt_boxes)
        assert same(det, toy_detector.detect(scene.points))
        ev.add(gt, det)
    assert res.metrics()["mAP_0.25"] == ev.compute().map_at(0.25)
    assert set(res.metrics()) == {"mAP_0.25", "mAP_0.5", "mAR_0.25", "mAR_0.5", "latency_ms"}


def test_repeats_redraw_the_test_time_sampling(toy_detector):
    source = build_source(toy_detector.config, "val")
    first = evaluate_detector(toy_detector, source, repeat_index=1, keep_scenes=True, max_scenes=1)
    again = evaluate_detector(toy_detector, source, repeat_index=1, keep_scenes=True, max_scenes=1)
    other = evaluate_detector(toy_detector, source, repeat_index=2, keep_scenes=True, max_scenes=1)
    assert same(first.scenes[0][1], again.scenes[0][1])  # a repeat is reproducible
    assert not same(first.scenes[0][1], other.scenes[0][1])  # and differs from the next one
    assert len(first.scenes) == 1


def test_oracle_and_neutral_colour_passes(toy_detector):
    source = build_source(toy_detector.config, "val")
    oracle = evaluate_detector(toy_detector, source, oracle="gt_iou")
    plain = evaluate_detector(toy_detector, source)
    assert oracle.metrics()["mAP_0.25"] >= plain.metrics()["mAP_0.25"]
    neutral = evaluate_detector(toy_detector, source, neutral_color=True, keep_scenes=True)
    grey = source.get(0, np.random.default_rng(0), train=False).points.copy()
    grey[:, 3:6] = 0.5
    assert same(neutral.scenes[0][1], toy_detector.detect(grey))
    with pytest.raises(ValueError, match="oracle"):
        evaluate_detector(toy_detector, source, oracle="nope")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate_detector(toy_detector, source, max_scenes=0)


def test_precision_recall_counts_the_same_detections(toy_detector):
    source = build_source(toy_detector.config, "val")
    seen = []
    res = evaluate_detector(
        toy_detector,
        source,
        EvaluationProtocol(pr_score_threshold=0.2),
        keep_scenes=True,
        on_scene=lambda i, scene, det: seen.append((i, len(scene.points), len(det))),
    )
    pr = PrecisionRecallCounter(toy_detector.class_names, 0.2)
    for gt, det in res.scenes:
        pr.add(gt, det)
    expected = pr.compute()
    for a, b in (
        (res.precision_recall.tp, expected.tp),
        (res.precision_recall.fp, expected.fp),
        (res.precision_recall.fn, expected.fn),
    ):
        assert np.array_equal(a, b)
    assert [s[0] for s in seen] == [0, 1] and [s[2] for s in seen] == [len(d) for _, d in res.scenes]
    assert res.protocol.pr_score_threshold == 0.2
    no_pr = EvaluationProtocol(pr_score_threshold=None)
    assert evaluate_detector(toy_detector, source, no_pr, max_scenes=1).precision_recall is None


def test_turned_frames_turn_points_and_ground_truth_alike(tmp_path):
    # yaw turns each scene about the vertical axis through the origin before detection: a point (x, y, z) goes to
    # (x cos a - y sin a, x sin a + y cos a, z), a box centre likewise, its yaw grows by a, its size stays.
    cfg = load_config("toy_tiny", ["model.box_type=rotated", "postprocess.score_threshold=0.0"])
    det = Detector.from_checkpoint(write_random_checkpoint(tmp_path / "rot.pt", cfg, seed=3))
    source = build_source(det.config, "val")
    seen = {}
    for yaw in (0.0, 0.5):
        evaluate_detector(
            det, source, max_scenes=2, yaw=yaw, on_scene=lambda i, s, d, y=yaw: seen.setdefault((y, i), s)
        )
    c, s = np.cos(0.5), np.sin(0.5)
    for i in range(2):
        a, b = seen[(0.0, i)], seen[(0.5, i)]
        x, y = a.points[:, 0].astype(np.float64), a.points[:, 1].astype(np.float64)
        np.testing.assert_allclose(b.points[:, 0], x * c - y * s, atol=1e-5)
        np.testing.assert_allclose(b.points[:, 1], x * s + y * c, atol=1e-5)
        np.testing.assert_array_equal(b.points[:, 2:], a.points[:, 2:])
        gx, gy = a.gt_boxes[:, 0].astype(np.float64), a.gt_boxes[:, 1].astype(np.float64)
        np.testing.assert_allclose(b.gt_boxes[:, 0], gx * c - gy * s, atol=1e-5)
        np.testing.assert_allclose(b.gt_boxes[:, 1], gx * s + gy * c, atol=1e-5)
        np.testing.assert_allclose(b.gt_boxes[:, 2:6], a.gt_boxes[:, 2:6])
        np.testing.assert_allclose(np.cos(b.gt_boxes[:, 6] - a.gt_boxes[:, 6]), c, atol=1e-6)
        np.testing.assert_allclose(np.sin(b.gt_boxes[:, 6] - a.gt_boxes[:, 6]), s, atol=1e-6)  # +0.5, not -0.5
        assert b.gt_labels.tolist() == a.gt_labels.tolist()


def test_turned_frames_need_rotated_boxes(toy_detector):
    with pytest.raises(ValueError, match="rotated boxes.*'aligned'"):
        evaluate_detector(toy_detector, build_source(toy_detector.config, "val"), max_scenes=1, yaw=0.3)
