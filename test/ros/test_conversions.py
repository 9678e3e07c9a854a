"""Unit tests of sr3d_ros.conversions and sr3d_ros.params (no DDS; message builders need the ROS types)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from clouds import LAYOUTS, fake_cloud, layout, scene  # noqa: E402

from sr3d_core.config import DEPLOY_SCORE_THRESHOLD  # noqa: E402
from sr3d_core.detections import Detections  # noqa: E402
from sr3d_ros.conversions import (  # noqa: E402
    MalformedCloudError,
    box_edge_points,
    class_color,
    pointcloud2_to_array,
    transform_points,
    yaw_to_quaternion,
)
from sr3d_ros.params import NodeParams, ParameterError, load_defaults, markdown_table, runtime_parameters  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
HAVE_MSGS = all(importlib.util.find_spec(m) is not None for m in ("vision_msgs", "visualization_msgs", "std_msgs"))


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_layout_round_trips(name: str) -> None:
    xyz, rgb = scene(257)
    spec = layout(name, xyz, rgb)
    cloud = fake_cloud(1, len(xyz), **spec)
    pts, info = pointcloud2_to_array(cloud, want_color=spec["color"])
    assert pts.dtype == np.float32 and info.num_valid == len(xyz)
    np.testing.assert_allclose(pts[:, :3], xyz, atol=1e-6)
    if spec["color"]:
        np.testing.assert_allclose(pts[:, 3:], rgb / 255.0, atol=1e-6)
        assert pts.min() >= -2 and pts[:, 3:].max() <= 1
    else:
        assert pts.shape == (len(xyz), 3)


def test_organized_cloud_drops_nans_and_keeps_row_major_order() -> None:
    h, w = 6, 8
    xyz, rgb = scene(h * w, seed=1)
    xyz[::5] = np.nan
    xyz[3, 2] = np.inf
    spec = layout("rgb_float_pcl", xyz, rgb)
    pts, info = pointcloud2_to_array(fake_cloud(h, w, **spec))
    keep = np.isfinite(xyz).all(axis=1)
    assert info.organized and info.num_points == h * w and info.num_valid == keep.sum()
    np.testing.assert_allclose(pts[:, :3], xyz[keep])
    np.testing.assert_allclose(pts[:, 3:], rgb[keep] / 255.0, atol=1e-6)


def test_row_padding_through_row_step() -> None:
    h, w = 3, 5
    xyz, rgb = scene(h * w)
    cloud = fake_cloud(h, w, **layout("xyz_f32", xyz, rgb))
    rows = np.frombuffer(cloud.data, np.uint8).reshape(h, w * 12)
    cloud.data = np.concatenate([rows, np.zeros((h, 4), np.uint8)], axis=1).tobytes()
    cloud.row_step = w * 12 + 4
    pts, _ = pointcloud2_to_array(cloud, want_color=False)
    np.testing.assert_allclose(pts, xyz)


def pad_rows(cloud, pad: int) -> None:
    """Give every row of a fake cloud ``pad`` bytes of padding at its end (``row_step`` > ``width * point_step``)."""
    h, w = cloud.height, cloud.width
    raw = np.frombuffer(cloud.data, np.uint8).reshape(h, w * cloud.point_step)
    cloud.data = np.concatenate([raw, np.zeros((h, pad), np.uint8)], axis=1).tobytes()
    cloud.row_step = w * cloud.point_step + pad


@pytest.mark.parametrize("name", LAYOUTS)
def test_rows_decode_exactly_the_selected_points(name: str) -> None:
    # Decoding only some rows must equal decoding everything and then selecting, for every layout, NaN holes
    # and padded row ends included (the node decodes only the input cap's rows).
    h, w = 6, 9
    xyz, rgb = scene(h * w, seed=2)
    xyz[::4] = np.nan
    spec = layout(name, xyz, rgb)
    for padded in (False, True):
        cloud = fake_cloud(h, w, **spec)
        if padded:
            pad_rows(cloud, 8)
        rows = np.array([0, 1, 4, 9, 10, 23, 40, 53])
        pts, info = pointcloud2_to_array(cloud, want_color=spec["color"], rows=rows)
        keep = rows[np.isfinite(xyz[rows]).all(axis=1)]
        assert info.num_points == h * w and info.num_valid == len(keep) == len(pts)
        np.testing.assert_allclose(pts[:, :3], xyz[keep], atol=1e-6)
        if spec["color"]:
            np.testing.assert_allclose(pts[:, 3:], rgb[keep] / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="rows"):
        pointcloud2_to_array(fake_cloud(h, w, **spec), want_color=spec["color"], rows=np.array([0, h * w]))
    with pytest.raises(ValueError, match="rows"):
        pointcloud2_to_array(fake_cloud(h, w, **spec), want_color=spec["color"], rows=np.array([h * w, 0]))


@pytest.mark.parametrize("name", LAYOUTS)
def test_compiled_decoding_gives_the_same_bits(name: str, monkeypatch) -> None:
    # The compiled pass (float32 xyz in the host's order, packed or no colour) against the numpy path: every
    # layout, NaN holes, padded rows, selected rows, and a transform applied while decoding.
    from sr3d_ros import native_records as native

    if not native.available():
        pytest.skip("compiled helpers not built")
    calls, real = [], native.decode_records
    monkeypatch.setattr(native, "decode_records", lambda *a: calls.append(1) or real(*a))
    h, w = 7, 11
    xyz, rgb = scene(h * w, seed=5)
    xyz[::6] = np.nan
    xyz[5, 1] = np.inf
    spec = layout(name, xyz, rgb)
    rng = np.random.default_rng(0)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = np.linalg.qr(rng.normal(size=(3, 3)))[0], rng.normal(size=3)
    for padded in (False, True):
        cloud = fake_cloud(h, w, **spec)
        if padded:
            pad_rows(cloud, 8)
        for rows in (None, np.array([76, 0, 1, 4, 9, 10, 23, 40, 53, 4])):
            for transform in (None, m):
                got = pointcloud2_to_array(cloud, spec["color"], rows, transform)
                try:
                    native.set_enabled(False)
                    ref = pointcloud2_to_array(cloud, spec["color"], rows, transform)
                finally:
                    native.set_enabled(True)
                assert np.array_equal(got[0], ref[0]) and got[1] == ref[1]
    eligible = name in ("xyz_f32", "xyz_intensity_padded", "rgb_float_pcl", "rgb_uint32", "rgba_uint32")
    assert len(calls) == (8 if eligible else 0)


def test_separate_float_colour_in_0_255_is_rescaled() -> None:
    xyz, rgb = scene(50)
    x, y, z = xyz.T
    cols = [("x", x, 7), ("y", y, 7), ("z", z, 7)] + [(c, rgb[:, i].astype(np.float32), 7) for i, c in enumerate("rgb")]
    pts, info = pointcloud2_to_array(fake_cloud(1, 50, cols))
    assert info.color_source == "r,g,b"
    np.testing.assert_allclose(pts[:, 3:], rgb / 255.0, atol=1e-6)


def test_array_array_data_like_rclpy() -> None:
    import array

    xyz, rgb = scene(10)
    cloud = fake_cloud(1, 10, **layout("rgb_uint32", xyz, rgb))
    cloud.data = array.array("B", cloud.data)
    pts, _ = pointcloud2_to_array(cloud)
    np.testing.assert_allclose(pts[:, :3], xyz)


def _malformed(kind: str):
    xyz, rgb = scene(20)
    cloud = fake_cloud(1, 20, **layout("rgb_uint32", xyz, rgb))
    if kind == "data_size":
        cloud.data = cloud.data[:-3]
    elif kind == "missing_xyz":
        cloud.fields = [f for f in cloud.fields if f.name != "z"]
    elif kind == "unsupported_datatype":
        cloud.fields[0].datatype = 42
    elif kind == "field_bounds":
        cloud.fields[3].offset = cloud.point_step - 2
    elif kind == "missing_color":
        cloud.fields = cloud.fields[:3]
    return cloud


@pytest.mark.parametrize("kind", ["data_size", "missing_xyz", "unsupported_datatype", "field_bounds", "missing_color"])
def test_malformed_clouds_raise_with_kind(kind: str) -> None:
    with pytest.raises(MalformedCloudError) as err:
        pointcloud2_to_array(_malformed(kind), want_color=True)
    assert err.value.kind == kind and err.value.reason


def test_empty_cloud() -> None:
    pts, info = pointcloud2_to_array(
        fake_cloud(1, 0, [("x", np.zeros(0), 7), ("y", np.zeros(0), 7), ("z", np.zeros(0), 7)]), want_color=False
    )
    assert pts.shape == (0, 3) and info.num_valid == 0


@pytest.mark.skipif(importlib.util.find_spec("sensor_msgs_py") is None, reason="sensor_msgs_py not installed")
@pytest.mark.parametrize("name", LAYOUTS)
def test_matches_sensor_msgs_py_read_points(name: str) -> None:
    from sensor_msgs_py.point_cloud2 import read_points
    from std_msgs.msg import Header

    from sr3d_ros.conversions import make_pointcloud2

    xyz, rgb = scene(64, seed=3)
    xyz[5] = np.nan
    spec = layout(name, xyz, rgb)
    msg = make_pointcloud2(
        Header(), 8, 8, spec["columns"], spec.get("point_step"), spec.get("is_bigendian", False), spec.get("offsets")
    )
    ref = read_points(msg, field_names=("x", "y", "z"), skip_nans=True)
    ours, _ = pointcloud2_to_array(msg, want_color=False)
    np.testing.assert_allclose(ours, np.stack([ref["x"], ref["y"], ref["z"]], 1).astype(np.float32))


def test_transform_points_keeps_colour() -> None:
    pts = np.array([[1, 0, 0, 0.5, 0.5, 0.5]], np.float32)
    m = np.eye(4)
    m[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    m[:3, 3] = [0, 0, 1]
    np.testing.assert_allclose(transform_points(pts, m), [[0, 1, 1, 0.5, 0.5, 0.5]], atol=1e-6)
    # Many points, a general rigid transform: the homogeneous product in float64.
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    m[:3, :3], m[:3, 3] = q, rng.normal(size=3)
    pts = rng.uniform(-5, 5, (1000, 6)).astype(np.float32)
    want = (m @ np.c_[pts[:, :3].astype(np.float64), np.ones(1000)].T).T[:, :3]
    got = transform_points(pts, m)
    np.testing.assert_allclose(got[:, :3], want, atol=1e-5)
    assert np.array_equal(got[:, 3:], pts[:, 3:])


def test_yaw_quaternion_and_box_edges() -> None:
    q = yaw_to_quaternion(np.array([0.0, np.pi / 2]))
    np.testing.assert_allclose(q, [[0, 0, 0, 1], [0, 0, np.sqrt(0.5), np.sqrt(0.5)]], atol=1e-7)
    edges = box_edge_points(np.array([2.0, 4.0, 6.0])).reshape(12, 2, 3)
    lengths = np.linalg.norm(edges[:, 0] - edges[:, 1], axis=1)
    assert sorted(lengths) == [2.0] * 4 + [4.0] * 4 + [6.0] * 4
    assert np.abs(edges).max(axis=(0, 1)).tolist() == [1.0, 2.0, 3.0]
    sizes = np.array([[2.0, 4.0, 6.0], [0.5, 1.5, 0.25]])  # a batch: each box as on its own
    assert np.array_equal(box_edge_points(sizes), np.stack([box_edge_points(s) for s in sizes]))
    assert class_color(3) == class_color(13) != class_color(4)


# ---------------------------------------------------------------- parameters


def test_yaml_defaults_are_valid_and_complete() -> None:
    defaults = load_defaults(REPO / "config" / "node.yaml")
    p = NodeParams.from_mapping(defaults)
    assert p.classes == () and p.input_qos == "sensor_data" and p.input_qos_depth == 1
    assert runtime_parameters() >= {"score_threshold", "nms_iou", "max_detections", "class_filter"}
    assert not runtime_parameters() & {"checkpoint", "device", "target_frame", "input_qos"}


def test_node_score_threshold_is_the_library_deploy_threshold() -> None:
    """sr3d-evaluate's precision / recall default to the threshold the node reports at."""
    assert load_defaults(REPO / "config" / "node.yaml")["score_threshold"] == DEPLOY_SCORE_THRESHOLD


