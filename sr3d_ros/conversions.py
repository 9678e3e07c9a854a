"""Conversions between ROS messages and numpy / ``Detections``: pure functions, one module.

``pointcloud2_to_array`` reads only the message's fields (``height``, ``width``, ``fields``, ``is_bigendian``,
``point_step``, ``row_step``, ``data``), so it works on real ``sensor_msgs/PointCloud2`` messages and on any
object with the same attributes. The message builders import their ROS types lazily so that the cloud parser
can be used (and tested) without ROS.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from sr3d_core.boxes import quaternion_to_yaw
from sr3d_core.boxes import yaw_to_quaternion as _core_yaw_to_quaternion
from sr3d_core.detections import Detections
from sr3d_core.preprocess import scale_colors

# sensor_msgs/PointField datatypes -> numpy base types (the byte order is added per message).
POINTFIELD_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}

MALFORMED_KINDS = ("data_size", "missing_xyz", "unsupported_datatype", "field_bounds", "missing_color", "serialization")

# Tableau-10: a fixed, colour-blind-friendly palette; class i always gets PALETTE[i % 10].
PALETTE = (
    np.array(
        [
            [31, 119, 180],
            [255, 127, 14],
            [44, 160, 44],
            [214, 39, 40],
            [148, 103, 189],
            [140, 86, 75],
            [227, 119, 194],
            [127, 127, 127],
            [188, 189, 34],
            [23, 190, 207],
        ],
        np.float32,
    )
    / 255.0
)

# The 12 edges of a box as index pairs into the 8 corners of ``_UNIT_CORNERS``.
_UNIT_CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], np.float64)
_EDGES = np.array(
    [[a, b] for a in range(8) for b in range(a + 1, 8) if np.abs(_UNIT_CORNERS[a] - _UNIT_CORNERS[b]).sum() == 1.0]
)


class MalformedCloudError(ValueError):
    """A cloud that cannot be read.

    Attributes:
        kind: one of ``MALFORMED_KINDS``; the node logs each kind once and counts it.
        reason: a human-readable explanation naming the offending field or size.
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class CloudInfo:
    """What ``pointcloud2_to_array`` found in a cloud.

    Attributes:
        num_points: ``width * height`` (points in the message, valid or not).
        num_valid: points kept (finite x, y, z).
        color_source: ``"rgb"``, ``"rgba"``, ``"r,g,b"`` or ``""`` when no colour was read.
        organized: ``height > 1``.
    """

    num_points: int
    num_valid: int
    color_source: str
    organized: bool


def color_fields(names: Any) -> tuple[str, ...]:
    """The colour fields a cloud with these field names is read from: ``("rgb",)``, ``("rgba",)``,
    ``("r", "g", "b")``, or ``()`` when it has no colour."""
    if "rgb" in names:
        return ("rgb",)
    if "rgba" in names:
        return ("rgba",)
    return ("r", "g", "b") if all(c in names for c in "rgb") else ()


