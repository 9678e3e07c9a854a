"""sr3d_core.evaluation: indoor mAP (VoteNet / mmdet3d protocol), precision / recall at one score threshold, the
AIC / PCE alignment metrics and the evaluation protocol that sr3d-evaluate and sr3d-replay share."""

from sr3d_core.evaluation.alignment import (
    average_inconsistency_coefficient,
    prediction_consistency_error,
    prediction_consistency_error_from,
)
from sr3d_core.evaluation.indoor_map import (
    DEFAULT_IOU_THRESHOLDS,
    DetectionIous,
    IndoorMapEvaluator,
    IndoorMapResult,
    SceneGroundTruth,
    average_precision_area,
    default_iou_fn,
    indoor_eval,
)
from sr3d_core.evaluation.precision_recall import PrecisionRecallCounter, PrecisionRecallResult
from sr3d_core.evaluation.protocol import EvaluationProtocol

__all__ = [
    "DEFAULT_IOU_THRESHOLDS",
    "DetectionIous",
    "EvaluationProtocol",
    "IndoorMapEvaluator",
    "IndoorMapResult",
    "PrecisionRecallCounter",
    "PrecisionRecallResult",
    "SceneGroundTruth",
    "average_inconsistency_coefficient",
    "average_precision_area",
    "default_iou_fn",
    "indoor_eval",
    "prediction_consistency_error",
    "prediction_consistency_error_from",
]