@pytest.mark.parametrize(
    "change",
    [
        dict(score_threshold=1.5),
        dict(nms_iou=0.0),
        dict(max_detections=0),
        dict(device="gpu"),
        dict(input_qos="fast"),
        dict(class_id_format="x"),
        dict(max_detections=2.5),
        dict(class_filter=[1]),
    ],
)
def test_invalid_parameters_are_rejected_with_the_name(change: dict) -> None:
    p = NodeParams.from_mapping(load_defaults(REPO / "config" / "node.yaml"))
    with pytest.raises(ParameterError, match=next(iter(change))):
        p.replace(**change)


def test_unknown_or_missing_parameters() -> None:
    d = load_defaults(REPO / "config" / "node.yaml")
    with pytest.raises(ParameterError, match="unknown"):
        NodeParams.from_mapping({**d, "scoer_threshold": 0.1})
    d.pop("device")
    with pytest.raises(ParameterError, match="missing"):
        NodeParams.from_mapping(d)


def test_readme_table_matches_yaml() -> None:
    """README.md carries the table generated from config/node.yaml: no default lives in two places."""
    table = markdown_table(load_defaults(REPO / "config" / "node.yaml"))
    doc = (REPO / "README.md").read_text()
    assert table in doc, "README.md parameter table is stale; regenerate with python -m sr3d_ros.params"
    assert len(dataclasses.fields(NodeParams)) == table.count("\n") - 2


