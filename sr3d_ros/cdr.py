"""``sensor_msgs/PointCloud2`` read straight from its serialized (CDR) bytes.

The node subscribes to its input with ``raw=True``: rclpy then hands over each serialized message as one bytes
object (a memory copy), where building a Python ``PointCloud2`` costs several milliseconds of interpreter time
per 640x480 cloud, spent on the executor thread for every cloud received (also those dropped while the network
is busy) and holding the interpreter lock that the inference thread needs between its operations.
``parse_pointcloud2`` reads only the header and layout fields and leaves ``data`` as a view into the bytes, so a
cloud costs almost nothing until its points are decoded, and only the clouds that are processed are parsed.

The result has the attributes of a ``PointCloud2`` that the pipeline reads (``header.stamp.sec``/``nanosec``,
``header.frame_id``, ``height``, ``width``, ``fields[i].name``/``offset``/``datatype``/``count``,
``is_bigendian``, ``point_step``, ``row_step``, ``data``, ``is_dense``). No ROS import: it is plain CDR.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sr3d_ros.conversions import MalformedCloudError

# Encapsulation identifiers (the first two bytes, big endian) -> byte order of the payload. Plain CDR (XCDR1) and
# plain CDR2 lay PointCloud2 out identically: it has no 8-byte members, whose alignment is where they differ.
ENCAPSULATIONS = {0x0000: ">", 0x0001: "<", 0x0006: ">", 0x0007: "<"}
_ENCAPSULATION_NAMES = {0x0000: "CDR_BE", 0x0001: "CDR_LE", 0x0006: "CDR2_BE", 0x0007: "CDR2_LE"}


@dataclass(frozen=True)
class Stamp:
    """``builtin_interfaces/Time``."""

    sec: int
    nanosec: int


@dataclass(frozen=True)
class CloudHeader:
    """``std_msgs/Header``."""

    stamp: Stamp
    frame_id: str


@dataclass(frozen=True)
class CloudField:
    """``sensor_msgs/PointField``."""

    name: str
    offset: int
    datatype: int
    count: int


@dataclass(frozen=True)
class SerializedCloud:
    """A ``PointCloud2`` whose ``data`` is a read-only view into the serialized message (no copy)."""

    header: CloudHeader
    height: int
    width: int
    fields: tuple[CloudField, ...]
    is_bigendian: bool
    point_step: int
    row_step: int
    data: memoryview
    is_dense: bool


class _Reader:
    """A cursor over a CDR payload; alignment counts from the end of the 4-byte encapsulation header."""

    def __init__(self, buf: memoryview, order: str) -> None:
        self.buf = buf
        self.pos = 4
        self.u32 = struct.Struct(order + "I")
        self.i32 = struct.Struct(order + "i")

    def _need(self, n: int, what: str) -> None:
        if self.pos + n > len(self.buf):
            raise MalformedCloudError(
                "serialization",
                f"the serialized cloud ends at byte {len(self.buf)} inside "
                f"'{what}' (needs {n} B at byte {self.pos}): truncated, or not a PointCloud2",
            )

    def _word(self, fmt: struct.Struct, what: str) -> int:
        self.pos += -(self.pos - 4) % 4
        self._need(4, what)
        (v,) = fmt.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def uint32(self, what: str) -> int:
        return self._word(self.u32, what)

    def int32(self, what: str) -> int:
        return self._word(self.i32, what)

    def byte(self, what: str) -> int:
        self._need(1, what)
        v = self.buf[self.pos]
        self.pos += 1
        return int(v)

    def bytes_(self, what: str) -> memoryview:
        n = self.uint32(what)
        self._need(n, what)
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def string(self, what: str) -> str:
        raw = self.bytes_(what)  # the length counts the terminating NUL
        if len(raw) == 0 or raw[-1] != 0:
            raise MalformedCloudError("serialization", f"string '{what}' is not NUL-terminated: not a PointCloud2")
        try:
            return bytes(raw[:-1]).decode("utf-8")
        except UnicodeDecodeError as err:
            raise MalformedCloudError("serialization", f"string '{what}' is not UTF-8: {err}") from None


def parse_pointcloud2(serialized: bytes | bytearray | memoryview) -> SerializedCloud:
    """Read a serialized ``sensor_msgs/PointCloud2`` (as ``rclpy`` passes it to a ``raw=True`` subscription).

    Only the layout is checked here; ``pointcloud2_to_array`` checks that the data fits it.

    Raises:
        MalformedCloudError: kind ``serialization``: an unknown encapsulation, or bytes that end before the
            message does.
    """
    buf = memoryview(serialized).cast("B")
    if len(buf) < 4:
        raise MalformedCloudError("serialization", f"a serialized message has at least 4 B, got {len(buf)}")
    kind = (buf[0] << 8) | buf[1]
    order = ENCAPSULATIONS.get(kind)
    if order is None:
        raise MalformedCloudError(
            "serialization",
            f"unsupported CDR encapsulation 0x{kind:04x} (supported: " f"{', '.join(_ENCAPSULATION_NAMES.values())})",
        )
    r = _Reader(buf, order)
    stamp = Stamp(r.int32("header.stamp.sec"), r.uint32("header.stamp.nanosec"))
    header = CloudHeader(stamp, r.string("header.frame_id"))
    height, width = r.uint32("height"), r.uint32("width")
    n_fields = r.uint32("fields")
    if n_fields > len(buf):  # each field takes more than a byte: a count this large is garbage
        raise MalformedCloudError("serialization", f"{n_fields} fields in a {len(buf)} B message: not a PointCloud2")
    fields = []
    for i in range(n_fields):
        name = r.string(f"fields[{i}].name")
        fields.append(
            CloudField(
                name, r.uint32(f"fields[{i}].offset"), r.byte(f"fields[{i}].datatype"), r.uint32(f"fields[{i}].count")
            )
        )
    is_bigendian = bool(r.byte("is_bigendian"))
    point_step, row_step = r.uint32("point_step"), r.uint32("row_step")
    data = r.bytes_("data")
    is_dense = bool(r.byte("is_dense"))
    return SerializedCloud(header, height, width, tuple(fields), is_bigendian, point_step, row_step, data, is_dense)


__all__ = ["CloudField", "CloudHeader", "ENCAPSULATIONS", "SerializedCloud", "Stamp", "parse_pointcloud2"]
