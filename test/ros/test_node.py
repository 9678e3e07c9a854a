"""End-to-end tests of the detector node: its console script in its own process, real DDS, a tiny random model.

One node process serves the whole module (start-up costs seconds on 2 shared cores, a minute or more on a busy
machine); the tests run in file order and each sends clouds with its own stamps. Every wait is for an event (an
answer, a counter in /diagnostics, a match in the graph) bounded by ``PATIENCE_S``, which only a stuck node reaches: a
slow machine makes the module slower, not red.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros
if importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vision_msgs") is None:
    pytest.skip("rclpy / vision_msgs not installed (scripts/setup.sh)", allow_module_level=True)

from children import PATIENCE_S  # noqa: E402
from clouds import LAYOUTS, layout, scene  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from node_harness import Client, node_command, start_node, stop_node  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from sr3d_core.preprocess import NEUTRAL_COLOR  # noqa: E402
from sr3d_ros.conversions import make_pointcloud2, pointcloud2_to_array, transform_points  # noqa: E402
from sr3d_ros.tf_lookup import to_matrix  # noqa: E402

NS, NAME = "/sr3d_test", "detector"
FQN = f"{NS}/{NAME}"
TOPIC = "/sr3d_test/camera/points"
MAX_DET = 4
CAP = 1000  # model.max_points of the test checkpoint
# base_link <- camera: 1 m up, rotated 90 degrees about z (a level camera looking along +y)
CAM_T, CAM_Q = np.array([0.2, 0.0, 1.0]), np.array([0, 0, np.sqrt(0.5), np.sqrt(0.5)])
TIMEOUT = PATIENCE_S  # for an answer that comes unless the node is broken (a dead node fails the wait at once)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sr3d_core.config import load_config
    from sr3d_core.inference import write_random_checkpoint

    # A point cap below the test clouds' 1,500 points, so the node's decode-only-the-capped-rows path is what
    # the comparisons with Detector.detect below check.
    cfg = load_config("toy_tiny")
    contract = dataclasses.replace(cfg.contract, max_points=CAP)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, contract=contract))
    return write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", cfg, seed=1)


@pytest.fixture(scope="module")
def detector(ckpt: Path):
    """The same model in the test process, for comparing published boxes with Detector.detect."""
    from sr3d_core.inference import Detector

    d = Detector.from_checkpoint(ckpt, "cpu")
    d.score_threshold, d.max_detections = 0.0, MAX_DET
    return d


@pytest.fixture(scope="module")
def system(ckpt: Path, tmp_path_factory: pytest.TempPathFactory):
    """The node in its own process."""
    params = {
        "checkpoint": ckpt,
        "device": "cpu",
        "target_frame": "base_link",
        "score_threshold": 0.0,
        "max_detections": MAX_DET,
        "diagnostics_period_s": 0.5,
        "tf_timeout_s": 0.2,
        "tf_fallback_latest": False,
    }
    log = tmp_path_factory.mktemp("log") / "node.log"
    tf = TransformStamped(header=Header(frame_id="base_link"), child_frame_id="camera")
    tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = CAM_T
    r = tf.transform.rotation
    r.x, r.y, r.z, r.w = CAM_Q
    with Client(FQN, TOPIC) as client:
        client.tf_static_pub.publish(TFMessage(transforms=[tf]))
        proc = start_node(node_command(NAME, NS, params, TOPIC), log)
        try:
            client.wait_ready(proc)
            # Ready for the tests once it answers a cloud in the camera frame: the static transform is in its buffer.
            assert answered(client, proc, send(client, publish=False)[1]), log.read_text()
            yield client, proc, log
        finally:
            code = stop_node(proc)
    assert code == 0, f"node exited with {code}; log:\n{log.read_text()}"


_stamp = [100]


def camera_points(n: int, seed: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """The xyz (in the camera frame, NaN holes when organized) and uint8 rgb of a test cloud."""
    xyz, rgb = scene(n, seed)
    xyz = (xyz - [0, 0, 1]) @ np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], np.float32)  # room seen from camera
    if h > 1:
        xyz[::7] = np.nan
    return xyz, rgb


def send(
    client: Client,
    name: str = "rgb_float_pcl",
    frame: str = "camera",
    n: int = 1500,
    h: int = 1,
    mutate=None,
    seed: int = 0,
    publish: bool = True,
):
    """Publish one cloud of a layout with a fresh stamp; returns (stamp sec, message)."""
    _stamp[0] += 1
    xyz, rgb = camera_points(n, seed, h)
    spec = layout(name, xyz.astype(np.float32), rgb)
    msg = make_pointcloud2(
        Header(frame_id=frame),
        h,
        n // h,
        spec["columns"],
        spec.get("point_step"),
        spec.get("is_bigendian", False),
        spec.get("offsets"),
    )
    msg.header.stamp.sec = _stamp[0]
    if mutate:
        mutate(msg)
    if publish:
        client.cloud_pub.publish(msg)
    return _stamp[0], msg


def counter(client: Client, key: str) -> int:
    """The node's newest /diagnostics value of a frame counter (0 before its first report)."""
    return int((client.latest_diagnostic_values() or {}).get(key, 0))


