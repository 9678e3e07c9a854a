"""Bindings of the box geometry's compiled library (``csrc/``, built by ``setup.py`` into ``libsr3d_geometry.so``):
the rotated bird's-eye-view IoU, its greedy NMS, and the clipped intersection area of convex polygons with its
gradient. Each has a PyTorch twin in ``iou.py`` / ``nms.py`` (equal up to float rounding), used when this library
is missing, stale or switched off (``SR3D_NATIVE=0``; see ``sr3d_core.sparse.extension``).

Every function validates its arguments (dtype, device, contiguity, sizes) before calling into C.
"""

from __future__ import annotations

import ctypes
from typing import Optional

import torch

from sr3d_core.sparse import extension
from sr3d_core.sparse.extension import check_tensor, require, set_enabled, threads

__all__ = ["available", "set_enabled", "rotated_iou_bev", "convex_clip", "nms_rotated_bev"]

_P, _I64, _INT, _DBL = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
LIBRARY = extension.CompiledLibrary(
    "geometry",
    {
        "sr3d_rotated_iou_bev": ([_P, _P, _I64, _INT, _P], _INT),
        "sr3d_nms_rotated_bev": ([_P, _P, _I64, _DBL, _INT, _INT, _P], _I64),
        "sr3d_set_parallel_scale": ([_DBL], _DBL),
        "sr3d_convex_clip": ([_P, _I64, _P, _I64, _I64, _DBL, _INT, _P, _P, _P, _P], _INT),
        "sr3d_isa": ([], _INT),
    },
)


_library = LIBRARY.loaded
available = LIBRARY.usable  # (*tensors) -> bool: enabled, built, current, and the tensors on the CPU


def _boxes(fn: str, arg: str, boxes: torch.Tensor) -> torch.Tensor:
    """``boxes`` as contiguous float64 ``(K, 7)`` (the dtype the C code reads), checked first."""
    if not isinstance(boxes, torch.Tensor) or not boxes.dtype.is_floating_point:
        raise TypeError(
            f"{fn}: {arg} must be a floating-point torch.Tensor, got "
            f"{getattr(boxes, 'dtype', type(boxes).__name__)}"
        )
    require(fn, boxes.is_cpu, lambda: f"{arg} must be on the CPU, got {boxes.device}")
    require(fn, boxes.dim() == 2 and boxes.shape[1] == 7, lambda: f"{arg} must be (K, 7), got {tuple(boxes.shape)}")
    out = boxes.detach().to(torch.float64).contiguous()
    check_tensor(fn, arg, out, torch.float64, 2)
    return out