# ---------------------------------------------------------------- messages


def _dets() -> Detections:
    boxes = np.array([[1, 2, 0.5, 1.0, 0.5, 1.0, 0.3], [-1, 0, 0.4, 0.6, 0.6, 0.8, 0.0]], np.float32)
    return Detections(boxes, np.array([0.9, 0.4], np.float32), np.array([1, 0]), ("chair", "table"))


@pytest.mark.skipif(not HAVE_MSGS, reason="vision_msgs / visualization_msgs not importable")
def test_detection3d_array_fields() -> None:
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from sr3d_ros.conversions import detections_to_msg

    header = Header(stamp=Time(sec=12, nanosec=34), frame_id="base_link")
    det = _dets()
    msg = detections_to_msg(det, header)
    assert msg.header == header and len(msg.detections) == 2
    d = msg.detections[0]
    assert d.header == header and d.id == "" and len(d.results) == 1
    assert d.results[0].hypothesis.class_id == "table" and d.results[0].hypothesis.score == pytest.approx(0.9)
    assert d.results[0].pose.pose == d.bbox.center
    assert (d.bbox.center.position.x, d.bbox.size.x, d.bbox.size.z) == pytest.approx((1, 1.0, 1.0))
    assert d.bbox.center.orientation.z == pytest.approx(np.sin(0.15))
    assert detections_to_msg(det, header, "index").detections[1].results[0].hypothesis.class_id == "0"


