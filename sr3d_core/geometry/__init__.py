"""Box geometry: exact and differentiable IoU (axis-aligned and rotated) and BEV NMS."""

from sr3d_core.geometry.iou import (
    axis_aligned_bev_iou,
    axis_aligned_iou_3d,
    axis_aligned_iou_paired_diff,
    bev_iou,
    convex_intersection_area,
    iou_3d,
    rotated_bev_iou,
    rotated_iou_3d,
    rotated_iou_paired_diff,
)
from sr3d_core.geometry.nms import nms_bev

__all__ = [
    "axis_aligned_bev_iou",
    "axis_aligned_iou_3d",
    "axis_aligned_iou_paired_diff",
    "bev_iou",
    "convex_intersection_area",
    "iou_3d",
    "nms_bev",
    "rotated_bev_iou",
    "rotated_iou_3d",
    "rotated_iou_paired_diff",
]
