"""Start-up and shutdown of the node's console script: a failed autostart exits non-zero with a FATAL line, integers
are accepted for double parameters at start-up and at run time, values of the wrong type are refused by name (also
where rcl would drop them), an input nobody publishes is reported with the clouds that exist, and a stop logs
nothing that fails."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros
if importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vision_msgs") is None:
    pytest.skip("rclpy / vision_msgs not installed (scripts/setup.sh)", allow_module_level=True)

from children import wait_exit  # noqa: E402
from node_harness import Client, node_command, start_node, stop_node  # noqa: E402

NS = "/sr3d_startup"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sr3d_core.inference import write_random_checkpoint

    return write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", "toy_tiny", seed=1)


@pytest.mark.parametrize(
    "checkpoint,reason",
    [("''", "parameter 'checkpoint' is empty"), ("/no/such/model.pt", "parameter 'checkpoint': no such file")],
)
def test_failed_autostart_exits_with_fatal(tmp_path, checkpoint, reason):
    log = tmp_path / "node.log"
    proc = start_node(node_command("bad", NS, {"checkpoint": checkpoint, "device": "cpu"}, f"{NS}/pts"), log)
    code = wait_exit(proc)
    text = log.read_text()
    if code is None:
        stop_node(proc)
    assert code == 1, f"exit code {code}; log:\n{text}"
    assert reason in text and "FATAL" in text and "autostart" in text, text


def test_without_autostart_a_failed_configure_waits_for_a_manager(tmp_path):
    from lifecycle_msgs.msg import Transition

    log = tmp_path / "node.log"
    with Client(f"{NS}/managed", f"{NS}/pts2") as client:
        proc = start_node(
            node_command("managed", NS, {"checkpoint": "/no/such.pt", "autostart": "false"}, f"{NS}/pts2"), log
        )
        try:
            # Ready for a manager once its lifecycle services are in the graph, however long the imports take.
            client.watch(proc)
            client.wait_for_service(f"{NS}/managed/change_state")
            assert client.state() == "unconfigured"
            assert not client.lifecycle(Transition.TRANSITION_CONFIGURE)  # fails, names the file in the log
            assert proc.poll() is None and client.state() == "unconfigured"
        finally:
            code = stop_node(proc)
    assert code == 0, log.read_text()
    assert "no such file /no/such.pt" in log.read_text()


def test_integers_for_double_parameters(tmp_path, ckpt):
    log = tmp_path / "node.log"
    with Client(f"{NS}/ints", f"{NS}/pts3") as client:
        proc = start_node(
            node_command(
                "ints", NS, {"checkpoint": ckpt, "device": "cpu", "score_threshold": 0, "tf_timeout_s": 1}, f"{NS}/pts3"
            ),
            log,
        )
        try:
            client.wait_ready(proc)
            assert client.get_parameters("score_threshold")["score_threshold"] == 0
            (ok,) = client.set_parameters(score_threshold=0)
            assert ok.successful, ok.reason
            (bad,) = client.set_parameters(score_threshold=1)  # an int, accepted as a type, refused by the range
            assert not bad.successful and "score_threshold must lie in [0, 1)" in bad.reason
            (bad,) = client.set_parameters(score_threshold="high")
            assert not bad.successful and "score_threshold" in bad.reason
            # With no target_frame, clouds in a camera optical frame get one warning that names the frame.
            for sec in (1, 2):
                client.cloud_pub.publish(cloud("camera_color_optical_frame", sec))
                assert client.wait_for(lambda sec=sec: client.detection_at(sec)), log.read_text()
            # A value of the wrong type is refused naming the parameter, the type and the value; the declared
            # type stays.
            (bad,) = client.set_parameters(max_detections=5.0)
            assert not bad.successful and bad.reason == "parameter 'max_detections' must be an integer, got 5.0"
            (bad,) = client.set_parameters(class_filter="chair")
            assert not bad.successful
            assert bad.reason == "parameter 'class_filter' must be a list of strings, got 'chair'"
            from rcl_interfaces.msg import ParameterType
            from rcl_interfaces.srv import DescribeParameters

            described = client.call(
                DescribeParameters,
                f"{NS}/ints/describe_parameters",
                DescribeParameters.Request(names=["max_detections", "class_filter"]),
            ).descriptors
            assert [d.type for d in described] == [
                ParameterType.PARAMETER_INTEGER,
                ParameterType.PARAMETER_STRING_ARRAY,
            ]
            (ok,) = client.set_parameters(max_detections=7)
            assert ok.successful, ok.reason
        finally:
            code = stop_node(proc)
    text = log.read_text()
    assert code == 0, text
    assert text.count("inferring in 'camera_color_optical_frame', an optical frame") == 1, text
    # Stopped by SIGINT: the last line reaches /rosout too (the context is shut down after it).
    assert "final counters:" in text and "Failed to publish log message to rosout" not in text, text


@pytest.mark.parametrize(
    "rule,message",
    [
        ("max_detections:=5.0", "parameter 'max_detections' must be an integer, got 5.0 (-p max_detections:=5.0)"),
        (
            "score_threshold:=abc",
            "parameter 'score_threshold' must be a number (double), got abc " "(-p score_threshold:=abc)",
        ),
        ("input_qos_depth:=2.5", "parameter 'input_qos_depth' must be an integer, got 2.5 (-p input_qos_depth:=2.5)"),
    ],
)
def test_wrong_types_with_the_params_file_exit_with_the_name(tmp_path, rule, message):
    """`--params-file config/node.yaml -p ...` (the README's command): rcl keeps the file's value and drops the
    other type; the node must refuse instead of running with the default."""
    log = tmp_path / "node.log"
    cmd = node_command("typed", NS, {"checkpoint": "/no/such.pt", "autostart": "false"}, f"{NS}/pts4")
    cmd[cmd.index("--params-file") + 2 : cmd.index("--params-file") + 2] = ["-p", rule]
    proc = start_node(cmd, log)
    code = wait_exit(proc)
    if code is None:
        stop_node(proc)
    text = log.read_text()
    assert code == 1 and "FATAL" in text and message in text, f"exit code {code}; log:\n{text}"


def test_an_input_nobody_publishes_is_reported_with_the_clouds_that_exist(tmp_path, ckpt):
    """The README's command pasted into bash without quotes: `~` became the home directory, the remap matches
    nothing and the node listens on its default topic. It says so at start, then (throttled) which clouds exist."""
    log = tmp_path / "node.log"
    camera = f"{NS}/camera/depth/color/points"
    cmd = node_command(
        "lonely",
        NS,
        {"checkpoint": ckpt, "device": "cpu", "no_publisher_warn_s": 1.0, "diagnostics_period_s": 0.25},
        camera,
    )
    home = os.path.expanduser("~")
    cmd[-1] = f"{home}/input/points:={camera}"  # what bash makes of an unquoted ~/input/points:=...
    warning = "no publisher on the input"
    naming = f"PointCloud2 topics with a publisher: {camera}"
    # The client publishes on the camera topic, which the node does not hear.
    with Client(f"{NS}/lonely", camera) as client:
        proc = start_node(cmd, log)
        try:
            client.wait_ready(proc, input_matched=False)  # active, though nothing matches its input
            # Three warnings naming the camera: two throttle periods to check, however slow the machine.
            assert client.wait_for(lambda: log.read_text().count(naming) >= 3), log.read_text()
            assert client.node.count_subscribers(camera) == 0  # the remap really missed
        finally:
            code = stop_node(proc)
    text = log.read_text()
    assert code == 0, text
    assert (
        f"remap rule '{home}/input/points:={camera}' starts with your home directory {home}: the shell "
        f"expanded an unquoted '~'"
        in text
        and f"Quote it: -r '~/input/points:={camera}'" in text
    ), text
    lines = [ln for ln in text.splitlines() if warning in ln]
    assert all(f"{warning} {NS}/lonely/input/points" in ln for ln in lines), text
    # Each names the clouds that exist, from the first that could (a busy machine may discover the client's
    # publisher after the first warning) on.
    named = [naming in ln for ln in lines]
    assert named.count(True) >= 3 and all(named[named.index(True) :]), text
    # Throttled to one per no_publisher_warn_s (1 s), not one per diagnostics period (0.25 s): the gaps between the
    # log stamps. A slow machine only makes them longer.
    stamps = [float(re.search(r"\[(\d+\.\d+)\]", ln).group(1)) for ln in lines]
    assert all(b - a >= 0.9 for a, b in zip(stamps, stamps[1:])), f"gaps {stamps}:\n{text}"
    assert "Failed to publish log message to rosout" not in text, text


def cloud(frame: str, sec: int):
    import numpy as np
    from clouds import layout, scene
    from std_msgs.msg import Header

    from sr3d_ros.conversions import make_pointcloud2

    xyz, rgb = scene(800, sec)
    spec = layout("rgb_float_pcl", xyz.astype(np.float32), rgb)
    msg = make_pointcloud2(
        Header(frame_id=frame),
        1,
        800,
        spec["columns"],
        spec.get("point_step"),
        spec.get("is_bigendian", False),
        spec.get("offsets"),
    )
    msg.header.stamp.sec = sec
    return msg


@pytest.mark.parametrize("mode", ["neutral", "refuse"])
def test_clouds_without_colour(tmp_path, ckpt, mode):
    import numpy as np
    from clouds import scene
    from std_msgs.msg import Header

    from sr3d_ros.conversions import make_pointcloud2

    log = tmp_path / "node.log"
    topic = f"{NS}/xyz_{mode}"
    params = {
        "checkpoint": ckpt,
        "device": "cpu",
        "missing_color": mode,
        "score_threshold": 0.0,
        "diagnostics_period_s": 0.5,
    }
    with Client(f"{NS}/xyz_{mode}", topic) as client:
        proc = start_node(node_command(f"xyz_{mode}", NS, params, topic), log)
        try:
            client.wait_ready(proc)
            xyz, _ = scene(800, 3)
            x, y, z = xyz.astype(np.float32).T
            for sec in (1, 2):
                msg = make_pointcloud2(Header(frame_id="map"), 1, 800, [("x", x, 7), ("y", y, 7), ("z", z, 7)])
                msg.header.stamp.sec = sec
                client.cloud_pub.publish(msg)
            if mode == "neutral":
                assert client.wait_for(lambda: client.detection_at(2)), log.read_text()
            else:
                # Both are skipped as malformed (or the first is replaced by the second in the one-frame slot).
                values = client.wait_for(
                    lambda: int((client.latest_diagnostic_values() or {}).get("malformed.missing_color", 0)) >= 1
                    and client.latest_diagnostic_values()
                )
                assert values, log.read_text()
                assert client.detection_at(1) is None and client.detection_at(2) is None
        finally:
            code = stop_node(proc)
    text = log.read_text()
    assert code == 0, text
    if mode == "neutral":
        assert text.count("fed the neutral colour (0.5, 0.5, 0.5)") == 1, text
    else:
        assert text.count("(missing_color)") == 1, text
