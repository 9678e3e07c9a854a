"""Bindings of the compiled ``PointCloud2`` record decoder (``csrc/records.c``, built by ``setup.py`` into
``libsr3d_records.so``): ``sr3d_ros.conversions`` uses it for the common layout when it is built, current and not
switched off (``SR3D_NATIVE=0``), and its numpy path otherwise (the same bits)."""

from __future__ import annotations

import ctypes
from typing import Optional

import numpy as np

from sr3d_core.sparse import extension
from sr3d_core.sparse.extension import check_array, require, set_enabled

__all__ = ["available", "set_enabled", "decode_records"]

_P, _I64, _I32, _F32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_float
LIBRARY = extension.CompiledLibrary(
    "records",
    {
        "sr3d_decode_records": ([_P, _I64, _I64, _I64, _I64, _P, _I64, _P, _I32, _P, _F32, _P, _P], _I64),
    },
)


available = LIBRARY.usable  # () -> bool: the compiled decoder is enabled, built and current


def decode_records(
    data: np.ndarray,
    width: int,
    step: int,
    row_stride: int,
    rows: Optional[np.ndarray],
    n: int,
    xyz_offsets: tuple[int, int, int],
    color_offset: int,
    color_bytes: tuple[int, int, int],
    scale: float,
    affine: Optional[np.ndarray],
) -> np.ndarray:
    """Points of a cloud's raw records in one pass: gathered, non-finite ones dropped, transformed, colour unpacked.

    The compiled twin of ``sr3d_ros.conversions.pointcloud2_to_array`` (+ ``transform_points``) for the common
    layout: x, y, z float32 in the host's byte order, optionally a packed colour. Same bits as that path.

    Args:
        data: the records as a contiguous uint8 array (point p at ``(p // width) * row_stride + (p % width) * step``).
        width, step, row_stride: the cloud's width, ``point_step`` and row pitch in bytes.
        rows: int64 point indices to read, in order; None reads points ``0..n-1``.
        n: how many points are read.
        xyz_offsets: byte offsets of x, y, z in a record.
        color_offset: byte offset of the packed colour, or -1 for none.
        color_bytes: which bytes of it are R, G, B.
        scale: colour scale (float32 ``1 / 255``).
        affine: float32 ``(3, 4)`` transform applied to x, y, z, or None.

    Returns:
        ``(kept, 3)``, or ``(kept, 6)`` with colour, float32.

    Raises:
        TypeError, ValueError: an argument the decoder cannot read safely (named in the message).
    """
    fn = "decode_records"
    check_array(fn, "data", data, np.uint8, 1)
    require(
        fn,
        width > 0 and step > 0 and row_stride >= width * step and n >= 0,
        lambda: f"width {width}, point_step {step}, row stride {row_stride}, n {n}",
    )
    n_records = (data.shape[0] // row_stride) * width + min(width, (data.shape[0] % row_stride) // step)
    require(
        fn,
        all(0 <= o <= step - 4 for o in xyz_offsets) and len(xyz_offsets) == 3,
        lambda: f"xyz offsets {xyz_offsets} do not fit a {step}-byte record",
    )
    require(
        fn,
        color_offset < 0 or (color_offset <= step - 4 and all(0 <= c < 4 for c in color_bytes)),
        lambda: f"colour offset {color_offset} (bytes {color_bytes}) does not fit a {step}-byte record",
    )
    if rows is not None:
        check_array(fn, "rows", rows, np.int64, 1)
        require(fn, rows.shape[0] >= n, lambda: f"{rows.shape[0]} rows for {n} points")
    else:
        require(fn, n <= n_records, lambda: f"{n} points but the data holds {n_records}")
    if affine is not None:
        check_array(fn, "affine", affine, np.float32, 2)
        require(fn, affine.shape == (3, 4), lambda: f"affine must be (3, 4), got {affine.shape}")
    lib = LIBRARY.loaded()
    cols = 6 if color_offset >= 0 else 3
    out = np.empty((n, cols), np.float32)
    off = np.asarray(xyz_offsets, np.int32)
    cb = np.asarray(color_bytes, np.int32)
    kept = lib.sr3d_decode_records(
        data.ctypes.data,
        width,
        step,
        row_stride,
        n_records,
        None if rows is None else rows.ctypes.data,
        n,
        off.ctypes.data,
        color_offset,
        cb.ctypes.data,
        scale,
        None if affine is None else affine.ctypes.data,
        out.ctypes.data,
    )
    if kept < 0:
        raise ValueError(f"{fn}: a row lies outside the {n_records} records")
    return out[:kept]
