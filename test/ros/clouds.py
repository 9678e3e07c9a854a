"""Cloud layouts that real drivers publish, shared by the conversion tests and the node-test publisher."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from sr3d_ros.conversions import pack_cloud

F32, F64, U8, U32, I32 = 7, 8, 2, 6, 5


def scene(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in a 4 x 4 x 2 m room and their uint8 colours."""
    rng = np.random.default_rng(seed)
    xyz = rng.uniform([-2, -2, 0], [2, 2, 2], (n, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return xyz, rgb


def packed(rgb: np.ndarray, alpha: int | None = None) -> np.ndarray:
    """uint32 ``0xAARRGGBB`` (alpha 0 for ``rgb``, as PCL writes it)."""
    v = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2].astype(np.uint32)
    return v | np.uint32((alpha or 0) << 24)


def layout(name: str, xyz: np.ndarray, rgb: np.ndarray) -> dict[str, Any]:
    """Keyword arguments of ``pack_cloud`` (+ ``color``: whether the layout carries colour) for a layout."""
    x, y, z = xyz.T
    if name == "xyz_f32":
        return dict(columns=[("x", x, F32), ("y", y, F32), ("z", z, F32)], color=False)
    if name == "xyz_f64":
        return dict(columns=[("x", x, F64), ("y", y, F64), ("z", z, F64)], color=False)
    if name == "xyz_intensity_padded":  # Velodyne/Ouster-like: intensity, ring, padding in point_step
        return dict(
            columns=[
                ("x", x, F32),
                ("y", y, F32),
                ("z", z, F32),
                ("intensity", x * 0 + 7, F32),
                ("ring", np.zeros(len(x)), 4),
            ],
            offsets=[0, 4, 8, 16, 20],
            point_step=32,
            color=False,
        )
    if name == "rgb_float_pcl":  # PCL PointXYZRGB: x y z pad rgb(float) pad to 32 B
        return dict(
            columns=[("x", x, F32), ("y", y, F32), ("z", z, F32), ("rgb", packed(rgb), F32)],
            offsets=[0, 4, 8, 16],
            point_step=32,
            color=True,
        )
    if name == "rgb_uint32":
        return dict(columns=[("x", x, F32), ("y", y, F32), ("z", z, F32), ("rgb", packed(rgb), U32)], color=True)
    if name == "rgba_uint32":
        return dict(columns=[("x", x, F32), ("y", y, F32), ("z", z, F32), ("rgba", packed(rgb, 255), U32)], color=True)
    if name == "rgb_separate_u8":
        return dict(
            columns=[
                ("x", x, F32),
                ("y", y, F32),
                ("z", z, F32),
                ("r", rgb[:, 0], U8),
                ("g", rgb[:, 1], U8),
                ("b", rgb[:, 2], U8),
            ],
            point_step=16,
            color=True,
        )
    if name == "rgb_separate_float":  # floats in [0, 1] (Open3D-style)
        c = rgb.astype(np.float32) / 255
        return dict(
            columns=[
                ("x", x, F32),
                ("y", y, F32),
                ("z", z, F32),
                ("r", c[:, 0], F32),
                ("g", c[:, 1], F32),
                ("b", c[:, 2], F32),
            ],
            color=True,
        )
    if name == "rgb_float_bigendian":
        return dict(
            columns=[("x", x, F32), ("y", y, F32), ("z", z, F32), ("rgb", packed(rgb), F32)],
            is_bigendian=True,
            color=True,
        )
    if name == "xyz_f64_bigendian_rgb":
        return dict(
            columns=[("x", x, F64), ("y", y, F64), ("z", z, F64), ("rgb", packed(rgb), U32)],
            is_bigendian=True,
            color=True,
        )
    raise KeyError(name)


LAYOUTS = (
    "xyz_f32",
    "xyz_f64",
    "xyz_intensity_padded",
    "rgb_float_pcl",
    "rgb_uint32",
    "rgba_uint32",
    "rgb_separate_u8",
    "rgb_separate_float",
    "rgb_float_bigendian",
    "xyz_f64_bigendian_rgb",
)


def fake_cloud(
    height: int,
    width: int,
    columns: list,
    point_step: int | None = None,
    is_bigendian: bool = False,
    offsets: list | None = None,
    **_: Any,
) -> SimpleNamespace:
    """A ROS-free stand-in with the attributes of ``sensor_msgs/PointCloud2``."""
    fields, step, data = pack_cloud(columns, point_step, is_bigendian, offsets)
    return SimpleNamespace(
        height=height,
        width=width,
        is_bigendian=is_bigendian,
        point_step=step,
        row_step=step * width,
        fields=[SimpleNamespace(name=n, offset=o, datatype=d, count=1) for n, o, d in fields],
        data=data,
        is_dense=True,
    )
