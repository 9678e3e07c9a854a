"""AlignOTA: OTA with an IoU-aware ("aligned") classification cost, the other assigner of SR3D's Tab. 4.

Our reading of the soft-label OTA of DAMO-YOLO's AlignOTA (the form RTMDet later named its dynamic soft-label
assigner): the classification cost is the BCE of the GT-class score against the IoU as a soft label, scaled by
``|IoU − p|²``; the regression cost is ``iou_weight · (−ln IoU)``; a soft centre prior ``10^(d/stride − r)``
replaces the hard centre region. Candidates are anchors inside a GT box; dynamic k from the top-q IoUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sr3d_core.assign.base import (
    AnchorSet,
    AssignerConfig,
    AssignResult,
    GroundTruth,
    PredictionAwareAssigner,
    Predictions,
)
from sr3d_core.assign.costs import points_in_boxes
from sr3d_core.assign.simota import dynamic_k_assignment, ota_matrices


@dataclass(frozen=True)
class AlignOTAConfig(AssignerConfig):
    """AlignOTA settings.

    Attributes:
        soft_center_radius: r of the soft centre prior, in anchor strides (3).
        candidate_topq: IoUs summed for the dynamic k (13).
        iou_weight: weight of the −ln IoU cost (3).
    """

    name: str = "alignota"
    soft_center_radius: float = 3.0
    candidate_topq: int = 13
    iou_weight: float = 3.0

    def __post_init__(self) -> None:
        if self.soft_center_radius <= 0 or self.candidate_topq < 1 or self.iou_weight < 0:
            raise ValueError("assigner: soft_center_radius must be > 0, candidate_topq >= 1, iou_weight >= 0")


class AlignOTAAssigner(PredictionAwareAssigner):
    """Soft-label OTA on 3-D anchors.

    Args:
        cfg: the settings.
        rotated: boxes carry a yaw.
    """

    config_class = AlignOTAConfig

    cfg: AlignOTAConfig

    def _assign(self, anchors: AnchorSet, preds: Predictions, gt: GroundTruth) -> AssignResult:
        cand = points_in_boxes(anchors.locations, gt.boxes)
        iou, ai, gi = ota_matrices(anchors, preds, gt, cand, self.rotated)
        logit = preds.cls_logits[ai, gt.labels[gi]]
        q = iou[ai, gi]
        cls_cost = F.binary_cross_entropy_with_logits(logit, q, reduction="none") * (q - logit.sigmoid()).abs().pow(2)
        dist = (anchors.locations[ai] - gt.boxes[gi, :3]).norm(dim=1) / anchors.strides[ai]
        prior = torch.pow(10.0, dist - self.cfg.soft_center_radius)
        pair = cls_cost + self.cfg.iou_weight * -torch.log(q + 1e-8) + prior
        return dynamic_k_assignment(iou, ai, gi, pair, self.cfg.candidate_topq)
