"""The gt_iou oracle: how good the detector would be if its scores ranked boxes by their true IoU.

For every foreground anchor (an anchor inside a GT box), the score of that GT's class is replaced by the IoU of
the anchor's predicted box with the GT (the GT, among those containing the anchor, that its box overlaps most);
everything else, NMS included, is unchanged. The gap between this mAP and the real one measures how much
accuracy is lost to classification scores that are not aligned with localization quality.
"""

from __future__ import annotations

import torch

from sr3d_core.assign.costs import paired_iou, points_in_boxes
from sr3d_core.detections import Detections
from sr3d_core.model.network import TR3DNetwork
from sr3d_core.postprocess import postprocess_scene
from sr3d_core.sparse import SparseTensor


@torch.no_grad()
def gt_iou_logits(
    anchors: torch.Tensor,
    boxes: torch.Tensor,
    logits: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    rotated: bool,
) -> torch.Tensor:
    """Logits with the GT-class score of every foreground anchor replaced by its box's IoU with that GT.

    Args:
        anchors: ``(N, 3)`` anchor locations.
        boxes: ``(N, 7)`` their decoded boxes.
        logits: ``(N, C)`` their logits.
        gt_boxes: ``(M, 7)`` GT boxes.
        gt_labels: ``(M,)`` GT classes.
        rotated: boxes carry a yaw.

    Returns:
        ``(N, C)`` new logits (a copy).
    """
    out = logits.clone()
    if len(gt_boxes) == 0 or len(anchors) == 0:
        return out
    inside = points_in_boxes(anchors, gt_boxes)  # (N, M)
    ai, gi = inside.nonzero(as_tuple=True)
    if len(ai) == 0:
        return out
    iou = paired_iou(boxes[ai], gt_boxes[gi], rotated)
    best = torch.full((len(anchors),), -1.0, dtype=iou.dtype, device=iou.device)
    best.scatter_reduce_(0, ai, iou, reduce="amax")
    keep = iou == best[ai]  # the GT each anchor's box overlaps most (ties: any; same IoU either way)
    ai, gi, iou = ai[keep], gi[keep], iou[keep]
    q = iou.clamp(1e-6, 1 - 1e-6).to(out.dtype)
    out[ai, gt_labels[gi]] = torch.log(q / (1 - q))
    return out


@torch.no_grad()
def predict_with_gt_iou(
    model: TR3DNetwork,
    x: SparseTensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    post_cfg,
    class_names: tuple[str, ...],
) -> Detections:
    """Detections of a one-scene batch with the gt_iou oracle scores (see the module docstring)."""
    out = model(x)
    boxes = model.decode(out)
    rotated = model.cfg.box_type == "rotated"
    gtb = gt_boxes.to(boxes)
    if gtb.shape[1] == 6:
        gtb = torch.cat([gtb, gtb.new_zeros(len(gtb), 1)], dim=1)
    logits = gt_iou_logits(out.anchors, boxes, out.cls_logits, gtb, gt_labels.to(boxes.device), rotated)
    return postprocess_scene(logits, lambda keep: boxes[keep], post_cfg, rotated, class_names)