def pointcloud2_to_array(
    msg: Any, want_color: bool = True, rows: np.ndarray | None = None, transform: np.ndarray | None = None
) -> tuple[np.ndarray, CloudInfo]:
    """Convert a PointCloud2 into float32 points, vectorized, for every common driver layout.

    Handles xyz as float32 or float64, packed ``rgb``/``rgba`` (FLOAT32 or UINT32 bit patterns), separate
    ``r``, ``g``, ``b`` fields (integers scaled by their maximum; floats taken as [0, 1] unless a value exceeds
    1, then as 0-255), padding inside ``point_step`` and at row ends (``row_step``), organized clouds with NaNs
    (non-finite points are dropped) and either endianness.

    Args:
        msg: a ``sensor_msgs/PointCloud2`` (or an object with the same attributes).
        want_color: also return colour; the cloud must then carry it.
        rows: decode only these points, in this order (indices into the ``width * height`` points, row-major), e.g.
            ``sr3d_core.preprocess.cap_rows``; the others are never read. None decodes all.
        transform: a 4x4 applied to x, y, z (as ``transform_points`` does), or None.

    Returns:
        ``(points, info)``: ``points`` is ``(N, 3)`` or, with ``want_color``, ``(N, 6)`` float32 with colour
        in [0, 1]; ``info`` describes the cloud.

    Raises:
        MalformedCloudError: inconsistent sizes, missing x/y/z (or colour when wanted), unsupported datatypes
            or fields outside ``point_step``.
        ValueError: ``rows`` out of range.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.point_step)
    n = height * width
    fields = {f.name: f for f in msg.fields}
    missing = [c for c in "xyz" if c not in fields]
    if missing:
        raise MalformedCloudError("missing_xyz", f"no field(s) {missing}; fields are {sorted(fields)}")

    color_names: tuple[str, ...] = ()
    if want_color:
        color_names = color_fields(fields)
        if not color_names:
            raise MalformedCloudError("missing_color", f"the model needs colour; fields are {sorted(fields)}")

    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for name in ("x", "y", "z") + color_names:
        f = fields[name]
        base = POINTFIELD_DTYPES.get(int(f.datatype))
        if base is None:
            raise MalformedCloudError("unsupported_datatype", f"field '{name}' has datatype {f.datatype}")
        if name in ("rgb", "rgba"):
            if base not in ("f4", "u4", "i4"):
                raise MalformedCloudError(
                    "unsupported_datatype", f"packed field '{name}' must be 4 bytes (FLOAT32/UINT32), got {f.datatype}"
                )
            base = "u4"  # the float's bit pattern is the packed colour: read the bytes as an integer
        size = np.dtype(base).itemsize
        if int(f.offset) < 0 or int(f.offset) + size > step:
            raise MalformedCloudError(
                "field_bounds", f"field '{name}' (offset {f.offset}, {size} B) exceeds point_step {step}"
            )
        names.append(name)
        formats.append(order + base)
        offsets.append(int(f.offset))
    data = msg.data
    buf = data if isinstance(data, (bytes, bytearray, memoryview)) else memoryview(data).cast("B")
    nbytes = len(buf)
    row_step = int(msg.row_step)
    if nbytes == n * step:
        row_stride = width * step
    elif height > 0 and row_step > width * step and nbytes == height * row_step:
        row_stride = row_step  # rows padded at their ends
    else:
        raise MalformedCloudError(
            "data_size",
            f"data has {nbytes} B but width*height*point_step = {width}*{height}*{step} = {n * step}"
            f" (row_step {row_step})",
        )
    n_total, organized = n, height > 1
    if rows is not None:
        rows = np.asarray(rows, np.int64)
        if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= n)):
            raise ValueError(
                f"rows must be a 1-D array of point indices in [0, {n}), got shape {rows.shape}"
                + (f" with range [{rows.min()}, {rows.max()}]" if rows.ndim == 1 and len(rows) else "")
            )
    source = ",".join(color_names) if len(color_names) == 3 else (color_names[0] if color_names else "")
    native = _native_decoder() if formats[:3] == [_HOST_F4] * 3 and len(color_names) <= 1 else None
    if native is not None and n:
        # The common layout in one compiled pass (gather, finite filter, transform, colour); the same bits as below.
        out = native.decode_records(
            np.frombuffer(buf, np.uint8),
            width,
            step,
            row_stride,
            None if rows is None else np.ascontiguousarray(rows),
            n if rows is None else len(rows),
            tuple(offsets[:3]),
            offsets[3] if color_names else -1,
            (1, 2, 3) if msg.is_bigendian else (2, 1, 0),
            np.float32(1.0 / 255.0),
            None if transform is None else np.asarray(transform, np.float64)[:3, :4].astype(np.float32),
        )
        return out, CloudInfo(n_total, len(out), source, organized)
    if rows is not None:
        # Gather the selected point records (whole point_step bytes, one copy), then read them as a 1 x m cloud.
        buf = np.take(_records(buf, height, width, step, row_stride), rows, axis=0)  # 3x faster than [rows]
        height, width, n = 1, len(rows), len(rows)
        row_stride = width * step
    if n == 0:
        return np.zeros((0, 6 if want_color else 3), np.float32), CloudInfo(n_total, 0, "", organized)

    def view(offset: int, fmt: str, count: int = 1, stride: int = 0) -> np.ndarray:
        """A strided ``(n, count)`` view over the buffer: no copy where rows are not padded."""
        arr = np.ndarray(
            (height, width, count),
            np.dtype(fmt),
            buffer=buf,
            offset=offset,
            strides=(row_stride, step, stride or np.dtype(fmt).itemsize),
        )
        return arr.reshape(n, count)

    xyz = [view(offsets[i], formats[i])[:, 0] for i in range(3)]
    finite = np.isfinite(xyz[0]) & np.isfinite(xyz[1]) & np.isfinite(xyz[2])
    if not finite.all():
        # Organized clouds: drop the NaN points' whole records once (one contiguous copy, compress being several
        # times faster than fancy indexing), before any column is read.
        buf = np.compress(finite, _records(buf, height, width, step, row_stride), axis=0)
        height, width, n = 1, len(buf), len(buf)
        row_stride = width * step
        xyz = [view(offsets[i], formats[i])[:, 0] for i in range(3)]
    out = np.empty((n, 6 if want_color else 3), np.float32)
    for i in range(3):
        out[:, i] = xyz[i]  # column by column: one long strided loop each (4x faster than one (n, 3) copy)
    if want_color:
        col = out[:, 3:]
        if len(color_names) == 1:
            # packed 0x??RRGGBB: read its 4 bytes; R, G, B sit at bytes 2, 1, 0 (little) or 1, 2, 3 (big endian)
            raw = view(offsets[3], "u1", 4, 1)
            for i, byte in enumerate((1, 2, 3) if msg.is_bigendian else (2, 1, 0)):
                np.multiply(raw[:, byte], np.float32(1.0 / 255.0), out=col[:, i])  # 5x faster than one 2-D copy
        else:
            for i in range(3):
                col[:, i] = view(offsets[3 + i], formats[3 + i])[:, 0]
            kind = np.dtype(formats[3]).kind
            if kind in "iu":
                col *= np.float32(1.0 / np.iinfo(np.dtype(formats[3])).max)
                np.clip(col, 0.0, 1.0, out=col)
            else:
                scale_colors(col)  # float colours: 0-1 or 0-255, the library's one rule
    if transform is not None:
        out = transform_points(out, transform)
    return out, CloudInfo(n_total, len(out), source, organized)


_HOST_F4 = ("<" if sys.byteorder == "little" else ">") + "f4"


def _native_decoder() -> Any:
    """``sr3d_ros.native_records`` when its compiled library is usable (and not switched off), else None."""
    from sr3d_ros import native_records

    return native_records if native_records.available() else None


def _records(buf: Any, height: int, width: int, step: int, row_stride: int) -> np.ndarray:
    """The cloud's point records as an ``(n, point_step)`` uint8 array: a view of ``buf`` unless rows are padded."""
    arr = np.ndarray((height, width, step), np.uint8, buffer=buf, strides=(row_stride, step, 1))
    return arr.reshape(height * width, step)