def answered(client: Client, proc, msg):
    """Publish ``msg`` until the node answers its stamp; returns the answer.

    The node waits ``tf_timeout_s`` (0.2 s) for a transform. On a busy machine a transform just published may reach
    its buffer later than that, and the frame counts as a TF failure: the same cloud is sent again when the node's
    tf_failures counter rises. Anything else is waited for, up to ``TIMEOUT``.
    """
    stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with client.lock:
            failures = counter(client, "tf_failures")
        client.cloud_pub.publish(msg)
        got = client.wait_for(
            lambda: client.detection_at(*stamp) or counter(client, "tf_failures") > failures,
            deadline - time.monotonic(),
            proc,
        )
        if got is not True:
            return got
    return None


def test_label_info_is_latched(system, detector) -> None:
    client, _, _ = system
    info = client.label_info[-1]
    assert [(c.class_id, c.class_name) for c in info.class_map] == list(enumerate(detector.class_names))
    assert info.threshold == pytest.approx(0.0)
    assert client.state() == "active"


@pytest.mark.parametrize("name", LAYOUTS + ("organized",))
def test_every_layout(system, detector, name: str) -> None:
    client, proc, _ = system
    organized = name == "organized"
    stamp, msg = send(client, "rgb_float_pcl" if organized else name, h=30 if organized else 1)
    has_color = organized or layout(name, *scene(1))["color"]
    got = client.wait_for(lambda: client.detection_at(stamp), TIMEOUT, proc)
    assert got is not None, f"no detections for stamp {stamp}"
    assert got.header.frame_id == "base_link" and 1 <= len(got.detections) <= MAX_DET
    for d in got.detections:
        assert d.header == got.header and d.id == "" and len(d.results) == 1
        assert d.results[0].hypothesis.class_id in detector.class_names
        assert d.results[0].pose.pose == d.bbox.center
    # The same frame through the library gives the same boxes. Organized: the raw rows, NaN holes included, as
    # the cap counts them; the node decoded only the rows the cap keeps.
    if organized:
        xyz, rgb = camera_points(1500, 0, 30)
        pts = np.c_[xyz, rgb.astype(np.float32) * np.float32(1 / 255)].astype(np.float32)
    elif has_color:
        pts, _ = pointcloud2_to_array(msg)
    else:  # the toy model needs colour: an xyz-only cloud gets the neutral colour (missing_color: neutral)
        pts, _ = pointcloud2_to_array(msg, want_color=False)
        pts = np.c_[pts, np.tile(np.float32(NEUTRAL_COLOR), (len(pts), 1))].astype(np.float32)
    assert len(pts) == 1500 > detector.contract.max_points == CAP
    ref = detector.detect(transform_points(pts, to_matrix(CAM_T, CAM_Q)))
    centres = np.array(
        [[d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.center.position.z] for d in got.detections]
    )
    np.testing.assert_allclose(centres, ref.boxes[:, :3], atol=1e-4)
    np.testing.assert_allclose([d.results[0].hypothesis.score for d in got.detections], ref.scores, atol=1e-5)
    # markers: one wireframe and one label per box, same stamp, frame and centre
    markers = client.wait_for(lambda: client.markers_at(stamp), TIMEOUT, proc)
    assert markers is not None
    boxes = [m for m in markers.markers if m.ns == "boxes" and m.action == Marker.ADD]
    labels = [m for m in markers.markers if m.ns == "labels" and m.action == Marker.ADD]
    assert len(boxes) == len(labels) == len(got.detections)
    for m, d in zip(boxes, got.detections):
        assert m.header.frame_id == "base_link" and m.pose == d.bbox.center and len(m.points) == 24


