"""Evaluate a detector over a scene source: indoor mAP / mAR, per-class table and latency.

Each scene goes through ``Detector.detect``, the path the ROS node takes, so the numbers measure what is
deployed. Repeats (``repeat_index`` > 0) re-draw the test-time sampling: a random ``max_points`` cap and in-voxel
point choice seeded by the repeat, as in TR3D/SR3D's protocol of several test runs per training. The rules that
score the detections (classes without GT, IoU thresholds, the cap per frame, the threshold of precision / recall)
are an ``EvaluationProtocol``, the one ``sr3d-replay`` uses too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from sr3d_core.data.augment import rot_scale_trans
from sr3d_core.data.infos import Sample
from sr3d_core.data.sources import SceneSource
from sr3d_core.detections import Detections
from sr3d_core.evaluation.indoor_map import IndoorMapEvaluator, IndoorMapResult, SceneGroundTruth
from sr3d_core.evaluation.oracle import predict_with_gt_iou
from sr3d_core.evaluation.precision_recall import PrecisionRecallResult
from sr3d_core.evaluation.protocol import EvaluationProtocol
from sr3d_core.inference import Detector
from sr3d_core.preprocess import with_neutral_color

# Second seed word of the evaluation generators, apart from every training draw (those use the epoch there).
_EVAL_STREAM = 1_000_003

# --oracle name -> what it replaces the scores with (see sr3d_core.evaluation.oracle).
ORACLES = ("gt_iou",)

#: Called after each scene with its index, the scene as read and its detections (outside the timed part).
SceneCallback = Callable[[int, Sample, Detections], None]


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one pass over a scene source.

    Attributes:
        result: Per-class AP / AR and their means.
        protocol: The rules the numbers were made under.
        evaluator: The filled evaluator (for other metrics over the same detections, e.g. PCE).
        latency_ms: Mean time per scene in ``detect`` (preprocessing + network + post-processing), the first
            scene (warm-up) left out when there are several.
        scenes: ``(ground truth, detections)`` per scene, when asked for.
        precision_recall: TP / FP / FN, precision and recall at the protocol's ``pr_score_threshold`` (None when
            it has none).
    """

    result: IndoorMapResult
    protocol: EvaluationProtocol
    evaluator: IndoorMapEvaluator
    latency_ms: float
    scenes: tuple[tuple[SceneGroundTruth, Detections], ...] = ()
    precision_recall: Optional[PrecisionRecallResult] = None

    def metrics(self) -> dict[str, float]:
        """``mAP_0.25``, ``mAP_0.5``, ``mAR_0.25``, ``mAR_0.5`` and ``latency_ms``."""
        r = self.result
        return {
            "mAP_0.25": r.map_at(0.25),
            "mAP_0.5": r.map_at(0.5),
            "mAR_0.25": r.mar_at(0.25),
            "mAR_0.5": r.mar_at(0.5),
            "latency_ms": self.latency_ms,
        }