def pack_cloud(
    columns: Sequence[tuple[str, np.ndarray, int]],
    point_step: int | None = None,
    is_bigendian: bool = False,
    offsets: Sequence[int] | None = None,
) -> tuple[list[tuple[str, int, int]], int, bytes]:
    """Pack per-point columns into PointCloud2 ``data`` bytes (vectorized): the inverse of the parser.

    Args:
        columns: ``(name, values (N,), PointField datatype)`` per field; values are cast to that datatype
            (pass packed colours as a uint32 array, whatever the declared datatype).
        point_step: bytes per point; default the packed size (extra bytes are zero padding).
        is_bigendian: byte order of the data.
        offsets: byte offset of each field; default consecutive.

    Returns:
        ``(fields, point_step, data)`` with ``fields`` as ``(name, offset, datatype)``.
    """
    order = ">" if is_bigendian else "<"
    formats = [order + POINTFIELD_DTYPES[dt] for _, _, dt in columns]
    if offsets is None:
        offsets, pos = [], 0
        for fmt in formats:
            offsets.append(pos)
            pos += np.dtype(fmt).itemsize
    step = point_step or max(o + np.dtype(f).itemsize for o, f in zip(offsets, formats))
    dtype = np.dtype({"names": [c[0] for c in columns], "formats": formats, "offsets": list(offsets), "itemsize": step})
    n = len(columns[0][1]) if columns else 0
    arr = np.zeros(n, dtype)
    for (name, values, dt), fmt in zip(columns, formats):
        values = np.asarray(values)
        if name in ("rgb", "rgba") and dt == 7:  # a packed colour declared FLOAT32: keep the bit pattern
            arr[name] = values.astype(np.uint32).view(np.float32)
        else:
            arr[name] = values
    return [(c[0], int(o), int(c[2])) for c, o in zip(columns, offsets)], int(step), arr.tobytes()