def test_stale_markers_are_deleted(system) -> None:
    client, proc, _ = system
    assert client.set_parameters(max_detections=1)[0].successful
    try:
        stamp, _ = send(client)
        markers = client.wait_for(lambda: client.markers_at(stamp), TIMEOUT, proc)
        deleted = {(m.ns, m.id) for m in markers.markers if m.action == Marker.DELETE}
        assert deleted == {(ns, i) for ns in ("boxes", "labels") for i in range(1, MAX_DET)}
    finally:
        assert client.set_parameters(max_detections=MAX_DET)[0].successful


MALFORMED = {
    "data_size": lambda m: setattr(m, "data", bytes(m.data)[:-5]),
    "missing_xyz": lambda m: setattr(m, "fields", [f for f in m.fields if f.name != "y"]),
    "unsupported_datatype": lambda m: setattr(m.fields[0], "datatype", 0),
    "field_bounds": lambda m: setattr(m.fields[3], "offset", 30),
}


def test_survives_malformed_clouds_and_counts_them(system) -> None:
    client, proc, _ = system

    def one_at_a_time(kind: str, publish) -> None:
        """Publish, then wait until the node counted it: a cloud replaced before the node took it (a busy machine)
        would count as dropped instead of malformed."""
        with client.lock:
            before = counter(client, f"malformed.{kind}")
        publish()
        assert client.wait_for(lambda: counter(client, f"malformed.{kind}") > before, TIMEOUT, proc), kind

    for kind, mutate in MALFORMED.items():
        for _ in range(2):
            one_at_a_time(kind, lambda mutate=mutate: send(client, mutate=mutate))
    for _ in range(2):  # cut short: published as serialized bytes that end inside the data
        _, msg = send(client, publish=False)
        one_at_a_time("serialization", lambda msg=msg: client.cloud_pub.publish(serialize_message(msg)[:-7]))
    stamp, _ = send(client)
    assert client.wait_for(lambda: client.detection_at(stamp), TIMEOUT, proc), "node stopped after bad input"
    want = {f"malformed.{k}": "2" for k in (*MALFORMED, "serialization")}
    vals = client.wait_for(
        lambda: (v := client.latest_diagnostic_values()) and all(v.get(k) == w for k, w in want.items()) and v,
        TIMEOUT,
        proc,
    )
    assert vals, f"diagnostics: {client.latest_diagnostic_values()}"
    assert int(vals["malformed_inputs"]) == 10 + int(vals.get("malformed.missing_color", 0))


def test_missing_transform_is_counted_not_ignored(system) -> None:
    client, proc, log = system
    with client.lock:
        failures, n = counter(client, "tf_failures"), len(client.diagnostics)
    stamp, _ = send(client, frame="nowhere")
    assert client.wait_for(lambda: counter(client, "tf_failures") == failures + 1, TIMEOUT, proc)
    assert client.wait_for(
        lambda: any("TF" in st.message for a in client.diagnostics[n:] for st in a.status), TIMEOUT, proc
    )
    assert client.detection_at(stamp) is None
    text = log.read_text()
    assert "'nowhere'" in text and "'base_link'" in text


def test_dynamic_transform_is_interpolated_at_the_stamp(system, detector) -> None:
    client, proc, _ = system
    tf_pub = client.node.create_publisher(TFMessage, "/tf", 10)
    assert client.wait_for(lambda: tf_pub.get_subscription_count() > 0, TIMEOUT, proc)
    stamp = _stamp[0] + 1
    samples = []
    for sec, x, yaw in ((stamp - 1, 0.0, 0.0), (stamp + 1, 2.0, 1.0)):  # at `stamp`: x = 1, yaw = 0.5
        t = TransformStamped(header=Header(frame_id="base_link"), child_frame_id="rig")
        t.header.stamp.sec = sec
        t.transform.translation.x = x
        t.transform.rotation.z, t.transform.rotation.w = np.sin(yaw / 2), np.cos(yaw / 2)
        samples.append(t)
    tf_pub.publish(TFMessage(transforms=samples))
    from rclpy.duration import Duration

    assert tf_pub.wait_for_all_acked(Duration(seconds=TIMEOUT))  # in the node's reader (its buffer soon after)
    stamp, msg = send(client, frame="rig", seed=4, publish=False)
    got = answered(client, proc, msg)
    assert got is not None and got.header.frame_id == "base_link"
    pts, _ = pointcloud2_to_array(msg)
    ref = detector.detect(transform_points(pts, to_matrix([1.0, 0, 0], [0, 0, np.sin(0.25), np.cos(0.25)])))
    centres = [[d.bbox.center.position.x, d.bbox.center.position.y] for d in got.detections]
    np.testing.assert_allclose(centres, ref.boxes[:, :2], atol=1e-3)