def rotated_iou_bev(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Bird's-eye-view IoU of rotated box pairs, as ``rotated_iou_paired_diff(..., bev=True)`` but without
    a gradient, computed pair by pair in float64.

    Args:
        boxes1: ``(K, 7)`` boxes ``(x, y, z, dx, dy, dz, yaw)`` on the CPU.
        boxes2: ``(K, 7)`` boxes.

    Returns:
        ``(K,)`` IoU in [0, 1], in ``boxes1``'s dtype.
    """
    fn = "rotated_iou_bev"
    a, b = _boxes(fn, "boxes1", boxes1), _boxes(fn, "boxes2", boxes2)
    require(fn, a.shape[0] == b.shape[0], lambda: f"{a.shape[0]} boxes against {b.shape[0]}")
    out = torch.empty(a.shape[0], dtype=torch.float64)
    if a.shape[0]:
        _library().sr3d_rotated_iou_bev(a.data_ptr(), b.data_ptr(), a.shape[0], threads(), out.data_ptr())
    return out.to(boxes1.dtype)


def convex_clip(
    poly1: torch.Tensor, poly2: torch.Tensor, eps: float, grad: Optional[torch.Tensor] = None
) -> Optional[tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]]:
    """Intersection areas of convex polygon pairs as ``geometry.iou.convex_intersection_area`` clips them (before
    its final bound by either polygon's area), in float64, and with ``grad`` their gradient.

    Args:
        poly1: ``(K, n, 2)`` counter-clockwise polygons that get clipped (n <= 8).
        poly2: ``(K, m, 2)`` clipping polygons (m <= 8).
        eps: the machine epsilon of the caller's float type (its snapping tolerance).
        grad: ``(K,)`` gradient of the areas, or None for the areas only.

    Returns:
        ``(area (K,), grad of poly1, grad of poly2)`` (float64; the gradients None without ``grad``), or None when a
        clipped polygon outgrows the kernel's vertex slots (not convex enough; the caller's PyTorch path then).
    """
    fn = "convex_clip"
    for arg, p in (("poly1", poly1), ("poly2", poly2)):
        if not isinstance(p, torch.Tensor) or not p.dtype.is_floating_point:
            raise TypeError(f"{fn}: {arg} must be a floating-point torch.Tensor")
        require(
            fn,
            p.is_cpu and p.dim() == 3 and p.shape[2] == 2 and 1 <= p.shape[1] <= 8,
            lambda: f"{arg} must be a CPU (K, 1..8, 2) tensor, got {tuple(p.shape)} on {p.device}",
        )
    require(fn, poly1.shape[0] == poly2.shape[0], lambda: f"{poly1.shape[0]} polygons against {poly2.shape[0]}")
    a = poly1.detach().to(torch.float64).contiguous()
    b = poly2.detach().to(torch.float64).contiguous()
    k, n, m = a.shape[0], a.shape[1], b.shape[1]
    g = None
    if grad is not None:
        require(
            fn,
            isinstance(grad, torch.Tensor) and grad.shape == (k,) and grad.is_cpu,
            lambda: f"grad must be a CPU ({k},) tensor",
        )
        g = grad.detach().to(torch.float64).contiguous()
    area = torch.empty(k, dtype=torch.float64)
    g1 = torch.empty_like(a) if g is not None else None
    g2 = torch.empty_like(b) if g is not None else None
    rc = _library().sr3d_convex_clip(
        a.data_ptr(),
        n,
        b.data_ptr(),
        m,
        k,
        float(eps),
        threads(),
        area.data_ptr(),
        None if g is None else g.data_ptr(),
        None if g1 is None else g1.data_ptr(),
        None if g2 is None else g2.data_ptr(),
    )
    if rc == 2:
        return None
    if rc:
        raise ValueError(f"{fn}: polygons of {n} and {m} corners (at most 8 each)")
    return area, g1, g2


def nms_rotated_bev(boxes: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy per-class NMS on `rotated_iou_bev`, boxes in descending score order: a box is suppressed by the first
    kept box before it of its label with IoU above the threshold (the IoU compared in ``boxes``' dtype).

    Args:
        boxes: ``(K, 7)`` float CPU boxes ``(x, y, z, dx, dy, dz, yaw)``, best first.
        labels: ``(K,)`` integer labels.
        iou_threshold: suppression threshold.

    Returns:
        ``(K,)`` bool, True for the kept boxes.
    """
    fn = "nms_rotated_bev"
    b = _boxes(fn, "boxes", boxes)
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(
            f"{fn}: labels must be an integer torch.Tensor, got " f"{getattr(labels, 'dtype', type(labels).__name__)}"
        )
    require(
        fn,
        labels.is_cpu and labels.shape == (b.shape[0],),
        lambda: f"labels must be a CPU ({b.shape[0]},) tensor, got {tuple(labels.shape)} on {labels.device}",
    )
    lab = labels.to(torch.int64).contiguous()
    keep = torch.empty(b.shape[0], dtype=torch.uint8)
    if (
        _library().sr3d_nms_rotated_bev(
            b.data_ptr(),
            lab.data_ptr(),
            b.shape[0],
            float(iou_threshold),
            int(boxes.dtype != torch.float64),
            threads(),
            keep.data_ptr(),
        )
        < 0
    ):
        raise MemoryError(f"{fn}: out of memory")
    return keep.bool()
