"""launch/sr3d.launch.py: loads where launch_ros is importable; its node command works where it is not.

(b) starts the console script with exactly the name, namespace, params file, overrides and remapping the launch
file passes, and checks them through rclpy's graph API and the parameter services.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "sr3d.launch.py"


def _launch_module():
    spec = importlib.util.spec_from_file_location("sr3d_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_launch_arguments_are_the_documented_ones() -> None:
    mod = _launch_module()
    assert set(mod.ARGUMENTS) == {
        "namespace",
        "input_topic",
        "params_file",
        "checkpoint",
        "device",
        "target_frame",
        "use_rviz",
        "use_sim_time",
        "dds_profile",
    }
    assert all(desc for _, desc in mod.ARGUMENTS.values())
    # The node gets the shipped large-message Fast DDS profile unless the caller chose one, or 'none'.
    shipped = "/share/config/fastdds_large_messages.xml"
    assert mod.dds_environment("", "/share", {}) == {"FASTDDS_DEFAULT_PROFILES_FILE": shipped}
    assert mod.dds_environment("", "/share", {"ROS_DISTRO": "humble"}) == {"FASTRTPS_DEFAULT_PROFILES_FILE": shipped}
    assert mod.dds_environment("", "/share", {"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {
        "FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"
    }
    assert mod.dds_environment("none", "/share", {}) == {}
    assert (REPO / "config" / mod.DDS_PROFILE).is_file()
    # empty overrides keep the params-file defaults: no default lives in the launch file
    assert mod.parameter_overrides({"checkpoint": "", "device": "", "target_frame": ""}) == {"use_sim_time": False}
    assert mod.parameter_overrides({"checkpoint": "/m.pt", "device": "cpu", "use_sim_time": "true"}) == {
        "checkpoint": "/m.pt",
        "device": "cpu",
        "use_sim_time": True,
    }


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros not importable (not on PyPI)")
def test_launch_description_loads() -> None:
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument

    ld = _launch_module().generate_launch_description()
    names = {a.name for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert {"namespace", "input_topic", "use_rviz"} <= names
    assert LaunchContext is not None


@pytest.mark.ros
@pytest.mark.skipif(
    importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vision_msgs") is None,
    reason="rclpy / vision_msgs not installed",
)
def test_node_as_the_launch_file_starts_it(tmp_path: Path) -> None:
    from node_harness import Client, start_node, stop_node

    from sr3d_core.inference import write_random_checkpoint

    mod = _launch_module()
    ckpt = write_random_checkpoint(tmp_path / "tiny.pt", "toy_tiny")
    values = {
        "namespace": "cam_left",
        "input_topic": "/cam_left/points",
        "checkpoint": str(ckpt),
        "device": "cpu",
        "target_frame": "",
        "use_sim_time": "false",
    }
    exe = Path(sys.executable).parent / mod.EXECUTABLE
    cmd = [
        str(exe),
        "--ros-args",
        "-r",
        f"__node:={mod.NODE_NAME}",
        "-r",
        f"__ns:=/{values['namespace']}",
        "--params-file",
        str(REPO / "config" / "node.yaml"),
    ]
    for k, v in mod.parameter_overrides(values).items():
        cmd += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
    cmd += ["-r", f"{mod.INPUT_REMAP}:={values['input_topic']}"]
    fqn = f"/cam_left/{mod.NODE_NAME}"
    with Client(fqn, values["input_topic"]) as client:
        proc = start_node(cmd, tmp_path / "node.log")
        try:
            client.wait_ready(proc)  # the remapped input matched, its outputs are in the graph
            graph = client.node
            assert client.wait_for(lambda: (mod.NODE_NAME, "/cam_left") in graph.get_node_names_and_namespaces())
            # the input is taken by the inference thread from a helper node in the same namespace
            assert client.wait_for(
                lambda: (f"{mod.NODE_NAME}_input", "/cam_left") in graph.get_node_names_and_namespaces()
            )
            subs = dict(graph.get_subscriber_names_and_types_by_node(f"{mod.NODE_NAME}_input", "/cam_left"))
            pubs = dict(graph.get_publisher_names_and_types_by_node(mod.NODE_NAME, "/cam_left"))
            assert subs["/cam_left/points"] == ["sensor_msgs/msg/PointCloud2"]
            assert pubs[f"{fqn}/detections"] == ["vision_msgs/msg/Detection3DArray"]
            assert {f"{fqn}/label_info", f"{fqn}/markers", f"{fqn}/debug/processing_time_ms", "/diagnostics"} <= set(
                pubs
            )
            p = client.get_parameters("checkpoint", "device", "score_threshold", "input_qos", "use_sim_time")
            assert p == {
                "checkpoint": str(ckpt),
                "device": "cpu",
                "score_threshold": 0.3,
                "input_qos": "sensor_data",
                "use_sim_time": False,
            }
            assert client.state() == "active"
        finally:
            code = stop_node(proc)
    assert code == 0, (tmp_path / "node.log").read_text()
