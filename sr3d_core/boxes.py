"""The box convention of SR3D and the conversions built on it.

A box is seven numbers ``(x, y, z, dx, dy, dz, yaw)``:

* ``(x, y, z)`` is the centre of gravity (not the bottom centre), in metres;
* ``(dx, dy, dz)`` are the full extents; ``dx`` lies along the heading;
* ``yaw`` is the rotation about +z, counted from +x toward +y (counter-clockwise seen from above).

This is the ROS ``vision_msgs/BoundingBox3D`` convention (centre pose + full size), so turning a box into a
message is a yaw → quaternion conversion and nothing else. Axis-aligned datasets use ``yaw = 0``; where a function
says so it also accepts six-number boxes ``(x, y, z, dx, dy, dz)`` and reads them as ``yaw = 0``.

Corner order (``box_corners``), in box-local coordinates (``+x'`` = heading)::

            z'                 seen from above (z' up)
            |                      y'
      7-----|-----6                ^
     /|     |    /|            3 -----2
    4-----------5 |            |  |   |
    | 3---------|-2            |  +--->x'
    |/          |/             0 -----1
    0-----------1

Indices 0-3 are the bottom face (``z - dz/2``), counter-clockwise seen from above, starting at local
``(-dx/2, -dy/2)``; index ``i + 4`` lies straight above index ``i``. ``bev_corners`` returns indices 0-3 in x/y,
so every bird's-eye-view polygon is counter-clockwise, which the clipping in ``sr3d_core.geometry`` relies on.

Every function takes a ``torch.Tensor`` or a ``numpy.ndarray`` and returns the same kind (same dtype and device for
tensors); the computation is done in torch. Empty inputs give empty outputs.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import numpy as np
import torch

ArrayLike = Union[torch.Tensor, np.ndarray]

# Local corner signs in units of the half extents, in the order documented above.
_CORNER_SIGNS = (
    (-1.0, -1.0, -1.0),
    (1.0, -1.0, -1.0),
    (1.0, 1.0, -1.0),
    (-1.0, 1.0, -1.0),
    (-1.0, -1.0, 1.0),
    (1.0, -1.0, 1.0),
    (1.0, 1.0, 1.0),
    (-1.0, 1.0, 1.0),
)

#: The 12 edges of a box as pairs of corner indices (bottom ring, top ring, verticals), e.g. for a LINE_LIST marker.
BOX_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 0),
    (4, 5), (5, 6), (6, 7), (7, 4),
    (0, 4), (1, 5), (2, 6), (3, 7),
)  # fmt: skip


def as_tensor(x: Any) -> tuple[torch.Tensor, bool]:
    """Return ``x`` as a tensor and whether it has to go back to numpy.

    Integer inputs become the default float dtype, since every quantity here is a length or an angle.

    Args:
        x: a tensor, a numpy array or anything ``numpy.asarray`` accepts.

    Returns:
        The tensor (shared memory where possible) and ``True`` when ``x`` was not a tensor.
    """
    if isinstance(x, torch.Tensor):
        t, was_numpy = x, False
    else:
        t, was_numpy = torch.as_tensor(np.asarray(x)), True
    if not (t.is_floating_point()):
        t = t.to(torch.get_default_dtype())
    return t, was_numpy


def to_kind(t: torch.Tensor, was_numpy: bool) -> ArrayLike:
    """Return ``t`` as numpy when the input was numpy, else unchanged."""
    return t.detach().cpu().numpy() if was_numpy else t


def _apply(fn: Callable[[torch.Tensor], torch.Tensor], x: ArrayLike) -> ArrayLike:
    t, was_numpy = as_tensor(x)
    return to_kind(fn(t), was_numpy)


def with_yaw(boxes: torch.Tensor) -> torch.Tensor:
    """Append ``yaw = 0`` to six-number boxes; seven-number boxes are returned unchanged.

    Args:
        boxes: ``(..., 6)`` or ``(..., 7)`` tensor.

    Returns:
        ``(..., 7)`` tensor.
    """
    if boxes.shape[-1] == 7:
        return boxes
    if boxes.shape[-1] == 6:
        return torch.cat([boxes, boxes.new_zeros(boxes.shape[:-1] + (1,))], dim=-1)
    raise ValueError(f"boxes must have 6 or 7 numbers in the last dimension, got shape {tuple(boxes.shape)}")


def check_boxes(boxes: Any, name: str = "boxes", *, allow_no_yaw: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``boxes`` is a valid ``(N, 7)`` box array.

    Valid means: two dimensions, 7 columns (or 6 with ``allow_no_yaw``), floating point, every value finite and
    every size non-negative. ``N = 0`` is valid.

    Args:
        boxes: tensor or numpy array to check.
        name: the argument name to put in the message.
        allow_no_yaw: also accept ``(N, 6)`` axis-aligned boxes.

    Raises:
        ValueError: with ``name`` in the message, describing the first problem found.
    """
    if not isinstance(boxes, (torch.Tensor, np.ndarray)):
        raise ValueError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(boxes).__name__}")
    cols = (6, 7) if allow_no_yaw else (7,)
    want = "(N, 7) or (N, 6)" if allow_no_yaw else "(N, 7)"
    if boxes.ndim != 2 or boxes.shape[1] not in cols:
        raise ValueError(f"{name} must have shape {want}, got {tuple(boxes.shape)}")
    t, _ = as_tensor(boxes)
    if t.numel() == 0:
        return
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf values")
    if bool((t[:, 3:6] < 0).any()):
        raise ValueError(f"{name} has negative sizes (columns 3-5 must be >= 0)")


