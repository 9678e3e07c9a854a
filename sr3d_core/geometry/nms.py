"""Per-class greedy non-maximum suppression on bird's-eye-view IoU.

TR3D suppresses with a BEV IoU, never a 3D one: rotated ``(x, y, dx, dy, yaw)`` on SUN RGB-D (mmcv ``nms3d``) and
axis-aligned with yaw forced to 0 on ScanNet (``nms3d_normal``); z is ignored in both. As in mmcv, a box is
suppressed when its IoU with a kept, higher-scoring box of the same class is strictly greater than the threshold.

The work is vectorized: candidate pairs (same class, lower score, overlapping axis-aligned footprints) come from
one batched test, their exact IoU from one batched call, and the greedy pass then visits each box that suppresses
something once, in score order. Boxes of different classes never interact.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from sr3d_core.boxes import ArrayLike, as_tensor, boxes_to_minmax, check_boxes, with_yaw
from sr3d_core.geometry import native
from sr3d_core.geometry.iou import axis_aligned_iou_paired_diff, rotated_iou_paired_diff

# Up to this many boxes the compiled greedy loop (every same-label pair after a kept box, footprints first) runs the
# rotated NMS; beyond it the sweep over sorted footprints below, which only visits overlapping pairs.
_COMPILED_NMS_MAX = 10_000


def _check_inputs(
    boxes: Any,
    scores: Any,
    labels: Any,
    iou_threshold: float,
    pre_max: Optional[int],
    max_out: Optional[int],
    rotated: bool,
) -> None:
    check_boxes(boxes, "boxes", allow_no_yaw=not rotated)
    n = boxes.shape[0]
    if not isinstance(scores, (torch.Tensor, np.ndarray)) or tuple(scores.shape) != (n,):
        got = getattr(scores, "shape", scores)
        raise ValueError(f"scores must be an array of shape ({n},) to match boxes, got {got}")
    if n and not bool(torch.isfinite(as_tensor(scores)[0]).all()):
        raise ValueError("scores contains NaN or inf values")
    if labels is not None:
        if isinstance(labels, (int, float)):
            raise ValueError(
                f"labels must be an array of shape ({n},), got the number {labels}; pass iou_threshold=... by keyword"
            )
        if not isinstance(labels, (torch.Tensor, np.ndarray)) or tuple(labels.shape) != (n,):
            raise ValueError(
                f"labels must be an array of shape ({n},) to match boxes, got {getattr(labels, 'shape', labels)}"
            )
        integer = (
            np.issubdtype(labels.dtype, np.integer)
            if isinstance(labels, np.ndarray)
            else not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
        )
        if not integer:
            raise ValueError(f"labels must hold integers, got dtype {labels.dtype}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    for name, v in (("pre_max", pre_max), ("max_out", max_out)):
        if v is not None and (not isinstance(v, (int, np.integer)) or v < 0):
            raise ValueError(f"{name} must be None or a non-negative integer, got {v!r}")


def _candidate_pairs(lo: torch.Tensor, hi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pairs ``(i, j)``, ``i < j``, of the same label whose footprints ``[lo, hi]`` overlap with positive area.

    Sweep and prune: with boxes sorted by (label, x_min), the boxes whose x range can meet box p's are the
    contiguous run after p up to the first x_min >= p's x_max, found by one ``searchsorted``. The sort key is
    float64 so that the label offset costs no precision.
    """
    k = lo.shape[0]
    lo64, hi64 = lo.double(), hi.double()
    base = lo64[:, 0].min()
    width = float(hi64[:, 0].max() - base) + 1.0
    key_lo = labels.double() * width + (lo64[:, 0] - base)
    key_hi = labels.double() * width + (hi64[:, 0] - base)
    order = torch.argsort(key_lo, stable=True)
    end = torch.searchsorted(key_lo[order], key_hi[order], side="left")
    start = torch.arange(1, k + 1, device=lo.device)
    counts = (end - start).clamp(min=0)
    total = int(counts.sum())
    first = torch.repeat_interleave(torch.arange(k, device=lo.device), counts)
    step = torch.arange(total, device=lo.device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    a, b = order[first], order[first + 1 + step]
    # The exact test in the boxes' own coordinates (strict: touching footprints have zero overlap).
    ok = (torch.minimum(hi[a], hi[b]) > torch.maximum(lo[a], lo[b])).all(dim=1) & (labels[a] == labels[b])
    a, b = a[ok], b[ok]
    return torch.stack([torch.minimum(a, b), torch.maximum(a, b)], dim=1)


def _projected_overlap_bound(bi: torch.Tensor, bj: torch.Tensor) -> torch.Tensor:
    """Upper bound of the BEV intersection area of rotated box pairs, from box ``bi``'s own axes.

    The intersection lies inside ``bi`` and inside the slabs that ``bj`` projects onto ``bi``'s two axes, so its area
    is at most the product of the two interval overlaps (the separating axis test: 0 when an axis separates them).
    """
    d = bj[:, :2] - bi[:, :2]
    c, s = torch.cos(bi[:, 6]), torch.sin(bi[:, 6])
    u, v = c * d[:, 0] + s * d[:, 1], c * d[:, 1] - s * d[:, 0]  # bj's centre in bi's frame
    dt = bj[:, 6] - bi[:, 6]
    ac, as_ = torch.cos(dt).abs(), torch.sin(dt).abs()
    hx = 0.5 * (ac * bj[:, 3] + as_ * bj[:, 4])  # half extents of bj's projections onto bi's axes
    hy = 0.5 * (as_ * bj[:, 3] + ac * bj[:, 4])
    ox = (torch.minimum(0.5 * bi[:, 3], u + hx) - torch.maximum(-0.5 * bi[:, 3], u - hx)).clamp(min=0)
    oy = (torch.minimum(0.5 * bi[:, 4], v + hy) - torch.maximum(-0.5 * bi[:, 4], v - hy)).clamp(min=0)
    return ox * oy


def _suppression_pairs(
    boxes: torch.Tensor, labels: torch.Tensor, iou_threshold: float, rotated: bool, chunk: int = 1 << 16
) -> torch.Tensor:
    """Pairs ``(i, j)``, ``i < j`` in score order, of the same class with BEV IoU above the threshold, sorted."""
    k = boxes.shape[0]
    if k < 2:
        return torch.zeros((0, 2), dtype=torch.long, device=boxes.device)
    if rotated:
        mm = boxes_to_minmax(boxes)
        lo, hi = mm[:, 0:2], mm[:, 3:5]
    else:  # yaw forced to 0, as nms3d_normal
        lo, hi = boxes[:, 0:2] - 0.5 * boxes[:, 3:5], boxes[:, 0:2] + 0.5 * boxes[:, 3:5]
    pairs = _candidate_pairs(lo, hi, labels)
    # On the CPU the compiled IoU costs well under a microsecond a pair, less than the bounds below would save.
    compiled = rotated and native.available(boxes)
    if rotated and pairs.shape[0] and not compiled:
        # Skip pairs whose IoU provably cannot exceed the threshold, from upper bounds of the intersection: the
        # footprint overlap, either area, then the overlap of the projections onto either box's axes (tighter for
        # rotated boxes; it halves the exact evaluations at the protocol's score threshold). The slack covers the
        # rounding of the bounds, so no pair that the exact IoU would keep is ever dropped.
        slack = 1.0 + 64.0 * torch.finfo(boxes.dtype).eps
        for tighten in (False, True):
            i, j = pairs[:, 0], pairs[:, 1]
            ai, aj = boxes[i, 3] * boxes[i, 4], boxes[j, 3] * boxes[j, 4]
            if tighten:
                bound = torch.minimum(
                    _projected_overlap_bound(boxes[i], boxes[j]), _projected_overlap_bound(boxes[j], boxes[i])
                )
            else:
                ov = (torch.minimum(hi[i], hi[j]) - torch.maximum(lo[i], lo[j])).prod(dim=1)
                bound = torch.minimum(ov, torch.minimum(ai, aj))
            pairs = pairs[bound * slack > iou_threshold * (ai + aj - bound)]
    keep = []
    for c0 in range(0, pairs.shape[0], chunk):
        p = pairs[c0 : c0 + chunk]
        bi, bj = boxes[p[:, 0]], boxes[p[:, 1]]
        if compiled:
            iou = native.rotated_iou_bev(bi, bj)
        elif rotated:
            iou = rotated_iou_paired_diff(bi, bj, bev=True)
        else:
            iou = axis_aligned_iou_paired_diff(bi, bj, bev=True)
        keep.append(p[iou > iou_threshold])
    if not keep:
        return pairs
    pairs = torch.cat(keep)
    return pairs[torch.argsort(pairs[:, 0] * k + pairs[:, 1])]


def _greedy(num: int, pairs: np.ndarray) -> np.ndarray:
    """Greedy pass: walk the suppressing boxes in score order; a box suppresses others only if itself kept.

    ``pairs`` is sorted by its first column, so when box ``i`` is reached every pair ``(h, i)`` with ``h < i`` has
    already been applied and ``i``'s fate is final.
    """
    suppressed = np.zeros(num, dtype=bool)
    if pairs.shape[0] == 0:
        return ~suppressed
    firsts, starts = np.unique(pairs[:, 0], return_index=True)
    ends = np.append(starts[1:], pairs.shape[0])
    second = pairs[:, 1]
    for i, a, b in zip(firsts.tolist(), starts.tolist(), ends.tolist()):
        if not suppressed[i]:
            suppressed[second[a:b]] = True
    return ~suppressed


@torch.no_grad()
def nms_bev(
    boxes: Any,
    scores: Any,
    labels: Any = None,
    *,
    iou_threshold: float = 0.5,
    score_threshold: Optional[float] = None,
    pre_max: Optional[int] = None,
    max_out: Optional[int] = None,
    rotated: bool = True,
) -> ArrayLike:
    """Per-class greedy NMS on bird's-eye-view IoU.

    Order of operations: drop scores ``<= score_threshold``; sort by score, descending (ties by index); keep the
    first ``pre_max``; greedy suppression within each class (IoU strictly above ``iou_threshold``); keep the first
    ``max_out``.

    Args:
        boxes: ``(N, 7)`` boxes, or ``(N, 6)`` when ``rotated`` is False.
        scores: ``(N,)`` scores.
        labels: ``(N,)`` integer class labels; ``None`` treats all boxes as one class.
        iou_threshold: suppression threshold in [0, 1].
        score_threshold: keep only scores strictly above it (TR3D: 0.01); ``None`` keeps all.
        pre_max: at most this many top-scoring boxes (over all classes) enter the suppression; ``None``: all.
        max_out: at most this many boxes are returned; ``None``: all (TR3D has no cap).
        rotated: rotated BEV IoU on ``(x, y, dx, dy, yaw)``; False uses axis-aligned BEV IoU with yaw ignored.

    Returns:
        ``(K,)`` int64 indices into ``boxes`` of the kept boxes, by descending score; a tensor on the boxes' device,
        or numpy when ``boxes`` is numpy.

    Raises:
        ValueError: bad boxes, mismatched ``scores``/``labels`` lengths, NaN scores, or out-of-range arguments.
    """
    _check_inputs(boxes, scores, labels, iou_threshold, pre_max, max_out, rotated)
    b, was_numpy = as_tensor(boxes)
    b = with_yaw(b)
    s, _ = as_tensor(scores)
    s = s.to(b.device)
    lab = torch.zeros(b.shape[0], dtype=torch.long, device=b.device) if labels is None else torch.as_tensor(labels)
    lab = lab.to(b.device, torch.long)

    idx = torch.arange(b.shape[0], device=b.device)
    if score_threshold is not None:
        idx = idx[s > score_threshold]
    idx = idx[torch.argsort(s[idx], descending=True, stable=True)]
    if pre_max is not None:
        idx = idx[:pre_max]
    if rotated and idx.shape[0] <= _COMPILED_NMS_MAX and native.available(b):
        keep_mask = native.nms_rotated_bev(b[idx], lab[idx], float(iou_threshold))
    else:
        pairs = _suppression_pairs(b[idx], lab[idx], float(iou_threshold), rotated)
        keep_mask = torch.from_numpy(_greedy(idx.shape[0], pairs.cpu().numpy())).to(b.device)
    keep = idx[keep_mask]
    if max_out is not None:
        keep = keep[:max_out]
    return keep.cpu().numpy() if was_numpy else keep
