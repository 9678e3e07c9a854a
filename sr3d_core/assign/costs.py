"""Pairwise quantities that prediction-aware assigners (SPOTA, simOTA, AlignOTA) build their costs from.

Everything works on *pairs*: ``pred[k]`` against ``gt[k]``, so an assigner can evaluate only its candidate pairs
(a rotated IoU over every anchor × GT pair would dominate the step) and scatter the result into an ``(N, M)``
matrix.
"""

from __future__ import annotations

import math

import torch

from sr3d_core.boxes import box_corners
from sr3d_core.geometry.iou import axis_aligned_iou_paired_diff, rotated_iou_paired_diff, rotated_iou_paired_nograd


def paired_iou(pred: torch.Tensor, gt: torch.Tensor, rotated: bool) -> torch.Tensor:
    """3-D IoU of ``(K, 7)`` box pairs (yaw ignored unless ``rotated``); differentiable when a gradient is needed
    (rotated pairs otherwise take the faster compiled path: the assigners' candidate costs)."""
    if not rotated:
        return axis_aligned_iou_paired_diff(pred[:, :6], gt[:, :6])
    if torch.is_grad_enabled() and (pred.requires_grad or gt.requires_grad):
        return rotated_iou_paired_diff(pred, gt)
    return rotated_iou_paired_nograd(pred, gt)


def opposite_corners(boxes: torch.Tensor, rotated: bool) -> torch.Tensor:
    """``(K, 2, 3)`` the (-, -, -) and (+, +, +) corners of each box in its own frame, placed in the world.

    Axis-aligned boxes give their min and max corners.
    """
    half = 0.5 * boxes[:, 3:6]
    local = torch.stack([-half, half], dim=1)  # (K, 2, 3)
    if not rotated:
        return local + boxes[:, None, :3]
    c, s = torch.cos(boxes[:, 6:7]), torch.sin(boxes[:, 6:7])
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    return torch.stack([x, y, local[..., 2]], dim=-1) + boxes[:, None, :3]


def enclosing_diagonal(pred: torch.Tensor, gt: torch.Tensor, rotated: bool) -> torch.Tensor:
    """``(K,)`` diagonal length of the smallest world-axis box enclosing both boxes of each pair."""
    if rotated:
        pts = torch.cat([box_corners(pred[:, :7]), box_corners(gt[:, :7])], dim=1)  # (K, 16, 3)
        lo, hi = pts.min(dim=1).values, pts.max(dim=1).values
    else:
        lo = torch.minimum(pred[:, :3] - 0.5 * pred[:, 3:6], gt[:, :3] - 0.5 * gt[:, 3:6])
        hi = torch.maximum(pred[:, :3] + 0.5 * pred[:, 3:6], gt[:, :3] + 0.5 * gt[:, 3:6])
    return (hi - lo).norm(dim=1)


def equivalent_parametrizations(boxes: torch.Tensor) -> list[torch.Tensor]:
    """The four ``(x, y, z, w, l, h, θ)`` descriptions of the same rotated boxes.

    ``θ``, ``θ + π``, and ``w ↔ l`` with ``θ ± π/2`` describe one box; their corners are the same points under
    different names, so a vertex distance that pairs corners by name must take the minimum over them.
    """
    swapped = boxes[:, [0, 1, 2, 4, 3, 5, 6]]
    out = []
    for b, turns in ((boxes, (0.0, math.pi)), (swapped, (math.pi / 2, -math.pi / 2))):
        for t in turns:
            e = b.clone()
            e[:, 6] = e[:, 6] + t
            out.append(e)
    return out


def normalized_vertex_distance(pred: torch.Tensor, gt: torch.Tensor, rotated: bool, vertices: str) -> torch.Tensor:
    """SR3D's R_VD (Eq. 3): corresponding-vertex distances over twice the enclosing diagonal.

    ``R_VD = [d(v̂₁, v₁) + d(v̂₂, v₂)] / (2 ρ)`` with Euclidean (not squared) distances and ρ the (not squared)
    diagonal of the smallest box enclosing both. ``vertices="opposite"`` uses the two opposite corners
    ``(-,-,-)`` and ``(+,+,+)``; ``"all8"`` the mean over the 8 corresponding corners, i.e.
    ``Σ_k d_k / (8 ρ)``. For rotated boxes the minimum over the prediction's equivalent parametrizations is
    taken, so the heading ambiguity of a box does not inflate the cost.

    Args:
        pred: ``(K, 7)`` predicted boxes.
        gt: ``(K, 7)`` GT boxes.
        rotated: boxes carry a yaw.
        vertices: ``"opposite"`` or ``"all8"``.

    Returns:
        ``(K,)`` R_VD (0 for identical boxes).
    """
    rho = enclosing_diagonal(pred, gt, rotated).clamp(min=1e-9)
    if not rotated:
        return _mean_vertex_distance(pred, gt, rotated, vertices) / rho
    # The four parametrizations in one batch of 4K pairs: a quarter of the (overhead-bound) op calls.
    k = len(pred)
    dist = _mean_vertex_distance(torch.cat(equivalent_parametrizations(pred)), gt.repeat(4, 1), rotated, vertices)
    return dist.view(4, k).min(dim=0).values / rho


def _mean_vertex_distance(pred: torch.Tensor, gt: torch.Tensor, rotated: bool, vertices: str) -> torch.Tensor:
    """``(K,)`` mean distance of corresponding vertices (the numerator of R_VD over the number of pairs)."""
    if vertices == "opposite" and not rotated:
        # Min and max corners differ by Δc ∓ Δs/2: no corner tensors needed (this runs on every pair).
        dc, hs = pred[:, :3] - gt[:, :3], 0.5 * (pred[:, 3:6] - gt[:, 3:6])
        return 0.5 * ((dc - hs).norm(dim=1) + (dc + hs).norm(dim=1))
    if vertices == "opposite":
        vp, vg = opposite_corners(pred, rotated), opposite_corners(gt, rotated)
    else:
        vp = box_corners(pred[:, :7] if rotated else _no_yaw(pred))
        vg = box_corners(gt[:, :7] if rotated else _no_yaw(gt))
    return (vp - vg).norm(dim=-1).mean(dim=1)


def centre_distance_sq_over_diag_sq(pred: torch.Tensor, gt: torch.Tensor, rotated: bool) -> torch.Tensor:
    """DIoU's penalty ``‖c_pred − c_gt‖² / ρ²`` (ρ: enclosing diagonal)."""
    rho = enclosing_diagonal(pred, gt, rotated).clamp(min=1e-9)
    return ((pred[:, :3] - gt[:, :3]) ** 2).sum(dim=1) / rho**2


def points_in_boxes(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``(N, M)`` bool: point n lies inside (or on) box m (``(M, 7)`` gravity-centre boxes with yaw)."""
    d = points[:, None, :] - boxes[None, :, :3]  # (N, M, 3)
    c, s = torch.cos(boxes[:, 6]), torch.sin(boxes[:, 6])
    lx = c * d[..., 0] + s * d[..., 1]
    ly = -s * d[..., 0] + c * d[..., 1]
    half = 0.5 * boxes[:, 3:6]
    return (lx.abs() <= half[:, 0]) & (ly.abs() <= half[:, 1]) & (d[..., 2].abs() <= half[:, 2])


def _no_yaw(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes[:, :6], boxes.new_zeros(len(boxes), 1)], dim=1)
