"""Exact IoU of 3D boxes: axis-aligned and yaw-rotated, bird's-eye view and 3D; pairwise (every box of one set with
every box of the other, ``(N, M)``) or paired (``boxes1[i]`` with ``boxes2[i]``, ``(N,)``; ``paired=True``).

Boxes follow ``sr3d_core.boxes``: ``(x, y, z, dx, dy, dz, yaw)`` with the centre of gravity and full extents.

The rotated overlap is the area of the intersection of the two bird's-eye-view rectangles (both counter-clockwise
quadrilaterals) times the overlap of the z ranges. The area comes from Sutherland–Hodgman clipping of one
quadrilateral by the four half-planes of the other, batched over pairs with fixed-size vertex slots and a validity
mask, then the shoelace formula. It is exact up to rounding and differentiable almost everywhere:

* vertices within a few ulps of a clipping line are snapped onto it, so near-parallel and coincident edges neither
  create spurious near-duplicate vertices nor divide by a vanishing denominator;
* every division has a guarded denominator and no ``sqrt`` or ``atan2`` is evaluated, so gradients stay finite for
  identical, touching, nested and disjoint boxes.

Pairwise functions skip pairs whose axis-aligned footprints do not overlap (their IoU is exactly 0) and process the
rest in chunks, so ``1000 x 1000`` rotated boxes stay in bounded memory. All code is device agnostic.
"""

from __future__ import annotations

from typing import Any

import torch

from sr3d_core.boxes import ArrayLike, as_tensor, bev_corners, boxes_to_minmax, check_boxes, to_kind, with_yaw
from sr3d_core.geometry import native

#: Pairs of boxes clipped at once; bounds the peak memory of pairwise rotated IoU (about 1 kB per pair).
DEFAULT_CHUNK_PAIRS = 1 << 16


