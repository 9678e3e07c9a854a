"""Inference post-processing: top-k pre-filter, per-class score threshold and BEV NMS."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from sr3d_core.config import PostprocessConfig
from sr3d_core.detections import Detections


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
) -> Detections:
    """Turn the raw outputs of one scene into detections.

    Args:
        cls_logits: ``(N, C)`` logits of every anchor of the scene (both levels).
        decode: maps anchor indices to ``(K, 7)`` decoded boxes, so only pre-filtered anchors are decoded.
        cfg: thresholds.
        rotated: rotated BEV IoU in NMS (SUN RGB-D) or axis-aligned with yaw ignored (ScanNet).
        class_names: the model's classes.

    Returns:
        Detections sorted by descending score. A box may appear under several classes.
    """
    from sr3d_core.geometry.nms import nms_bev  # late import keeps this module light

    scores = cls_logits.detach().float().sigmoid()
    keep = prefilter(scores, cfg.nms_pre)
    scores = scores[keep]
    boxes = decode(keep).detach().float()
    if not rotated:
        boxes = torch.cat([boxes[:, :6], boxes.new_zeros(len(boxes), 1)], dim=1)
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