@pytest.mark.skipif(not HAVE_MSGS, reason="vision_msgs / visualization_msgs not importable")
def test_msg_to_detections_inverts_detections_to_msg() -> None:
    from std_msgs.msg import Header

    from sr3d_ros.conversions import detections_to_msg, msg_to_detections

    det = _dets()
    det.boxes[1, 6] = -2.5  # a yaw beyond -pi/2 must survive the quaternion round trip
    for fmt in ("name", "index"):
        back = msg_to_detections(detections_to_msg(det, Header(frame_id="map"), fmt), det.class_names)
        np.testing.assert_allclose(back.boxes, det.boxes, atol=1e-6)
        np.testing.assert_allclose(back.scores, det.scores, atol=1e-7)
        assert back.labels.tolist() == [1, 0] and back.class_names == det.class_names
    msg = detections_to_msg(det, Header(frame_id="map"))
    msg.detections[0].results[0].hypothesis.class_id = "lamp"
    with pytest.raises(ValueError, match="lamp"):
        msg_to_detections(msg, det.class_names)
    assert len(msg_to_detections(detections_to_msg(Detections.empty(det.class_names), Header()), det.class_names)) == 0


@pytest.mark.skipif(not HAVE_MSGS, reason="vision_msgs / visualization_msgs not importable")
def test_markers_match_boxes_and_delete_stale_ids() -> None:
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker

    from sr3d_ros.conversions import detections_to_markers

    det = _dets()
    arr = detections_to_markers(det, Header(frame_id="map"), previous_count=4, lifetime_s=0.5)
    boxes = [m for m in arr.markers if m.ns == "boxes" and m.action == Marker.ADD]
    labels = [m for m in arr.markers if m.ns == "labels" and m.action == Marker.ADD]
    deletes = sorted((m.ns, m.id) for m in arr.markers if m.action == Marker.DELETE)
    assert [m.id for m in boxes] == [0, 1] == [m.id for m in labels]
    assert deletes == [("boxes", 2), ("boxes", 3), ("labels", 2), ("labels", 3)]
    b = boxes[0]
    assert b.type == Marker.LINE_LIST and len(b.points) == 24 and b.header.frame_id == "map"
    assert b.pose.position.x == pytest.approx(1.0) and b.lifetime.nanosec == 500_000_000
    assert (b.color.r, b.color.g, b.color.b) == pytest.approx(class_color(1)[:3])
    assert max(abs(p.x) for p in b.points) == pytest.approx(0.5)  # half of dx in box-local coordinates
    pts = np.array([[p.x, p.y, p.z] for p in b.points])  # box-local corners: half the size on each axis
    assert np.abs(pts).max(axis=0) == pytest.approx([0.5, 0.25, 0.5])
    assert labels[0].text == "table 0.90" and labels[0].pose.position.z == pytest.approx(0.5 + 0.5 + 0.05)