def _cross(ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
    return ax * by - ay * bx


def _compact(points: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move valid vertices to the front (order kept) and fill the rest with copies of the first vertex.

    Padding with the first vertex makes the padded slots contribute nothing to the shoelace sum and create no
    crossing when clipped, so a fixed-size cyclic polygon stays exact. The slot count shrinks to the largest
    number of valid vertices in the batch, so no vertex is ever dropped.
    """
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)
    cap = max(int(mask.sum(dim=1).max()), 1) if mask.shape[0] else 1
    order = order[:, :cap]
    mask = torch.gather(mask, 1, order)
    points = torch.gather(points, 1, order[..., None].expand(-1, -1, 2))
    points = torch.where(mask[..., None], points, points[:, :1])
    return points, mask


def convex_intersection_area(poly1: torch.Tensor, poly2: torch.Tensor) -> torch.Tensor:
    """Area of the intersection of convex polygons, pair by pair (differentiable).

    Both polygons must be counter-clockwise and convex (degenerate ones, e.g. zero width, are fine). On the CPU,
    with the compiled helpers built and up to 8 corners each, the clipping and its gradient run compiled
    (`native.convex_clip`, in float64, the same steps); otherwise the batched PyTorch clipping below.

    Args:
        poly1: ``(K, n, 2)`` polygons that get clipped.
        poly2: ``(K, m, 2)`` clipping polygons.

    Returns:
        ``(K,)`` intersection areas, never larger than either polygon's area.
    """
    k = poly1.shape[0]
    if k == 0:
        return poly1.new_zeros((0,))
    bound = torch.minimum(polygon_area(poly1), polygon_area(poly2)).clamp(min=0)
    if poly1.shape[1] <= 8 and poly2.shape[1] <= 8 and native.available(poly1, poly2):
        eps = torch.finfo(poly1.dtype).eps
        clipped = native.convex_clip(poly1, poly2, eps)
        if clipped is not None:
            return torch.minimum(_ConvexClip.apply(poly1, poly2, clipped[0].to(poly1.dtype), eps), bound)
    # A local origin per pair keeps the cross products well conditioned far from the world origin.
    origin = 0.5 * (poly1.mean(dim=1, keepdim=True) + poly2.mean(dim=1, keepdim=True))
    pts, clip = poly1 - origin, poly2 - origin
    eps = torch.finfo(pts.dtype).eps
    with torch.no_grad():
        # Rounding error scale of a cross product: |edge| * coordinate scale; snapping tolerance is a few ulps of it.
        scale = torch.maximum(pts.abs().amax(dim=(1, 2)), clip.abs().amax(dim=(1, 2)))  # (K,)
    mask = torch.ones(pts.shape[:2], dtype=torch.bool, device=pts.device)
    m = clip.shape[1]
    for e in range(m):
        q0, q1 = clip[:, e], clip[:, (e + 1) % m]
        edge = q1 - q0  # (K, 2)
        rel = pts - q0[:, None]
        d = _cross(edge[:, None, 0], edge[:, None, 1], rel[..., 0], rel[..., 1])  # > 0: left of edge = inside
        with torch.no_grad():
            tol = 32.0 * eps * scale * (edge.abs().sum(dim=1) + eps * scale)
        d = torch.where(d.abs() <= tol[:, None], torch.zeros_like(d), d)
        # Edge s -> p for every slot p (s is the previous slot, cyclically).
        s, ds = pts.roll(1, dims=1), d.roll(1, dims=1)
        nonempty = mask.any(dim=1, keepdim=True)
        crossing = nonempty & (((ds > 0) & (d < 0)) | ((ds < 0) & (d > 0)))
        den = torch.where(crossing, ds - d, torch.ones_like(d))  # |ds| + |d| > 2 tol where used
        t = torch.where(crossing, ds / den, torch.zeros_like(d))
        inter = s + t[..., None] * (pts - s)
        keep = mask & (d >= 0)
        # Sutherland–Hodgman output per slot: [intersection of s->p, p itself].
        out = torch.stack([inter, pts], dim=2).reshape(k, -1, 2)
        out_mask = torch.stack([crossing, keep], dim=2).reshape(k, -1)
        pts, mask = _compact(out, out_mask)
    x, y = pts[..., 0], pts[..., 1]
    area = 0.5 * _cross(x, y, x.roll(-1, dims=1), y.roll(-1, dims=1)).sum(dim=1)
    area = torch.where(mask.any(dim=1), area, torch.zeros_like(area)).clamp(min=0)
    return torch.minimum(area, bound)


class _ConvexClip(torch.autograd.Function):
    """The clipped area from the compiled kernel (given, computed before), and its gradient by the kernel walking
    the clipping back: ~8x the PyTorch polygon code, forward and backward (3,000 pairs)."""

    @staticmethod
    def forward(ctx, poly1: torch.Tensor, poly2: torch.Tensor, area: torch.Tensor, eps: float) -> torch.Tensor:
        ctx.save_for_backward(poly1, poly2)
        ctx.eps = eps
        return area

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        poly1, poly2 = ctx.saved_tensors
        _, g1, g2 = native.convex_clip(poly1, poly2, ctx.eps, grad)
        return g1.to(poly1.dtype), g2.to(poly2.dtype), None, None


def polygon_area(poly: torch.Tensor) -> torch.Tensor:
    """Signed shoelace area of ``(K, n, 2)`` polygons (positive when counter-clockwise)."""
    x, y = poly[..., 0], poly[..., 1]
    return 0.5 * _cross(x, y, x.roll(-1, dims=-1), y.roll(-1, dims=-1)).sum(dim=-1)


def _interval_overlap(c1: torch.Tensor, s1: torch.Tensor, c2: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """Overlap length of intervals given by centres and full sizes, computed about their mid-point.

    Working with the half offset ``(c1 - c2) / 2`` instead of the world end points keeps millimetre boxes
    precise in float32 far from the origin.
    """
    d = 0.5 * (c1 - c2)
    h1, h2 = 0.5 * s1, 0.5 * s2
    return (torch.minimum(d + h1, h2 - d) - torch.maximum(d - h1, -d - h2)).clamp(min=0)


def _z_overlap(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    return _interval_overlap(b1[..., 2], b1[..., 5], b2[..., 2], b2[..., 5])


def _rotated_overlap_paired(b1: torch.Tensor, b2: torch.Tensor, bev: bool) -> torch.Tensor:
    """Intersection area (``bev``) or volume of ``K`` box pairs ``(K, 7)`` (differentiable)."""
    # Corners relative to the pair's mid-centre: world-frame corners would lose the small boxes' precision.
    mid = 0.5 * (b1[:, 0:2] + b2[:, 0:2])
    local1 = torch.cat([b1[:, 0:2] - mid, b1[:, 2:]], dim=1)
    local2 = torch.cat([b2[:, 0:2] - mid, b2[:, 2:]], dim=1)
    area = convex_intersection_area(bev_corners(local1), bev_corners(local2))
    return area if bev else area * _z_overlap(b1, b2)


def _axis_aligned_overlap(b1: torch.Tensor, b2: torch.Tensor, dims: int) -> torch.Tensor:
    """Overlap of the first ``dims`` axes of broadcastable boxes, yaw ignored (differentiable)."""
    return _interval_overlap(b1[..., :dims], b1[..., 3 : 3 + dims], b2[..., :dims], b2[..., 3 : 3 + dims]).prod(-1)


def _measure(b: torch.Tensor, dims: int) -> torch.Tensor:
    return b[..., 3 : 3 + dims].prod(dim=-1)


def _iou_from_overlap(inter: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor, eps: float) -> torch.Tensor:
    """``inter / max(union, eps)``; with ``eps = 0`` an exact ratio, and 0 where the union is empty."""
    union = m1 + m2 - inter
    if eps > 0:
        return inter / union.clamp(min=eps)
    positive = union > 0
    return torch.where(positive, inter / torch.where(positive, union, torch.ones_like(union)), torch.zeros_like(union))


def rotated_iou_paired_diff(
    boxes1: torch.Tensor, boxes2: torch.Tensor, *, bev: bool = False, eps: float = 0.0
) -> torch.Tensor:
    """Differentiable rotated IoU of box pairs (``boxes1[i]`` with ``boxes2[i]``), with no input checks (for losses
    and assigners).

    Args:
        boxes1: ``(K, 7)`` boxes.
        boxes2: ``(K, 7)`` boxes.
        bev: bird's-eye-view IoU (z ignored) instead of 3D IoU.
        eps: lower bound of the union; 0 (default) is exact, with 0 for an empty union.

    Returns:
        ``(K,)`` IoU in [0, 1].
    """
    dims = 2 if bev else 3
    inter = _rotated_overlap_paired(boxes1, boxes2, bev)
    return _iou_from_overlap(inter, _measure(boxes1, dims), _measure(boxes2, dims), eps)


def rotated_iou_paired_nograd(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``rotated_iou_paired_diff(boxes1, boxes2)`` (3D, exact) without a gradient: on the CPU by the compiled
    bird's-eye-view IoU in float64 (the BEV intersection is ``iou · (a1 + a2) / (1 + iou)``, times the z overlap),
    several times faster than the differentiable polygon clipping; elsewhere that clipping.

    Args:
        boxes1: ``(K, 7)`` boxes.
        boxes2: ``(K, 7)`` boxes.

    Returns:
        ``(K,)`` IoU in [0, 1], in ``boxes1``'s dtype.
    """

    if not native.available(boxes1, boxes2):
        with torch.no_grad():
            return rotated_iou_paired_diff(boxes1, boxes2)
    a, b = boxes1.detach().double(), boxes2.detach().double()
    iou_bev = native.rotated_iou_bev(a, b)
    area1, area2 = a[:, 3] * a[:, 4], b[:, 3] * b[:, 4]
    inter = iou_bev * (area1 + area2) / (1.0 + iou_bev) * _z_overlap(a, b)
    return _iou_from_overlap(inter, area1 * a[:, 5], area2 * b[:, 5], 0.0).to(boxes1.dtype)


def axis_aligned_iou_paired_diff(
    boxes1: torch.Tensor, boxes2: torch.Tensor, *, bev: bool = False, eps: float = 0.0
) -> torch.Tensor:
    """Differentiable axis-aligned IoU of box pairs (``boxes1[i]`` with ``boxes2[i]``; yaw ignored), with no input
    checks.

    Args:
        boxes1: ``(K, 6)`` or ``(K, 7)`` boxes.
        boxes2: ``(K, 6)`` or ``(K, 7)`` boxes.
        bev: bird's-eye-view IoU (z ignored) instead of 3D IoU.
        eps: lower bound of the union; 0 (default) is exact, with 0 for an empty union.

    Returns:
        ``(K,)`` IoU in [0, 1].
    """
    dims = 2 if bev else 3
    inter = _axis_aligned_overlap(boxes1, boxes2, dims)
    return _iou_from_overlap(inter, _measure(boxes1, dims), _measure(boxes2, dims), eps)


def _prepare(boxes1: Any, boxes2: Any, paired: bool, rotated: bool) -> tuple[torch.Tensor, torch.Tensor, bool]:
    check_boxes(boxes1, "boxes1", allow_no_yaw=not rotated)
    check_boxes(boxes2, "boxes2", allow_no_yaw=not rotated)
    if paired and boxes1.shape[0] != boxes2.shape[0]:
        raise ValueError(
            f"boxes1 and boxes2 must have the same length when paired=True, got {boxes1.shape[0]} and "
            f"{boxes2.shape[0]}"
        )
    t1, np1 = as_tensor(boxes1)
    t2, _ = as_tensor(boxes2)
    if t1.device != t2.device:
        raise ValueError(f"boxes1 is on {t1.device} but boxes2 is on {t2.device}")
    dtype = torch.promote_types(t1.dtype, t2.dtype)
    return with_yaw(t1.to(dtype)), with_yaw(t2.to(t1.device, dtype)), np1


def _pairwise_rotated(b1: torch.Tensor, b2: torch.Tensor, bev: bool, eps: float, chunk: int) -> torch.Tensor:
    n, m = b1.shape[0], b2.shape[0]
    out = b1.new_zeros((n, m))
    if n == 0 or m == 0:
        return out
    dims = 2 if bev else 3
    mm1, mm2 = boxes_to_minmax(b1), boxes_to_minmax(b2)
    # Candidates: pairs whose enclosing axis-aligned boxes overlap with positive measure; all others have IoU 0.
    rows_per_chunk = max(1, chunk // m)
    pair_i, pair_j = [], []
    for r0 in range(0, n, rows_per_chunk):
        a = mm1[r0 : r0 + rows_per_chunk, None]
        lo = torch.maximum(a[..., :dims], mm2[None, :, :dims])
        hi = torch.minimum(a[..., 3 : 3 + dims], mm2[None, :, 3 : 3 + dims])
        i, j = torch.nonzero((hi > lo).all(dim=-1), as_tuple=True)
        pair_i.append(i + r0)
        pair_j.append(j)
    ii, jj = torch.cat(pair_i), torch.cat(pair_j)
    vals = []
    for c0 in range(0, ii.numel(), chunk):
        bi, bj = b1[ii[c0 : c0 + chunk]], b2[jj[c0 : c0 + chunk]]
        inter = _rotated_overlap_paired(bi, bj, bev)
        vals.append(_iou_from_overlap(inter, _measure(bi, dims), _measure(bj, dims), eps))
    if vals:
        out = out.index_put((ii, jj), torch.cat(vals))
    return out


def _pairwise_axis_aligned(b1: torch.Tensor, b2: torch.Tensor, dims: int, eps: float, chunk: int) -> torch.Tensor:
    n, m = b1.shape[0], b2.shape[0]
    if n == 0 or m == 0:
        return b1.new_zeros((n, m))
    rows_per_chunk = max(1, (chunk * 16) // m)  # about 10x cheaper per pair than rotated clipping
    m2 = _measure(b2, dims)
    rows = []
    for r0 in range(0, n, rows_per_chunk):
        a = b1[r0 : r0 + rows_per_chunk]
        inter = _axis_aligned_overlap(a[:, None], b2[None], dims)
        rows.append(_iou_from_overlap(inter, _measure(a, dims)[:, None], m2[None], eps))
    return torch.cat(rows, dim=0)


def _iou(boxes1: Any, boxes2: Any, paired: bool, rotated: bool, bev: bool, eps: float, chunk_pairs: int) -> ArrayLike:
    b1, b2, was_numpy = _prepare(boxes1, boxes2, paired, rotated)
    dims = 2 if bev else 3
    if rotated:
        if paired:
            out = rotated_iou_paired_diff(b1, b2, bev=bev, eps=eps)
        else:
            out = _pairwise_rotated(b1, b2, bev, eps, chunk_pairs)
    elif paired:
        out = axis_aligned_iou_paired_diff(b1, b2, bev=bev, eps=eps)
    else:
        out = _pairwise_axis_aligned(b1, b2, dims, eps, chunk_pairs)
    return to_kind(out, was_numpy)


def rotated_iou_3d(
    boxes1: Any, boxes2: Any, paired: bool = False, eps: float = 0.0, chunk_pairs: int = DEFAULT_CHUNK_PAIRS
) -> ArrayLike:
    """3D IoU of yaw-rotated boxes: BEV polygon intersection times z overlap, over the union of volumes.

    Args:
        boxes1: ``(N, 7)`` boxes (tensor or numpy).
        boxes2: ``(M, 7)`` boxes; ``M == N`` when ``paired``.
        paired: IoU of ``boxes1[i]`` with ``boxes2[i]`` (``(N,)``) instead of all pairs (``(N, M)``).
        eps: lower bound of the union; the default 0 gives the exact ratio (and 0 for an empty union), which keeps
            millimetre boxes right.
        chunk_pairs: box pairs clipped at once in the pairwise case (memory bound).

    Returns:
        ``(N, M)`` or ``(N,)`` IoU, same kind as ``boxes1``. Differentiable with respect to tensor inputs.

    Raises:
        ValueError: bad shape, NaN/inf, negative sizes, or mismatched lengths when ``paired``.
    """
    return _iou(boxes1, boxes2, paired, True, False, eps, chunk_pairs)


def rotated_bev_iou(
    boxes1: Any, boxes2: Any, paired: bool = False, eps: float = 0.0, chunk_pairs: int = DEFAULT_CHUNK_PAIRS
) -> ArrayLike:
    """Bird's-eye-view IoU of yaw-rotated boxes (z ignored); arguments as in ``rotated_iou_3d``."""
    return _iou(boxes1, boxes2, paired, True, True, eps, chunk_pairs)


def axis_aligned_iou_3d(
    boxes1: Any, boxes2: Any, paired: bool = False, eps: float = 0.0, chunk_pairs: int = DEFAULT_CHUNK_PAIRS
) -> ArrayLike:
    """3D IoU of axis-aligned boxes; yaw is ignored and six-number boxes are accepted.

    Args:
        boxes1: ``(N, 6)`` or ``(N, 7)`` boxes (tensor or numpy).
        boxes2: ``(M, 6)`` or ``(M, 7)`` boxes; ``M == N`` when ``paired``.
        paired: IoU of ``boxes1[i]`` with ``boxes2[i]`` (``(N,)``) instead of all pairs (``(N, M)``).
        eps: lower bound of the union; 0 (default) is exact, with 0 for an empty union.
        chunk_pairs: bounds the memory of the pairwise case.

    Returns:
        ``(N, M)`` or ``(N,)`` IoU, same kind as ``boxes1``.

    Raises:
        ValueError: bad shape, NaN/inf, negative sizes, or mismatched lengths when ``paired``.
    """
    return _iou(boxes1, boxes2, paired, False, False, eps, chunk_pairs)


def axis_aligned_bev_iou(
    boxes1: Any, boxes2: Any, paired: bool = False, eps: float = 0.0, chunk_pairs: int = DEFAULT_CHUNK_PAIRS
) -> ArrayLike:
    """Bird's-eye-view IoU of axis-aligned boxes (yaw and z ignored); arguments as in ``axis_aligned_iou_3d``."""
    return _iou(boxes1, boxes2, paired, False, True, eps, chunk_pairs)


def iou_3d(boxes1: Any, boxes2: Any, paired: bool = False, rotated: bool = True) -> ArrayLike:
    """3D IoU, rotated (``rotated_iou_3d``) or axis-aligned with yaw ignored (``axis_aligned_iou_3d``)."""
    fn = rotated_iou_3d if rotated else axis_aligned_iou_3d
    return fn(boxes1, boxes2, paired=paired)


def bev_iou(boxes1: Any, boxes2: Any, paired: bool = False, rotated: bool = True) -> ArrayLike:
    """BEV IoU, rotated (``rotated_bev_iou``) or axis-aligned with yaw ignored (``axis_aligned_bev_iou``)."""
    fn = rotated_bev_iou if rotated else axis_aligned_bev_iou
    return fn(boxes1, boxes2, paired=paired)
