"""The evaluation protocol: how detections are made and scored against ground truth.

One frozen object holds every rule that changes the numbers, so ``sr3d-evaluate`` (``evaluate_detector``) and
``sr3d-replay`` score the same way and write the rules next to the numbers (``to_dict``). The defaults are what
both tools run by default.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from sr3d_core.config import DEPLOY_SCORE_THRESHOLD
from sr3d_core.detections import Detections
from sr3d_core.evaluation.indoor_map import DEFAULT_IOU_THRESHOLDS, IndoorMapEvaluator
from sr3d_core.evaluation.precision_recall import PrecisionRecallCounter


@dataclass(frozen=True)
class EvaluationProtocol:
    """Every rule an evaluation's numbers depend on.

    Attributes:
        iou_thresholds: IoU thresholds of mAP / mAR (strict) and of precision / recall (inclusive).
        skip_classes_without_gt: Classes without ground truth leave mAP / mAR. False is mmdet3d's rule (a class
            with detections but no ground truth makes the means nan); the two differ only on small sets, since on
            the real val sets every class has ground truth.
        score_threshold: Post-processing's minimum score; None keeps the checkpoint's ``postprocess``.
        max_detections: Detections kept per frame; None keeps the checkpoint's ``postprocess`` (TR3D's: no cap).
        nms_iou: BEV IoU threshold of the per-class NMS; None keeps the checkpoint's ``postprocess`` (the node
            runs at its own ``nms_iou`` parameter: set it here to score the boxes the node publishes).
        pr_score_threshold: Precision / recall count the boxes scored at or above it (the node's default
            ``score_threshold``: what a user sees); None counts none.
        unjudged_classes: Classes the ground truth does not annotate (a data set labelled with another class
            list: a SUN RGB-D model's night stands on ScanNet, where they are unlabelled furniture). Their boxes
            leave every count, since nothing can say whether they are right.

    Raises:
        ValueError: A threshold out of range or ``max_detections`` below 1.
    """

    iou_thresholds: tuple[float, ...] = DEFAULT_IOU_THRESHOLDS
    skip_classes_without_gt: bool = True
    score_threshold: Optional[float] = None
    max_detections: Optional[int] = None
    nms_iou: Optional[float] = None
    pr_score_threshold: Optional[float] = DEPLOY_SCORE_THRESHOLD
    unjudged_classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        thrs = tuple(float(t) for t in self.iou_thresholds)
        if not thrs or not all(0.0 < t < 1.0 for t in thrs):
            raise ValueError(f"iou_thresholds must be a non-empty sequence of values in (0, 1), got {thrs}")
        object.__setattr__(self, "iou_thresholds", thrs)  # a list from YAML / JSON keeps the object hashable
        if isinstance(self.unjudged_classes, str):  # tuple("bed") would be its letters
            raise ValueError(
                f"unjudged_classes must be a sequence of class names, got the string {self.unjudged_classes!r}"
            )
        object.__setattr__(self, "unjudged_classes", tuple(str(c) for c in self.unjudged_classes))
        for name in ("score_threshold", "pr_score_threshold"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and 0.0 <= v < 1.0):
                raise ValueError(f"{name} must lie in [0, 1) or be None, got {v}")
        if self.max_detections is not None and self.max_detections < 1:
            raise ValueError(f"max_detections must be >= 1 or None, got {self.max_detections}")
        if self.nms_iou is not None and not (math.isfinite(self.nms_iou) and 0.0 < self.nms_iou <= 1.0):
            raise ValueError(f"nms_iou must lie in (0, 1] or be None, got {self.nms_iou}")

    def postprocess_overrides(self) -> dict[str, Any]:
        """The post-processing values this protocol sets (``Detector.set_postprocess`` keywords); the checkpoint
        keeps the others."""
        return {
            k: v
            for k, v in (
                ("score_threshold", self.score_threshold),
                ("max_detections", self.max_detections),
                ("nms_iou", self.nms_iou),
            )
            if v is not None
        }

    def judged(self, detections: Detections) -> Detections:
        """``detections`` without the boxes of ``unjudged_classes`` (the same object when there are none)."""
        if not self.unjudged_classes or not len(detections):
            return detections
        names = detections.class_names
        drop = [names.index(c) for c in self.unjudged_classes if c in names]
        keep = ~np.isin(detections.labels, drop)
        return Detections(detections.boxes[keep], detections.scores[keep], detections.labels[keep], names)

    def map_evaluator(self, class_names: Sequence[str]) -> IndoorMapEvaluator:
        """An empty mAP / mAR evaluator under this protocol."""
        return IndoorMapEvaluator(
            class_names, self.iou_thresholds, skip_classes_without_gt=self.skip_classes_without_gt
        )

    def pr_counter(self, class_names: Sequence[str]) -> Optional[PrecisionRecallCounter]:
        """An empty precision / recall counter under this protocol (None when it counts none)."""
        if self.pr_score_threshold is None:
            return None
        return PrecisionRecallCounter(class_names, self.pr_score_threshold, self.iou_thresholds)

    def to_dict(self) -> dict[str, Any]:
        """The protocol as JSON-ready values (written next to the numbers it produced)."""
        d = asdict(self)
        d["iou_thresholds"] = list(self.iou_thresholds)
        d["unjudged_classes"] = list(self.unjudged_classes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvaluationProtocol":
        """The inverse of ``to_dict``; a missing key keeps its default.

        Raises:
            ValueError: An unknown key or an invalid value.
        """
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown evaluation protocol keys {sorted(unknown)}")
        return cls(**d)


__all__ = ["EvaluationProtocol"]