@pytest.mark.skipif(not HAVE_MSGS, reason="vision_msgs not importable")
def test_pooled_messages_equal_fresh_ones_frame_after_frame() -> None:
    from std_msgs.msg import Header

    from sr3d_ros.conversions import MessagePool, detections_to_markers, detections_to_msg

    rng = np.random.default_rng(7)
    pool, previous = MessagePool(), 0
    for frame, n in enumerate((5, 2, 0, 6, 6, 1)):  # shrinking, empty and growing arrays
        boxes = np.c_[rng.uniform(-3, 3, (n, 3)), rng.uniform(0.2, 2, (n, 3)), rng.uniform(-3, 3, n)]
        det = Detections(
            boxes.astype(np.float32),
            rng.uniform(0, 1, n).astype(np.float32),
            rng.integers(0, 3, n),
            ("chair", "table", "bed"),
        )
        header = Header(frame_id=f"f{frame}")
        header.stamp.sec = frame
        lifetime = 0.2 + 0.1 * frame  # a runtime parameter may change between frames
        fresh = detections_to_markers(det, header, previous, lifetime, 0.01 * (frame + 1))
        pooled = detections_to_markers(det, header, previous, lifetime, 0.01 * (frame + 1), pool=pool)
        assert pooled == fresh, frame  # every field of every marker
        fmt = ("name", "index")[frame % 2]
        assert detections_to_msg(det, header, fmt, pool) == detections_to_msg(det, header, fmt), frame
        previous = n
    assert len(pool.boxes) == len(pool.detections) == 6 and len(pool.deletes) == 2 * 6  # ids 0-5 each deleted once


@pytest.mark.skipif(not HAVE_MSGS, reason="vision_msgs not importable")
def test_label_info() -> None:
    from std_msgs.msg import Header

    from sr3d_ros.conversions import label_info_msg

    msg = label_info_msg(("chair", "table"), Header(), 0.3)
    assert [(c.class_id, c.class_name) for c in msg.class_map] == [(0, "chair"), (1, "table")]
    assert msg.threshold == pytest.approx(0.3)
