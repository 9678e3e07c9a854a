"""sr3d_ros.cdr: serialized PointCloud2 bytes read in place, against a hand-assembled message and rclpy's own
serializer."""

from __future__ import annotations

import importlib.util
import struct

import numpy as np
import pytest
from clouds import LAYOUTS, layout, scene  # noqa: E402

from sr3d_ros.cdr import parse_pointcloud2  # noqa: E402
from sr3d_ros.conversions import MalformedCloudError, pointcloud2_to_array  # noqa: E402

HAVE_RCLPY = all(importlib.util.find_spec(m) is not None for m in ("rclpy", "sensor_msgs", "std_msgs"))


def hand_assembled(order: str, kind: int) -> bytes:
    """One 2-point cloud (x, y, z float32), written field by field with CDR's alignment rules by hand.

    Offsets count from byte 4 (after the encapsulation header); 4-byte values sit at multiples of 4.
    """
    e = order
    out = bytes([kind >> 8, kind & 0xFF, 0, 0])
    out += struct.pack(e + "iI", -3, 999)  # stamp: payload bytes 0..7
    out += struct.pack(e + "I", 4) + b"cam\x00"  # frame_id: 8..15 (length counts the NUL)
    out += struct.pack(e + "II", 1, 2)  # height, width: 16..23
    out += struct.pack(e + "I", 3)  # 3 fields: 24..27
    for i, name in enumerate("xyz"):
        # name: length 2 ("x\0") then 2 bytes; offset must realign to 4 -> 2 bytes of padding; datatype 1 byte,
        # count realigns to 4 -> 3 bytes of padding
        out += struct.pack(e + "I", 2) + name.encode() + b"\x00" + b"\x00\x00"
        out += struct.pack(e + "I", 4 * i) + bytes([7]) + b"\x00\x00\x00" + struct.pack(e + "I", 1)
    out += bytes([1 if order == ">" else 0]) + b"\x00\x00\x00"  # is_bigendian, then pad to 4
    out += struct.pack(e + "II", 12, 24)  # point_step, row_step
    pts = np.array([[1.5, -2.0, 0.25], [3.0, 4.0, -5.5]], np.dtype(e + "f4"))
    out += struct.pack(e + "I", 24) + pts.tobytes()
    return out + bytes([1])  # is_dense


@pytest.mark.parametrize("order,kind", [("<", 0x0001), (">", 0x0000), ("<", 0x0007), (">", 0x0006)])
def test_hand_assembled_message(order: str, kind: int) -> None:
    raw = hand_assembled(order, kind)
    c = parse_pointcloud2(raw)
    assert (c.header.stamp.sec, c.header.stamp.nanosec, c.header.frame_id) == (-3, 999, "cam")
    assert (c.height, c.width, c.point_step, c.row_step, c.is_bigendian, c.is_dense) == (
        1,
        2,
        12,
        24,
        order == ">",
        True,
    )
    assert [(f.name, f.offset, f.datatype, f.count) for f in c.fields] == [
        ("x", 0, 7, 1),
        ("y", 4, 7, 1),
        ("z", 8, 7, 1),
    ]
    assert c.data.obj is raw and len(c.data) == 24  # a view into the message, not a copy
    pts, _ = pointcloud2_to_array(c, want_color=False)
    np.testing.assert_array_equal(pts, [[1.5, -2.0, 0.25], [3.0, 4.0, -5.5]])


def test_every_truncation_and_unknown_encapsulations_are_malformed() -> None:
    raw = hand_assembled("<", 0x0001)
    for n in range(len(raw)):
        with pytest.raises(MalformedCloudError) as err:
            parse_pointcloud2(raw[:n])
        assert err.value.kind == "serialization"
    for kind in (0x0002, 0x0003, 0x000B, 0xFFFF):
        with pytest.raises(MalformedCloudError, match=f"0x{kind:04x}"):
            parse_pointcloud2(bytes([kind >> 8, kind & 0xFF]) + raw[2:])
    no_nul = bytearray(raw)
    no_nul[15] = ord("!")  # frame_id's terminator
    with pytest.raises(MalformedCloudError, match="frame_id"):
        parse_pointcloud2(bytes(no_nul))


@pytest.mark.skipif(not HAVE_RCLPY, reason="needs rclpy and the message packages")
@pytest.mark.parametrize("name", LAYOUTS + ("organized",))
def test_matches_rclpy_deserialization(name: str) -> None:
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from sr3d_ros.conversions import make_pointcloud2

    h, n = (4, 40) if name == "organized" else (1, 37)
    xyz, rgb = scene(n, seed=3)
    spec = layout("rgb_float_pcl" if name == "organized" else name, xyz, rgb)
    msg = make_pointcloud2(
        Header(frame_id="ünïcode/optical"),
        h,
        n // h,
        spec["columns"],
        spec.get("point_step"),
        spec.get("is_bigendian", False),
        spec.get("offsets"),
    )
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 456_789
    msg.is_dense = name != "organized"
    c = parse_pointcloud2(serialize_message(msg))
    assert (c.header.stamp.sec, c.header.stamp.nanosec, c.header.frame_id) == (
        1_700_000_123,
        456_789,
        "ünïcode/optical",
    )
    for a in ("height", "width", "is_bigendian", "point_step", "row_step", "is_dense"):
        assert getattr(c, a) == getattr(msg, a), a
    assert [(f.name, f.offset, f.datatype, f.count) for f in c.fields] == [
        (f.name, f.offset, f.datatype, f.count) for f in msg.fields
    ]
    assert bytes(c.data) == bytes(msg.data)
    got, ref = pointcloud2_to_array(c, spec["color"]), pointcloud2_to_array(msg, spec["color"])
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]


@pytest.mark.skipif(not HAVE_RCLPY, reason="needs rclpy and the message packages")
def test_empty_cloud() -> None:
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import PointCloud2

    c = parse_pointcloud2(serialize_message(PointCloud2()))
    assert (c.height, c.width, c.fields, len(c.data), c.header.frame_id) == (0, 0, (), 0, "")
