"""IoU and DIoU box losses, axis-aligned (ScanNet) and rotated (SUN RGB-D).

DIoU loss: ``L = 1 − IoU + ρ²/c²``, with ρ the distance between the box centres and c the diagonal of the smallest
world-axis-aligned box enclosing both boxes. For rotated boxes that enclosure is built from the x/y extents of
both bird's-eye-view corner sets and the z range.

TR3D's rotated DIoU computes ρ² from ``(Δx, Δy, Δdx)`` instead of ``(Δx, Δy, Δz)`` (it takes the first three
entries of the 5-vector ``(x, y, w, l, θ)``). ``tr3d_quirk=True`` reproduces that for a faithful baseline; the
default is the correct 3D centre distance.

Inputs are not validated for NaN here (that would force a device sync in the training loop); only shapes are.
"""

from __future__ import annotations

from typing import Optional

import torch

from sr3d_core.boxes import bev_corners, with_yaw
from sr3d_core.geometry.iou import axis_aligned_iou_paired_diff, rotated_iou_paired_diff

_REDUCTIONS = ("none", "mean", "sum")


def _check(pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor], cols: tuple[int, ...]) -> None:
    for name, t in (("pred", pred), ("target", target)):
        if t.ndim != 2 or t.shape[1] not in cols:
            want = " or ".join(f"(N, {c})" for c in cols)
            raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    if pred.shape[0] != target.shape[0]:
        raise ValueError(f"pred and target must have the same length, got {pred.shape[0]} and {target.shape[0]}")
    if weight is not None and tuple(weight.shape) != (pred.shape[0],):
        raise ValueError(f"weight must have shape ({pred.shape[0]},), got {tuple(weight.shape)}")