def test_live_parameter_changes(system, detector) -> None:
    client, proc, _ = system
    res = client.set_parameters(class_filter=[detector.class_names[1]], class_id_format="index")
    assert all(r.successful for r in res)
    stamp, _ = send(client, seed=2)
    got = client.wait_for(lambda: client.detection_at(stamp), TIMEOUT, proc)
    assert got is not None and all(d.results[0].hypothesis.class_id == "1" for d in got.detections)
    assert not client.set_parameters(device="cuda")[0].successful  # read-only
    assert not client.set_parameters(**{"model.voxel_size": 0.5})[0].successful  # from the checkpoint
    assert not client.set_parameters(score_threshold=2.0)[0].successful  # validated
    assert not client.set_parameters(class_filter=["sofa"])[0].successful  # not a class of the model
    assert client.set_parameters(score_threshold=0.9, class_filter=[""], class_id_format="name")[0].successful
    assert client.wait_for(lambda: client.label_info[-1].threshold == pytest.approx(0.9), TIMEOUT, proc)
    stamp, _ = send(client)
    got = client.wait_for(lambda: client.detection_at(stamp), TIMEOUT, proc)
    assert got is not None and len(got.detections) == 0  # random weights score ~0.01
    assert client.get_parameters(
        "score_threshold", "model.class_names", "model.max_points", "model.quantize_dtype"
    ) == {
        "score_threshold": 0.9,
        "model.class_names": list(detector.class_names),
        "model.max_points": CAP,
        "model.quantize_dtype": "float64",
    }
    assert client.set_parameters(score_threshold=0.0)[0].successful


def test_burst_is_dropped_not_queued(system) -> None:
    client, proc, _ = system
    burst = [send(client, n=1000, publish=False) for _ in range(12)]
    for _, msg in burst:  # every 15 ms: far faster than the node infers, slow enough for DDS to deliver
        client.cloud_pub.publish(msg)
        time.sleep(0.015)
    stamps = [s for s, _ in burst]
    # The node answers the first (it was idle), then the newest whenever it is ready. Once it answered a cloud sent
    # after the burst, every burst cloud was answered or dropped: no fixed wait, however slow the machine.
    assert client.wait_for(lambda: any(d.header.stamp.sec in stamps for d in client.detections), TIMEOUT, proc)
    stamp, _ = send(client)  # and it is idle again
    assert client.wait_for(lambda: client.detection_at(stamp), TIMEOUT, proc)
    seen = [d.header.stamp.sec for d in client.detections if d.header.stamp.sec in stamps]
    assert len(seen) == len(set(seen)) >= 1  # never inferred twice
    assert seen == sorted(seen)  # newest first: never an older frame after a newer one

    answers = len(client.detections)  # one per processed frame, the last one after the burst

    def settled() -> dict[str, str] | None:
        """The first counters that count the last answer, once every received frame is accounted for exactly once
        (none in progress)."""
        v = client.latest_diagnostic_values()
        if not v or int(v["frames_processed"]) < answers:
            return None
        accounted = sum(
            int(v[k]) for k in ("frames_processed", "frames_dropped", "malformed_inputs", "tf_failures", "errors")
        )
        return v if accounted == int(v["frames_received"]) else None

    v = client.wait_for(settled, TIMEOUT, proc)
    assert v and int(v["frames_dropped"]) > 0, f"no drop counted for a burst: {client.latest_diagnostic_values()}"
    assert float(v["processing_time_ms"]) > 0 and client.processing


