"""Launch the SR3D detector node (and optionally RViz).

Example:
    ros2 launch sr3d_ros sr3d.launch.py input_topic:=/camera/depth/color/points \
        checkpoint:=/path/model.pt target_frame:=base_link use_rviz:=true

Every node default lives in config/node.yaml; the ``checkpoint``, ``device`` and ``target_frame`` arguments
override it only when given (empty = keep the params-file value). The ``launch`` imports sit inside the
functions so that tests can read the constants below where ``launch_ros`` is not installed.
"""

from __future__ import annotations

PACKAGE = "sr3d_ros"
EXECUTABLE = "sr3d_detector_node"
NODE_NAME = "sr3d_detector"
INPUT_REMAP = "~/input/points"
OVERRIDABLE = ("checkpoint", "device", "target_frame")

ARGUMENTS = {  # name: (default, description)
    "namespace": ("", "Namespace of the node (one instance per sensor)."),
    "input_topic": ("/camera/depth/color/points", "PointCloud2 topic remapped onto ~/input/points."),
    "params_file": ("", "Node parameters YAML; empty = the installed config/node.yaml."),
    "checkpoint": ("", "Model checkpoint; empty = the params file's value."),
    "device": ("", "cuda, cuda:N, cpu or auto; empty = the params file's value."),
    "target_frame": ("", "Gravity-aligned z-up frame for inference; empty = the params file's value."),
    "use_rviz": ("false", "Start RViz with config/sr3d.rviz."),
    "use_sim_time": ("false", "Use /clock (bag replay with --clock)."),
    "dds_profile": (
        "",
        "Fast DDS XML profile for the node; empty = the caller's FASTDDS_DEFAULT_PROFILES_FILE, "
        "else the installed config/fastdds_large_messages.xml; 'none' = Fast DDS defaults.",
    ),
}
DDS_PROFILE = "fastdds_large_messages.xml"


def dds_environment(value: str, share: str, environ: dict[str, str]) -> dict[str, str]:
    """Environment variables that give the node its Fast DDS profile (camera-size clouds need a large segment)."""
    if value == "none":
        return {}
    profile = value or environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or f"{share}/config/{DDS_PROFILE}"
    if environ.get("ROS_DISTRO") == "humble":  # Fast DDS 2.6 reads only the older name (newer ones warn on it)
        return {"FASTRTPS_DEFAULT_PROFILES_FILE": profile}
    return {"FASTDDS_DEFAULT_PROFILES_FILE": profile}


def parameter_overrides(values: dict[str, str]) -> dict[str, object]:
    """Node parameters the launch arguments set on top of the params file (only non-empty overrides)."""
    out: dict[str, object] = {k: values[k] for k in OVERRIDABLE if values.get(k)}
    out["use_sim_time"] = values.get("use_sim_time", "false").lower() == "true"
    return out


def _setup(context, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - launch OpaqueFunction signature
    import os

    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    from launch.substitutions import LaunchConfiguration

    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    share = FindPackageShare(PACKAGE).perform(context)
    params_file = values["params_file"] or f"{share}/config/node.yaml"
    actions = [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name=NODE_NAME,
            namespace=values["namespace"],
            output="screen",
            parameters=[params_file, parameter_overrides(values)],
            remappings=[(INPUT_REMAP, values["input_topic"])],
            additional_env=dds_environment(values["dds_profile"], share, dict(os.environ)),
        )
    ]
    if values["use_rviz"].lower() == "true":
        actions.append(
            Node(
                package="rviz2",
                executable="rviz2",
                name="sr3d_rviz",
                namespace=values["namespace"],
                arguments=["-d", f"{share}/config/sr3d.rviz"],
                parameters=[{"use_sim_time": values["use_sim_time"].lower() == "true"}],
            )
        )
    return actions


def generate_launch_description():  # noqa: ANN201 - returns launch.LaunchDescription
    """Declare the arguments and build the node (and RViz) once they are known."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [
        DeclareLaunchArgument(
            name,
            default_value=default,
            description=desc,
            **({"choices": ["true", "false"]} if name.startswith("use_") else {}),
        )
        for name, (default, desc) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_setup)])