def evaluate_detector(
    detector: Detector,
    source: SceneSource,
    protocol: EvaluationProtocol = EvaluationProtocol(),
    *,
    repeat_index: int = 0,
    max_scenes: Optional[int] = None,
    keep_scenes: bool = False,
    oracle: Optional[str] = None,
    neutral_color: bool = False,
    yaw: float = 0.0,
    on_scene: Optional[SceneCallback] = None,
) -> Evaluation:
    """Run ``detector`` over the scenes of ``source`` (unaugmented) and compute the indoor mAP.

    The detector's model is left in eval mode (a caller that trains it restores train mode), with the
    post-processing the protocol sets (``EvaluationProtocol.postprocess_overrides``).

    Args:
        detector: The detector (its config's ``train.seed`` seeds the test-time sampling).
        source: The scenes.
        protocol: How detections are made and scored; the default is what ``sr3d-evaluate`` and ``sr3d-replay``
            run by default.
        repeat_index: 0 for the deterministic test pass ``detect`` makes; each other value draws a different
            test-time sampling.
        max_scenes: Evaluate only the first scenes.
        keep_scenes: Also return each scene's ground truth and detections, so other metrics (subsets, PCE) can be
            computed without running the model again.
        oracle: ``"gt_iou"``: score foreground anchors by their box's true IoU with the GT
            (``sr3d_core.evaluation.oracle``), an upper bound on what better-aligned scores could give.
        neutral_color: Colour every point ``NEUTRAL_COLOR`` (``preprocess.with_neutral_color``: what the node feeds a
            colour model for a cloud without colour), to measure what missing colour costs.
        yaw: Turn every scene, points and ground truth alike, by this angle (radians) about the vertical axis
            through the frame's origin before detection (for SUN RGB-D frames the camera: the same frames seen from
            a camera turned about its vertical axis), to measure how much the numbers depend on where a frame
            happens to look. Needs a model of rotated boxes (an axis-aligned one cannot fit turned ground truth).
        on_scene: Called after each scene (e.g. to draw it); its time is not counted in the latency.

    Raises:
        ValueError: Nothing to evaluate or an unknown oracle.
    """
    n = len(source) if max_scenes is None else min(max_scenes, len(source))
    if n < 1:
        raise ValueError(f"nothing to evaluate: {len(source)} scenes, max_scenes={max_scenes}")
    if oracle is not None and oracle not in ORACLES:
        raise ValueError(f"oracle must be one of {ORACLES} or None, got {oracle!r}")
    if yaw and detector.config.model.box_type != "rotated":
        raise ValueError(
            f"yaw {yaw} needs a model of rotated boxes; this one's box_type is {detector.config.model.box_type!r}"
        )
    detector.model.eval()
    overrides = protocol.postprocess_overrides()
    if overrides:
        detector.set_postprocess(**overrides)
    seed = detector.config.train.seed
    ev = protocol.map_evaluator(detector.class_names)
    pr = protocol.pr_counter(detector.class_names)
    times, scenes = [], []
    for i in range(n):
        rng = np.random.default_rng([seed, _EVAL_STREAM, repeat_index, i])
        scene = source.get(i, rng, train=False)
        if yaw:
            turned, boxes = rot_scale_trans(scene.points, scene.gt_boxes, yaw, 1.0, np.zeros(3), axis_aligned=False)
            scene = Sample(turned, boxes, scene.gt_labels, scene.sample_idx)
        points = with_neutral_color(scene.points) if neutral_color else scene.points
        # Repeat 0 is the deterministic pass detect() makes by default; later ones draw the cap from the scene's
        # generator and seed the in-voxel choice with the repeat.
        sampling = rng if repeat_index else None
        t0 = time.perf_counter()
        if oracle == "gt_iou":
            det = _detect_with_gt_iou(detector, points, scene, sampling, repeat_index)
        else:
            det = detector.detect(points, rng=sampling, voxel_seed=repeat_index)
        if detector.device.type == "cuda":
            torch.cuda.synchronize(detector.device)
        times.append(time.perf_counter() - t0)
        det = protocol.judged(det)
        gt = SceneGroundTruth(np.asarray(scene.gt_boxes, np.float32), np.asarray(scene.gt_labels))
        ev.add(gt, det)
        if pr is not None:
            pr.add(gt, det)
        if keep_scenes:
            scenes.append((gt, det))
        if on_scene is not None:
            on_scene(i, scene, det)
    latency = 1000 * float(np.mean(times[1:] if len(times) > 1 else times))
    return Evaluation(ev.compute(), protocol, ev, latency, tuple(scenes), None if pr is None else pr.compute())


@torch.no_grad()
def _detect_with_gt_iou(
    detector: Detector, points: np.ndarray, scene: Sample, rng: Optional[np.random.Generator], voxel_seed: int
) -> Detections:
    """``detect`` with the gt_iou oracle's scores: the same network input, other scores before NMS."""
    x, _ = detector.network_input(points, rng=rng, voxel_seed=voxel_seed)
    if x is None:
        return Detections.empty(detector.class_names)
    return predict_with_gt_iou(
        detector.model,
        x,
        torch.as_tensor(np.asarray(scene.gt_boxes, np.float32)),
        torch.as_tensor(np.asarray(scene.gt_labels, np.int64)),
        detector.postprocess,
        detector.class_names,
    )


__all__ = ["ORACLES", "Evaluation", "SceneCallback", "evaluate_detector"]
