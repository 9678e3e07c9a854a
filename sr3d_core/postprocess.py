"""Inference post-processing: top-k pre-filter, per-class score threshold and BEV NMS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from sr3d_core.config import PostprocessConfig
from sr3d_core.detections import Detections


@dataclass
class PostprocessCounts:
    """What post-processing dropped, added up over the scenes it is passed to.

    Attributes:
        non_finite: anchors dropped for a NaN score or a NaN or infinite decoded box (boxes are decoded, and so
            checked, only for the ``nms_pre`` anchors kept by the pre-filter).
    """

    non_finite: int = 0


def prefilter(scores: torch.Tensor, nms_pre: int) -> torch.Tensor:
    """Indices of the ``nms_pre`` anchors with the highest max-over-classes score (all if fewer)."""
    if nms_pre <= 0 or len(scores) <= nms_pre:
        return torch.arange(len(scores), device=scores.device)
    return scores.max(dim=1).values.topk(nms_pre).indices


def postprocess_scene(
    cls_logits: torch.Tensor,
    decode: Callable[[torch.Tensor], torch.Tensor],
    cfg: PostprocessConfig,
    rotated: bool,
    class_names: tuple[str, ...],
    counts: Optional[PostprocessCounts] = None,
) -> Detections:
    """Turn the raw outputs of one scene into detections.

    Anchors with a NaN score or a NaN or infinite decoded box are dropped before NMS (and counted in ``counts``):
    one broken output must not cost the whole frame, and the other anchors' detections stay as they would be. (An
    infinite logit is a score of 0 or 1, kept.)

    Args:
        cls_logits: ``(N, C)`` logits of every anchor of the scene (both levels).
        decode: maps anchor indices to ``(K, 7)`` decoded boxes, so only pre-filtered anchors are decoded.
        cfg: thresholds.
        rotated: rotated BEV IoU in NMS (SUN RGB-D) or axis-aligned with yaw ignored (ScanNet).
        class_names: the model's classes.
        counts: if given, the dropped anchors are added to it.

    Returns:
        Detections sorted by descending score. A box may appear under several classes.
    """
    from sr3d_core.geometry.nms import nms_bev  # late import keeps this module light

    scores = cls_logits.detach().float().sigmoid()
    bad_score = scores.isnan().any(dim=1)
    # -1 ranks a broken anchor below every real score in the pre-filter and below any threshold (>= 0).
    scores = scores.masked_fill(bad_score[:, None], -1.0)
    keep = prefilter(scores, cfg.nms_pre)
    scores = scores[keep]
    boxes = decode(keep).detach().float()
    if not rotated:
        boxes = torch.cat([boxes[:, :6], boxes.new_zeros(len(boxes), 1)], dim=1)
    bad_box = ~torch.isfinite(boxes).all(dim=1) & ~bad_score[keep]
    if counts is not None:
        counts.non_finite += int(bad_score.sum()) + int(bad_box.sum())
    scores = scores.masked_fill(bad_box[:, None], -1.0)
    # Every (anchor, class) pair above the threshold is a candidate; NMS runs within each class.
    anchor_idx, cls_idx = (scores > cfg.score_threshold).nonzero(as_tuple=True)
    if len(anchor_idx) == 0:
        return Detections.empty(class_names)
    b, s, lab = boxes[anchor_idx], scores[anchor_idx, cls_idx], cls_idx
    k = torch.as_tensor(nms_bev(b, s, lab, iou_threshold=cfg.nms_iou, rotated=rotated), dtype=torch.long)
    b, s, lab = b[k], s[k], lab[k]
    order = torch.argsort(s, descending=True, stable=True)
    if cfg.max_detections is not None:
        order = order[: cfg.max_detections]
    return Detections(
        b[order].cpu().numpy().astype(np.float32),
        s[order].cpu().numpy().astype(np.float32),
        lab[order].cpu().numpy().astype(np.int64),
        tuple(class_names),
    )


def with_overrides(cfg: PostprocessConfig, **kw: Optional[float]) -> PostprocessConfig:
    """Return ``cfg`` with the given fields replaced; ``PostprocessConfig`` checks the values (one rule)."""
    import dataclasses

    return dataclasses.replace(cfg, **kw)