def box_corners(boxes: ArrayLike) -> ArrayLike:
    """Return the 8 corners of each box in the order given in the module docstring.

    Args:
        boxes: ``(..., 7)`` boxes, or ``(..., 6)`` read as ``yaw = 0``.

    Returns:
        ``(..., 8, 3)`` corners, same kind as ``boxes``.
    """

    def fn(b: torch.Tensor) -> torch.Tensor:
        b = with_yaw(b)
        signs = torch.tensor(_CORNER_SIGNS, dtype=b.dtype, device=b.device)  # (8, 3)
        local = signs * (0.5 * b[..., None, 3:6])  # (..., 8, 3)
        c, s = torch.cos(b[..., 6:7]), torch.sin(b[..., 6:7])  # (..., 1)
        x = c * local[..., 0] - s * local[..., 1] + b[..., 0:1]
        y = s * local[..., 0] + c * local[..., 1] + b[..., 1:2]
        z = local[..., 2] + b[..., 2:3]
        return torch.stack([x, y, z], dim=-1)

    return _apply(fn, boxes)


def bev_corners(boxes: ArrayLike) -> ArrayLike:
    """Return the bird's-eye-view footprint of each box as a counter-clockwise quadrilateral.

    Args:
        boxes: ``(..., 7)`` boxes, or ``(..., 6)`` read as ``yaw = 0``.

    Returns:
        ``(..., 4, 2)`` x/y corners, equal to ``box_corners(boxes)[..., :4, :2]``.
    """

    def fn(b: torch.Tensor) -> torch.Tensor:
        b = with_yaw(b)
        signs = torch.tensor(_CORNER_SIGNS[:4], dtype=b.dtype, device=b.device)[:, :2]  # (4, 2)
        local = signs * (0.5 * b[..., None, 3:5])
        c, s = torch.cos(b[..., 6:7]), torch.sin(b[..., 6:7])
        x = c * local[..., 0] - s * local[..., 1] + b[..., 0:1]
        y = s * local[..., 0] + c * local[..., 1] + b[..., 1:2]
        return torch.stack([x, y], dim=-1)

    return _apply(fn, boxes)


def bottom_to_gravity(boxes: ArrayLike) -> ArrayLike:
    """Move the origin from the bottom-face centre to the centre of gravity (``z += dz / 2``).

    Args:
        boxes: ``(..., 7)`` or ``(..., 6)`` boxes whose ``z`` is the bottom-face centre.

    Returns:
        The same boxes with ``z`` at the centre of gravity.
    """

    def fn(b: torch.Tensor) -> torch.Tensor:
        out = b.clone()
        out[..., 2] = b[..., 2] + 0.5 * b[..., 5]
        return out

    return _apply(fn, boxes)


def gravity_to_bottom(boxes: ArrayLike) -> ArrayLike:
    """Move the origin from the centre of gravity to the bottom-face centre (``z -= dz / 2``).

    Args:
        boxes: ``(..., 7)`` or ``(..., 6)`` boxes whose ``z`` is the centre of gravity.

    Returns:
        The same boxes with ``z`` at the bottom-face centre.
    """

    def fn(b: torch.Tensor) -> torch.Tensor:
        out = b.clone()
        out[..., 2] = b[..., 2] - 0.5 * b[..., 5]
        return out

    return _apply(fn, boxes)


