"""The node's own reading of its command line: values of the wrong type are refused with the parameter, the type it
takes, the value and where it was given (rcl would keep the params file's value without a word). No ROS needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr3d_ros.params import ParameterError, check_command_line, command_line_values, ros_scalar_kind

REPO = Path(__file__).resolve().parents[2]
NODE_YAML = str(REPO / "config" / "node.yaml")
NAME, FQN = "sr3d_detector", "/sr3d_detector"


def argv(*ros: str) -> list[str]:
    """A console script's command line with the params file README's commands pass."""
    return ["sr3d_detector_node", "--ros-args", "--params-file", NODE_YAML, *ros]


@pytest.mark.parametrize(
    "rule,message",
    [
        ("max_detections:=5.0", "parameter 'max_detections' must be an integer, got 5.0 (-p max_detections:=5.0)"),
        (
            "score_threshold:=abc",
            "parameter 'score_threshold' must be a number (double), got abc " "(-p score_threshold:=abc)",
        ),
        ("input_qos_depth:=2.5", "parameter 'input_qos_depth' must be an integer, got 2.5 (-p input_qos_depth:=2.5)"),
        ("autostart:=1", "parameter 'autostart' must be a bool, got 1 (-p autostart:=1)"),
        ("device:=0", "parameter 'device' must be a string, got 0 (-p device:=0)"),
        (
            "class_filter:=chair",
            "parameter 'class_filter' must be a list of strings, got chair (-p class_filter:=chair)",
        ),
    ],
)
def test_wrong_types_after_the_params_file_are_refused_by_name(rule: str, message: str) -> None:
    with pytest.raises(ParameterError) as e:
        check_command_line(argv("-p", rule), NAME, FQN)
    assert str(e.value) == message


def test_every_wrong_value_is_named_at_once() -> None:
    with pytest.raises(ParameterError) as e:
        check_command_line(argv("-p", "max_detections:=5.0", "--param", "score_threshold:=abc"), NAME, FQN)
    assert "'max_detections'" in str(e.value) and "'score_threshold'" in str(e.value)


@pytest.mark.parametrize(
    "rule",
    [
        "score_threshold:=0",
        "score_threshold:=1e-3",
        "score_threshold:=.5",
        "max_detections:=0x10",
        "device:=cpu",
        "device:='0'",
        'checkpoint:="12"',
        "autostart:=false",
        "autostart:=Off",
        "class_filter:=[chair, table]",
        "target_frame:=base_link",
        "unknown_param:=1.5",
        "other_node:max_detections:=5.0",
    ],
)
def test_values_of_the_right_type_pass(rule: str) -> None:
    check_command_line(argv("-p", rule), NAME, FQN)


def test_a_rule_for_this_node_by_name_is_checked() -> None:
    with pytest.raises(ParameterError, match="'max_detections' must be an integer, got 5.0"):
        check_command_line(argv("-p", f"{NAME}:max_detections:=5.0"), NAME, FQN)


def test_params_file_values_of_the_wrong_type_are_refused_with_the_file(tmp_path: Path) -> None:
    user = tmp_path / "user.yaml"
    user.write_text(
        "/**:\n  ros__parameters:\n    max_detections: 5.0\n    nms_iou: 1\n"
        "other_node:\n  ros__parameters:\n    input_qos_depth: 2.5\n"
        "ns:\n  sr3d_detector:\n    ros__parameters:\n      score_threshold: '0.3'\n"
    )
    with pytest.raises(ParameterError) as e:
        check_command_line(argv("--params-file", str(user)), NAME, FQN)
    assert str(e.value) == f"parameter 'max_detections' must be an integer, got 5.0 ({user})"  # nms_iou: 1 is fine
    # The namespaced block applies once the node runs in that namespace; the other node's never does.
    with pytest.raises(ParameterError) as e:
        check_command_line(argv("--params-file", str(user)), NAME, "/ns/sr3d_detector")
    assert "'score_threshold' must be a number (double), got 0.3" in str(e.value)
    assert "input_qos_depth" not in str(e.value)


def test_only_ros_arguments_are_read() -> None:
    values = command_line_values(
        [
            "prog",
            "-p",
            "max_detections:=5.0",
            "--ros-args",
            "-r",
            "-p:=/x",
            "-p",
            "nms_iou:=0.4",
            "--",
            "-p",
            "max_detections:=abc",
        ],
        NAME,
        FQN,
    )
    assert [(v.name, v.kind, v.where) for v in values] == [("nms_iou", "float", "-p nms_iou:=0.4")]


@pytest.mark.parametrize(
    "text,kind",
    [
        ("5", "int"),
        ("-3", "int"),
        ("0x1F", "int"),
        ("5.0", "float"),
        ("1e-3", "float"),
        (".inf", "float"),
        ("nan", "float"),
        ("yes", "bool"),
        ("FALSE", "bool"),
        ("1_000", "str"),
        ("abc", "str"),
        ("", "str"),
    ],
)
def test_scalars_are_typed_as_rcl_types_them(text: str, kind: str) -> None:
    assert ros_scalar_kind(text) == kind
