"""simOTA (YOLOX), lifted to 3-D anchors: the assigner SR3D compares SPOTA with (its Tab. 4).

Candidates are anchors inside a GT box or within ``center_radius`` anchor strides of its centre; the cost is
``cls_weight · Σ_c BCE(p_c, onehot_c) + iou_weight · (−ln IoU) + 1e5 · [not (inside box and near centre)]``;
each GT takes a dynamic number of positives, ``max(1, ⌊Σ top-q IoUs⌋)``; conflicts go to the least-cost GT.
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
    gather_or_nan,
    resolve_conflicts,
)
from sr3d_core.assign.costs import paired_iou, points_in_boxes

# YOLOX's penalty for candidates that are not both inside the box and near its centre.
_OUTSIDE_PENALTY = 1e5


@dataclass(frozen=True)
class SimOTAConfig(AssignerConfig):
    """simOTA settings (YOLOX defaults).

    Attributes:
        center_radius: the centre region's half size, in anchor strides (2.5).
        candidate_topq: IoUs summed for the dynamic k (10).
        cls_weight: weight of the classification cost (1).
        iou_weight: weight of the −ln IoU cost (3).
    """

    name: str = "simota"
    center_radius: float = 2.5
    candidate_topq: int = 10
    cls_weight: float = 1.0
    iou_weight: float = 3.0

    def __post_init__(self) -> None:
        if self.center_radius <= 0 or self.candidate_topq < 1 or self.cls_weight < 0 or self.iou_weight < 0:
            raise ValueError("assigner: center_radius must be > 0, candidate_topq >= 1, weights >= 0")


def centre_region(anchors: AnchorSet, gt_boxes: torch.Tensor, radius: float) -> torch.Tensor:
    """``(N, M)`` bool: the anchor lies within ``radius`` of its own strides of the GT centre on every axis."""
    d = (anchors.locations[:, None, :] - gt_boxes[None, :, :3]).abs()
    return (d <= radius * anchors.strides[:, None, None]).all(dim=-1)


def dynamic_k_selection(cost: torch.Tensor, iou: torch.Tensor, topq: int) -> torch.Tensor:
    """``(N, M)`` bool: each GT's ``max(1, ⌊Σ top-q IoUs⌋)`` least-cost finite candidates (YOLOX)."""
    n = cost.shape[0]
    q = min(topq, n)
    ks = iou.topk(q, dim=0).values.sum(dim=0).int().clamp(min=1)  # (M,)
    order = cost.argsort(dim=0)  # (N, M) least cost first
    rank = torch.empty_like(order)
    rank.scatter_(0, order, torch.arange(n, device=cost.device)[:, None].expand_as(order))
    return (rank < ks[None, :]) & torch.isfinite(cost)


def dynamic_k_assignment(
    iou: torch.Tensor, ai: torch.Tensor, gi: torch.Tensor, pair_cost: torch.Tensor, topq: int
) -> AssignResult:
    """The OTA assigners' last step: scatter the candidate pairs' costs, pick each GT's dynamic k, resolve
    conflicts by least cost."""
    cost = torch.full_like(iou, float("inf"))
    cost[ai, gi] = pair_cost
    chosen = dynamic_k_selection(cost, iou, topq)
    gt_index, kept = resolve_conflicts(cost, chosen)
    return AssignResult(gt_index, cost=kept, iou=gather_or_nan(iou, gt_index))


def ota_matrices(anchors: AnchorSet, preds: Predictions, gt: GroundTruth, cand: torch.Tensor, rotated: bool):
    """``iou (N, M)`` of the candidate pairs (0 elsewhere) and the pair indices ``(ai, gi)``."""
    ai, gi = cand.nonzero(as_tuple=True)
    iou = torch.zeros(cand.shape, dtype=preds.boxes.dtype, device=preds.boxes.device)
    iou[ai, gi] = paired_iou(preds.boxes[ai], gt.boxes[gi], rotated)
    return iou, ai, gi


class SimOTAAssigner(PredictionAwareAssigner):
    """YOLOX's simOTA on 3-D anchors.

    Args:
        cfg: the settings.
        rotated: boxes carry a yaw.
    """

    config_class = SimOTAConfig

    cfg: SimOTAConfig

    def _assign(self, anchors: AnchorSet, preds: Predictions, gt: GroundTruth) -> AssignResult:
        n, m = len(anchors), len(gt)
        in_box = points_in_boxes(anchors.locations, gt.boxes)
        in_ctr = centre_region(anchors, gt.boxes, self.cfg.center_radius)
        cand = (in_box | in_ctr).any(dim=1, keepdim=True).expand(n, m)  # YOLOX: foreground of any GT
        iou, ai, gi = ota_matrices(anchors, preds, gt, cand, self.rotated)
        onehot = F.one_hot(gt.labels, preds.cls_logits.shape[1]).to(preds.cls_logits.dtype)  # (M, C)
        cls_cost = F.binary_cross_entropy_with_logits(preds.cls_logits[ai], onehot[gi], reduction="none").sum(dim=1)
        pair = (
            self.cfg.cls_weight * cls_cost
            + self.cfg.iou_weight * -torch.log(iou[ai, gi] + 1e-8)
            + _OUTSIDE_PENALTY * (~(in_box & in_ctr)[ai, gi]).to(iou.dtype)
        )
        return dynamic_k_assignment(iou, ai, gi, pair, self.cfg.candidate_topq)