def test_lifecycle_deactivate_and_activate(system) -> None:
    client, proc, _ = system
    assert client.lifecycle(Transition.TRANSITION_DEACTIVATE) and client.state() == "inactive"
    stamp, _ = send(client)
    time.sleep(1.0)
    assert client.detection_at(stamp) is None
    assert client.lifecycle(Transition.TRANSITION_ACTIVATE) and client.state() == "active"
    assert client.wait_for(lambda: client.cloud_pub.get_subscription_count() > 0, TIMEOUT, proc)
    stamp, _ = send(client)
    assert client.wait_for(lambda: client.detection_at(stamp), TIMEOUT, proc)


def test_enable_service_is_a_light_switch(system) -> None:
    from std_srvs.srv import SetBool

    client, proc, _ = system
    srv = f"{FQN}/enable"
    res = client.call(SetBool, srv, SetBool.Request(data=False))
    assert res.success and res.message == "disabled"
    # off: the node unsubscribes (the publisher sees no subscriber), infers nothing, and says so in diagnostics
    assert client.wait_for(lambda: client.cloud_pub.get_subscription_count() == 0, TIMEOUT, proc)
    stamp, _ = send(client)
    time.sleep(1.0)
    assert client.detection_at(stamp) is None
    n = len(client.diagnostics)
    diag = client.wait_for(lambda: len(client.diagnostics) > n + 1 and client.latest_diagnostic_values(), TIMEOUT, proc)
    assert diag["enabled"] == "false" and diag["_message"] == "disabled by ~/enable"
    assert client.call(SetBool, srv, SetBool.Request(data=False)).message == "already disabled"
    # a deactivate/activate cycle keeps the switch off
    assert client.lifecycle(Transition.TRANSITION_DEACTIVATE) and client.lifecycle(Transition.TRANSITION_ACTIVATE)
    time.sleep(0.5)
    assert client.cloud_pub.get_subscription_count() == 0
    assert client.call(SetBool, srv, SetBool.Request(data=True)).message == "enabled"
    assert client.wait_for(lambda: client.cloud_pub.get_subscription_count() > 0, TIMEOUT, proc)
    stamp, _ = send(client)
    assert client.wait_for(lambda: client.detection_at(stamp), TIMEOUT, proc)
    n = len(client.diagnostics)
    diag = client.wait_for(lambda: len(client.diagnostics) > n + 1 and client.latest_diagnostic_values(), TIMEOUT, proc)
    assert diag["enabled"] == "true"


def test_stale_and_zero_stamps_are_reported(system) -> None:
    client, proc, log = system

    def messages_of_next_periods(n_before: int, periods: int = 2) -> list[str]:
        """The node's diagnostics messages of the next ``periods`` periods after ``n_before`` arrays arrived."""
        assert client.wait_for(lambda: len(client.diagnostics) >= n_before + periods, TIMEOUT, proc)
        with client.lock:
            arrays = client.diagnostics[n_before:]
        return [st.message for arr in arrays for st in arr.status if st.name.startswith(FQN)]

    n = len(client.diagnostics)
    stamp, _ = send(client)  # the test's stamps are ~100 s after the epoch: decades old
    assert client.wait_for(lambda: client.detection_at(stamp), TIMEOUT, proc)
    assert any("input stale" in m for m in messages_of_next_periods(n))
    n = len(client.diagnostics)
    assert not any("input stale" in m for m in messages_of_next_periods(n))  # nothing new: no verdict
    now = time.time_ns()
    sec, nsec = divmod(now, 10**9)

    def fresh(m) -> None:
        m.header.stamp.sec, m.header.stamp.nanosec = sec, nsec

    n = len(client.diagnostics)
    send(client, mutate=fresh)
    assert client.wait_for(lambda: client.detection_at(sec, nsec), TIMEOUT, proc)
    assert not any("input stale" in m for m in messages_of_next_periods(n))

    def zero(m) -> None:
        m.header.stamp.sec = 0

    for n_zero in (1, 2):  # the second is answered too, but not warned about again
        send(client, mutate=zero)
        assert client.wait_for(
            lambda n_zero=n_zero: sum((d.header.stamp.sec, d.header.stamp.nanosec) == (0, 0) for d in client.detections)
            >= n_zero,
            TIMEOUT,
            proc,
        )
    assert log.read_text().count("zero header.stamp") == 1
