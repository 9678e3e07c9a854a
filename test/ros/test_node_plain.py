"""The plain-node entry point (no lifecycle): it infers at once, and a bad checkpoint is a clear exit."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros
if importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vision_msgs") is None:
    pytest.skip("rclpy / vision_msgs not installed (scripts/setup.sh)", allow_module_level=True)

from children import PATIENCE_S  # noqa: E402
from clouds import layout, scene  # noqa: E402
from node_harness import Client, node_command, start_node, stop_node  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from sr3d_ros.conversions import make_pointcloud2  # noqa: E402


def test_plain_node_detects_in_the_cloud_frame(tmp_path: Path) -> None:
    from sr3d_core.inference import write_random_checkpoint

    ckpt = write_random_checkpoint(tmp_path / "tiny.pt", "toy_tiny")
    topic = "/plain/points"
    params = {"checkpoint": ckpt, "device": "auto", "score_threshold": 0.0, "max_detections": 2}
    with Client("/plain/det", topic) as client:
        proc = start_node(node_command("det", "/plain", params, topic, entry="main_plain"), tmp_path / "node.log")
        try:
            client.wait_ready(proc)
            xyz, rgb = scene(1000)
            spec = layout("rgb_uint32", xyz, rgb)
            msg = make_pointcloud2(Header(frame_id="level_cam"), 1, 1000, spec["columns"])
            msg.header.stamp.sec, msg.header.stamp.nanosec = 7, 123
            client.cloud_pub.publish(msg)
            got = client.wait_for(lambda: client.detection_at(7, 123))
            assert got is not None and got.header.frame_id == "level_cam" and len(got.detections) == 2
            import torch

            if not torch.cuda.is_available():  # device "auto" falls back loudly
                assert "CUDA is not available" in (tmp_path / "node.log").read_text()
        finally:
            code = stop_node(proc)
    assert code == 0, (tmp_path / "node.log").read_text()


def test_missing_checkpoint_exits_with_the_path(tmp_path: Path) -> None:
    cmd = node_command(
        "det", "/bad", {"checkpoint": tmp_path / "nope.pt", "device": "cpu"}, "/bad/points", entry="main_plain"
    )
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=PATIENCE_S)  # exits unless stuck
    assert res.returncode == 1 and "nope.pt" in res.stdout + res.stderr


@pytest.mark.parametrize("context_up", [False, True])
def test_publish_on_a_shut_down_context_is_a_clean_stop(monkeypatch, context_up: bool) -> None:
    """Something else can shut the context down while a timer callback publishes; rcl then raises "publisher's context
    is invalid" out of spin. That is a normal stop (the node cleans up, no error); the same error with the context
    still up is a real one and propagates."""
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError

    from sr3d_ros import spin

    calls = []

    class Executor:  # the executor's spin, as it fails in the race
        def add_node(self, node) -> None:
            pass

        def remove_node(self, node) -> None:
            pass

        def spin_once(self, timeout_sec: float) -> None:
            if not context_up:
                rclpy.shutdown()
            raise RCLError("Failed to publish: publisher's context is invalid")

    class FakeNode:
        def stop(self) -> None:
            calls.extend(["counters", "cleanup"])

        def destroy_node(self) -> None:
            calls.append("destroyed")

    monkeypatch.setattr(spin, "SingleThreadedExecutor", Executor)
    node = FakeNode()
    rclpy.init()
    try:
        if context_up:
            with pytest.raises(RCLError):
                spin.spin(node, node.stop)
        else:
            spin.spin(node, node.stop)
    finally:
        rclpy.try_shutdown()
    assert calls == ["counters", "cleanup", "destroyed"]