def _reduce(
    loss: torch.Tensor, weight: Optional[torch.Tensor], reduction: str, avg_factor: Optional[float]
) -> torch.Tensor:
    """Weight and reduce like mmdet's ``weight_reduce_loss``: mean divides by N, or by ``avg_factor`` if given."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if reduction == "none":
        return loss
    total = loss.sum()  # an empty batch sums to 0 and keeps the graph connected
    if reduction == "sum":
        return total
    denom = avg_factor if avg_factor is not None else max(loss.numel(), 1)
    return total / denom


def _enclosure_sq_diag(
    lo1: torch.Tensor, hi1: torch.Tensor, lo2: torch.Tensor, hi2: torch.Tensor, eps: float
) -> torch.Tensor:
    diag = torch.maximum(hi1, hi2) - torch.minimum(lo1, lo2)
    return (diag * diag).sum(dim=-1).clamp(min=eps)


def axis_aligned_iou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    avg_factor: Optional[float] = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """``1 − IoU`` of axis-aligned boxes (yaw ignored).

    Args:
        pred: ``(N, 6)`` or ``(N, 7)`` predicted boxes.
        target: ``(N, 6)`` or ``(N, 7)`` target boxes.
        weight: optional ``(N,)`` per-box weights.
        reduction: ``"none"`` (``(N,)``), ``"mean"`` or ``"sum"``.
        avg_factor: divisor of ``"mean"`` instead of N (e.g. the number of positives in the batch).
        eps: lower bound of the union.

    Returns:
        The loss, ``(N,)`` or a scalar.
    """
    _check(pred, target, weight, (6, 7))
    iou = axis_aligned_iou_paired_diff(pred, target, eps=eps)
    return _reduce(1.0 - iou, weight, reduction, avg_factor)


def axis_aligned_diou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    avg_factor: Optional[float] = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """``1 − IoU + ρ²/c²`` of axis-aligned boxes (TR3D's ``AxisAlignedIoULoss``, mode ``diou``).

    Args:
        pred: ``(N, 6)`` or ``(N, 7)`` predicted boxes (yaw ignored).
        target: ``(N, 6)`` or ``(N, 7)`` target boxes.
        weight: optional ``(N,)`` per-box weights.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        avg_factor: divisor of ``"mean"`` instead of N.
        eps: lower bound of the union and of ``c²``.

    Returns:
        The loss, ``(N,)`` or a scalar.
    """
    _check(pred, target, weight, (6, 7))
    iou = axis_aligned_iou_paired_diff(pred, target, eps=eps)
    lo1, hi1 = pred[:, :3] - 0.5 * pred[:, 3:6], pred[:, :3] + 0.5 * pred[:, 3:6]
    lo2, hi2 = target[:, :3] - 0.5 * target[:, 3:6], target[:, :3] + 0.5 * target[:, 3:6]
    rho2 = ((pred[:, :3] - target[:, :3]) ** 2).sum(dim=-1)
    loss = 1.0 - iou + rho2 / _enclosure_sq_diag(lo1, hi1, lo2, hi2, eps)
    return _reduce(loss, weight, reduction, avg_factor)


def rotated_iou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    avg_factor: Optional[float] = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """``1 − IoU`` of yaw-rotated boxes (BEV polygon intersection times z overlap).

    Args:
        pred: ``(N, 7)`` predicted boxes.
        target: ``(N, 7)`` target boxes.
        weight: optional ``(N,)`` per-box weights.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        avg_factor: divisor of ``"mean"`` instead of N.
        eps: lower bound of the union.

    Returns:
        The loss, ``(N,)`` or a scalar.
    """
    _check(pred, target, weight, (7,))
    iou = rotated_iou_paired_diff(pred, target, eps=eps)
    return _reduce(1.0 - iou, weight, reduction, avg_factor)


def rotated_diou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    avg_factor: Optional[float] = None,
    eps: float = 1e-6,
    tr3d_quirk: bool = False,
    iou: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``1 − IoU + ρ²/c²`` of yaw-rotated boxes (TR3D's ``RotatedIoU3DLoss``, mode ``diou``).

    ``c²`` is the squared diagonal of the world-axis box enclosing both BEV corner sets and both z ranges.

    Args:
        pred: ``(N, 7)`` predicted boxes.
        target: ``(N, 7)`` target boxes.
        weight: optional ``(N,)`` per-box weights.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        avg_factor: divisor of ``"mean"`` instead of N.
        eps: lower bound of the union and of ``c²``.
        tr3d_quirk: compute ρ² from ``(Δx, Δy, Δdx)`` as TR3D does, instead of the centre distance
            ``(Δx, Δy, Δz)``.
        iou: ``rotated_iou_paired_diff(pred, target, eps=eps)`` when the caller has it already (the criterion
            needs the IoU of its positives before the box loss); gradients flow through it as through the loss's own.

    Returns:
        The loss, ``(N,)`` or a scalar.
    """
    _check(pred, target, weight, (7,))
    pred, target = with_yaw(pred), with_yaw(target)
    if iou is None:
        iou = rotated_iou_paired_diff(pred, target, eps=eps)
    c1, c2 = bev_corners(pred), bev_corners(target)  # (N, 4, 2)
    lo_xy = torch.minimum(c1.amin(dim=1), c2.amin(dim=1))
    hi_xy = torch.maximum(c1.amax(dim=1), c2.amax(dim=1))
    lo_z = torch.minimum(pred[:, 2] - 0.5 * pred[:, 5], target[:, 2] - 0.5 * target[:, 5])
    hi_z = torch.maximum(pred[:, 2] + 0.5 * pred[:, 5], target[:, 2] + 0.5 * target[:, 5])
    diag = torch.cat([hi_xy - lo_xy, (hi_z - lo_z)[:, None]], dim=1)
    c2_sq = (diag * diag).sum(dim=-1).clamp(min=eps)
    third = 3 if tr3d_quirk else 2  # column 3 is dx (TR3D's "w"), column 2 is z
    delta = torch.stack([pred[:, 0] - target[:, 0], pred[:, 1] - target[:, 1], pred[:, third] - target[:, third]], 1)
    rho2 = (delta * delta).sum(dim=-1)
    return _reduce(1.0 - iou + rho2 / c2_sq, weight, reduction, avg_factor)