def make_pointcloud2(
    header: Any,
    height: int,
    width: int,
    columns: Sequence[tuple[str, np.ndarray, int]],
    point_step: int | None = None,
    is_bigendian: bool = False,
    offsets: Sequence[int] | None = None,
) -> Any:
    """Build a ``sensor_msgs/PointCloud2`` from columns (see ``pack_cloud``); NaN-free clouds are dense."""
    from sensor_msgs.msg import PointCloud2, PointField

    fields, step, data = pack_cloud(columns, point_step, is_bigendian, offsets)
    msg = PointCloud2(
        header=header,
        height=int(height),
        width=int(width),
        is_bigendian=bool(is_bigendian),
        point_step=step,
        row_step=step * int(width),
    )
    msg.fields = [PointField(name=nm, offset=o, datatype=dt, count=1) for nm, o, dt in fields]
    msg.is_dense = bool(all(np.isfinite(np.asarray(c[1], np.float64)).all() for c in columns[:3]))
    msg.data = data
    return msg


def stamp_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 homogeneous transform to the xyz columns; other columns (colour) are kept."""
    out = np.empty_like(points)
    rot, t = matrix[:3, :3].astype(points.dtype), matrix[:3, 3].astype(points.dtype)
    # Column-wise multiply-adds, not a BLAS matmul: a threaded BLAS on a (N, 3) x (3, 3) product competes with
    # torch's thread pool and was measured 5x slower on 2 cores. The columns are made contiguous first, and the
    # products reuse one buffer: 1.35x over the same arithmetic on strided columns.
    xyz = np.ascontiguousarray(points[:, :3].T)
    tmp = np.empty_like(xyz[0])
    for i in range(3):
        col = np.multiply(xyz[0], rot[i, 0])
        col += np.multiply(xyz[1], rot[i, 1], out=tmp)
        col += np.multiply(xyz[2], rot[i, 2], out=tmp)
        col += t[i]
        out[:, i] = col
    out[:, 3:] = points[:, 3:]
    return out


def yaw_to_quaternion(yaw: np.ndarray) -> np.ndarray:
    """``(K,)`` yaw angles about +z -> ``(K, 4)`` unit quaternions ``(x, y, z, w)``."""
    # sr3d_core.boxes is the one home of the convention; this only fixes dtype and shape for messages.
    return np.asarray(_core_yaw_to_quaternion(np.asarray(yaw, np.float64)), np.float64).reshape(-1, 4)


def class_id_strings(det: Detections, class_id_format: str = "name") -> list[str]:
    """The ``ObjectHypothesis.class_id`` of each detection: the class name or the index as a string."""
    if class_id_format == "index":
        return [str(int(i)) for i in det.labels]
    return [det.class_names[int(i)] for i in det.labels]


class MessagePool:
    """Messages reused by ``detections_to_msg`` and ``detections_to_markers`` from one array to the next.

    Building a frame's messages afresh (two ``Marker`` per box with 24 ``Point`` each, a ``Detection3D`` per box)
    costs over a millisecond of Python per frame; a message is serialized when it is published, so the same
    objects can be refilled for the next frame. One pool per node, used by one thread.
    """

    def __init__(self) -> None:
        self.detections: list[Any] = []
        self.boxes: list[Any] = []
        self.labels: list[Any] = []
        self.deletes: dict[tuple[str, int], Any] = {}


def detections_to_msg(
    det: Detections, header: Any, class_id_format: str = "name", pool: MessagePool | None = None
) -> Any:
    """Build a ``vision_msgs/Detection3DArray``.

    Args:
        det: detections in the frame named by ``header.frame_id``.
        header: ``std_msgs/Header`` carrying the input stamp and the inference frame.
        class_id_format: ``"name"`` or ``"index"`` for ``ObjectHypothesis.class_id``.
        pool: reuse this pool's messages (the previous array built with it is overwritten).

    Returns:
        One ``Detection3D`` per detection: one result (score, class), ``pose`` = ``bbox.center`` = box centre
        with a yaw quaternion, ``size`` = full extents, ``id`` empty (a single-frame detector does not track).
    """
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

    out = Detection3DArray(header=header)
    if len(det) == 0:
        return out
    boxes = det.boxes.astype(np.float64)
    # Python floats once for all boxes (tolist): per-element numpy scalars cost more than the messages' setters
    rows = np.concatenate(
        [boxes[:, :6], yaw_to_quaternion(boxes[:, 6]), np.asarray(det.scores, np.float64)[:, None]], axis=1
    ).tolist()
    ids = class_id_strings(det, class_id_format)
    for k, ((x, y, z, dx, dy, dz, qx, qy, qz, qw, score), class_id) in enumerate(zip(rows, ids)):
        if pool is not None and k < len(pool.detections):
            d = pool.detections[k]
        else:
            d = Detection3D()
            hyp = ObjectHypothesisWithPose()
            hyp.pose.pose = d.bbox.center  # one pose object for both
            d.results.append(hyp)
            if pool is not None:
                pool.detections.append(d)
        d.header = header
        c = d.bbox.center
        c.position.x, c.position.y, c.position.z = x, y, z
        o = c.orientation
        o.x, o.y, o.z, o.w = qx, qy, qz, qw
        d.bbox.size.x, d.bbox.size.y, d.bbox.size.z = dx, dy, dz
        hyp = d.results[0]
        hyp.hypothesis.class_id = class_id
        hyp.hypothesis.score = score
        out.detections.append(d)
    return out


def msg_to_detections(msg: Any, class_names: Sequence[str]) -> Detections:
    """Read a ``vision_msgs/Detection3DArray`` back into ``Detections`` (the inverse of ``detections_to_msg``).

    Each detection's first result gives the score and the class (a name of ``class_names`` or an index string);
    the box is the ``bbox`` centre, size and the yaw of its orientation.

    Raises:
        ValueError: a detection without results, or a class id that is neither a name nor an index of the model.
    """
    names = tuple(class_names)
    index = {n: i for i, n in enumerate(names)}
    k = len(msg.detections)
    boxes, scores, labels = np.zeros((k, 7), np.float32), np.zeros(k, np.float32), np.zeros(k, np.int64)
    quats = np.zeros((k, 4))
    for i, d in enumerate(msg.detections):
        if not d.results:
            raise ValueError(f"detection {i} has no results")
        c, size, hyp = d.bbox.center, d.bbox.size, d.results[0].hypothesis
        boxes[i, :6] = (c.position.x, c.position.y, c.position.z, size.x, size.y, size.z)
        quats[i] = (c.orientation.x, c.orientation.y, c.orientation.z, c.orientation.w)
        cid = hyp.class_id
        if cid in index:
            labels[i] = index[cid]
        elif cid.isdigit() and int(cid) < len(names):
            labels[i] = int(cid)
        else:
            raise ValueError(f"detection {i}: class_id {cid!r} is not one of {list(names)} or their indices")
        scores[i] = hyp.score
    if k:
        boxes[:, 6] = quaternion_to_yaw(quats)
    return Detections(boxes, scores, labels, names)


def class_color(label: int, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """The fixed RGBA colour of a class index."""
    r, g, b = PALETTE[int(label) % len(PALETTE)]
    return float(r), float(g), float(b), float(alpha)


def box_edge_points(size: np.ndarray) -> np.ndarray:
    """``(..., 24, 3)`` LINE_LIST points of the 12 edges of boxes of ``size`` ``(..., 3)``, in box-local coordinates
    (centre at the origin)."""
    return _UNIT_CORNERS[_EDGES.reshape(-1)] * np.asarray(size, np.float64)[..., None, :]


def detections_to_markers(
    det: Detections,
    header: Any,
    previous_count: int = 0,
    lifetime_s: float = 0.3,
    line_width: float = 0.02,
    text_height: float = 0.12,
    pool: MessagePool | None = None,
) -> Any:
    """Build a ``visualization_msgs/MarkerArray``: wireframe boxes and text labels.

    Box ``k`` is marker id ``k`` in namespace ``boxes`` (LINE_LIST, pose = box centre with the yaw quaternion,
    corners in box-local coordinates) and id ``k`` in namespace ``labels`` (TEXT_VIEW_FACING "name 0.87" above
    the box). Ids ``len(det)..previous_count-1`` of both namespaces get DELETE, so nothing stale remains and
    nothing flickers (no DELETEALL).

    Args:
        det: the detections.
        header: stamp and frame of the detections.
        previous_count: how many boxes the previous array drew.
        lifetime_s: marker lifetime (0 = forever).
        line_width: wireframe line width in metres.
        text_height: label height in metres.
        pool: reuse this pool's messages (the previous array returned with it is overwritten).
    """
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray()
    boxes = det.boxes.astype(np.float64)
    quats = yaw_to_quaternion(boxes[:, 6]).tolist() if len(det) else []
    # All boxes' edge points at once, as Python floats (numpy scalars per element cost more than the messages)
    edges = box_edge_points(boxes[:, 3:6]).tolist()
    sec = int(lifetime_s)
    life_sec, life_nsec = sec, int(round((lifetime_s - sec) * 1e9))
    labels, scores = np.asarray(det.labels).tolist(), np.asarray(det.scores, np.float64).tolist()
    for k, ((x, y, z, _, _, dz), quat, corners) in enumerate(zip(boxes[:, :6].tolist(), quats, edges)):
        if pool is not None and k < len(pool.boxes):
            box, text = pool.boxes[k], pool.labels[k]
        else:
            box = Marker(ns="boxes", id=k, type=Marker.LINE_LIST, action=Marker.ADD, frame_locked=False)
            box.points = [Point() for _ in corners]
            text = Marker(ns="labels", id=k, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
            text.pose.orientation.w = 1.0
            if pool is not None:
                pool.boxes.append(box)
                pool.labels.append(text)
        label = int(labels[k])
        color = class_color(label)
        box.header = header
        box.pose.position.x, box.pose.position.y, box.pose.position.z = x, y, z
        o = box.pose.orientation
        o.x, o.y, o.z, o.w = quat
        box.scale.x = float(line_width)
        box.color.r, box.color.g, box.color.b, box.color.a = color
        for pt, (px, py, pz) in zip(box.points, corners):
            pt.x, pt.y, pt.z = px, py, pz
        box.lifetime.sec, box.lifetime.nanosec = life_sec, life_nsec
        text.header = header
        text.pose.position.x, text.pose.position.y = x, y
        text.pose.position.z = z + dz / 2 + 0.05
        text.scale.z = float(text_height)
        text.color.r, text.color.g, text.color.b, text.color.a = color
        text.text = f"{det.class_names[label]} {scores[k]:.2f}"
        text.lifetime.sec, text.lifetime.nanosec = life_sec, life_nsec
        out.markers.extend([box, text])
    for k in range(len(det), int(previous_count)):
        for ns in ("boxes", "labels"):
            gone = pool.deletes.get((ns, k)) if pool is not None else None
            if gone is None:
                gone = Marker(ns=ns, id=k, action=Marker.DELETE)
                if pool is not None:
                    pool.deletes[(ns, k)] = gone
            gone.header = header
            out.markers.append(gone)
    return out


def label_info_msg(class_names: Sequence[str], header: Any, threshold: float) -> Any:
    """Build a ``vision_msgs/LabelInfo`` mapping class index -> name, with the score threshold in use."""
    from vision_msgs.msg import LabelInfo, VisionClass

    msg = LabelInfo(header=header, threshold=float(threshold))
    msg.class_map = [VisionClass(class_id=i, class_name=str(n)) for i, n in enumerate(class_names)]
    return msg