def boxes_to_minmax(boxes: ArrayLike) -> ArrayLike:
    """Return the world-axis-aligned box enclosing each (rotated) box as min/max corners.

    Uses the closed form of the rotated half extents, ``|cos|·dx/2 + |sin|·dy/2`` along x and
    ``|sin|·dx/2 + |cos|·dy/2`` along y, which equals the min/max over the 8 corners.

    Args:
        boxes: ``(..., 7)`` boxes, or ``(..., 6)`` read as ``yaw = 0``.

    Returns:
        ``(..., 6)`` as ``(x_min, y_min, z_min, x_max, y_max, z_max)``.
    """

    def fn(b: torch.Tensor) -> torch.Tensor:
        b = with_yaw(b)
        c, s = torch.cos(b[..., 6]).abs(), torch.sin(b[..., 6]).abs()
        hx = 0.5 * (c * b[..., 3] + s * b[..., 4])
        hy = 0.5 * (s * b[..., 3] + c * b[..., 4])
        half = torch.stack([hx, hy, 0.5 * b[..., 5]], dim=-1)
        return torch.cat([b[..., 0:3] - half, b[..., 0:3] + half], dim=-1)

    return _apply(fn, boxes)


def minmax_to_boxes(minmax: ArrayLike) -> ArrayLike:
    """Turn ``(x_min, y_min, z_min, x_max, y_max, z_max)`` into ``(x, y, z, dx, dy, dz, 0)`` boxes.

    Args:
        minmax: ``(..., 6)`` min/max corners.

    Returns:
        ``(..., 7)`` boxes with ``yaw = 0``.
    """

    def fn(m: torch.Tensor) -> torch.Tensor:
        lo, hi = m[..., 0:3], m[..., 3:6]
        return torch.cat([0.5 * (lo + hi), hi - lo, m.new_zeros(m.shape[:-1] + (1,))], dim=-1)

    return _apply(fn, minmax)


def enclosing_axis_aligned(boxes: ArrayLike) -> ArrayLike:
    """Return the axis-aligned (``yaw = 0``) box enclosing each rotated box.

    This is what the augmentation of axis-aligned datasets does after a rotation about z.

    Args:
        boxes: ``(..., 7)`` boxes.

    Returns:
        ``(..., 7)`` boxes with the same centre and ``yaw = 0``.
    """
    return minmax_to_boxes(boxes_to_minmax(boxes))


def yaw_to_quaternion(yaw: Any) -> ArrayLike:
    """Return the unit quaternion ``(x, y, z, w)`` of a rotation by ``yaw`` about +z.

    ``(0, 0, sin(yaw / 2), cos(yaw / 2))``: the ROS ``geometry_msgs/Quaternion`` field order.

    Args:
        yaw: angles in radians, any shape (a Python float gives shape ``(4,)``).

    Returns:
        ``yaw.shape + (4,)`` quaternions, same kind as ``yaw`` (numpy for Python numbers).
    """

    def fn(y: torch.Tensor) -> torch.Tensor:
        h = 0.5 * y
        zero = torch.zeros_like(h)
        return torch.stack([zero, zero, torch.sin(h), torch.cos(h)], dim=-1)

    return _apply(fn, yaw)


def quaternion_to_yaw(quat: Any) -> ArrayLike:
    """Return the yaw (rotation about +z) of quaternions ``(x, y, z, w)``, in ``(-pi, pi]``.

    For a general rotation this is the z angle of the z-y-x (yaw-pitch-roll) Euler decomposition. The formula
    ``atan2(2(wz + xy), w² + x² − y² − z²)`` is scale invariant, so the quaternion need not be normalized.

    Args:
        quat: ``(..., 4)`` quaternions in ``(x, y, z, w)`` order.

    Returns:
        ``(...)`` yaw angles, same kind as ``quat``.
    """

    def fn(q: torch.Tensor) -> torch.Tensor:
        if q.shape[-1] != 4:
            raise ValueError(f"quat must have shape (..., 4), got {tuple(q.shape)}")
        x, y, z, w = q.unbind(-1)
        return torch.atan2(2.0 * (w * z + x * y), w * w + x * x - y * y - z * z)

    return _apply(fn, quat)


def wrap_angle(angle: Any) -> ArrayLike:
    """Wrap angles into ``[-pi, pi)``.

    Args:
        angle: angles in radians, any shape.

    Returns:
        The wrapped angles, same kind as ``angle``.
    """
    return _apply(lambda a: torch.remainder(a + torch.pi, 2 * torch.pi) - torch.pi, angle)
