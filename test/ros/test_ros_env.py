"""The ROS 2 environment that scripts/setup.sh provides: real DDS, vision_msgs, colcon.

These tests talk over real Fast DDS between separate processes, so they prove more than the
unit tests of the message conversions: that rclpy, the RMW and the rebuilt vision_msgs work
together and that the rebuilt package is wire-compatible with upstream vision_msgs 4.1.x.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from children import PATIENCE_S, track, wait_exit  # noqa: E402

pytestmark = pytest.mark.ros

try:
    import rclpy  # noqa: F401

    _RCLPY_ERROR = ""
except ImportError as exc:  # pragma: no cover - setup.sh guarantees rclpy
    _RCLPY_ERROR = f"rclpy is not importable ({exc}); run `make setup` or source scripts/env.sh"

requires_rclpy = pytest.mark.skipif(bool(_RCLPY_ERROR), reason=_RCLPY_ERROR or "rclpy present")

REPO = Path(__file__).resolve().parents[2]
# Upstream vision_msgs 4.1.x (Iron and later) hash of Detection3DArray; equal hashes mean the
# rebuilt package interoperates with nodes built against the upstream package.
UPSTREAM_DETECTION3DARRAY_HASH = "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018"
TOPIC = "/sr3d_test/detections"
# Each child's own bound, from its own start, for a peer that never shows up: only a stuck peer reaches it (on a busy
# machine importing rclpy alone can take a minute); a peer that died ends the test's wait at once.
PROCESS_TIMEOUT_S = PATIENCE_S

# Publisher process: waits for the subscriber to be discovered (never a fixed sleep), then keeps
# publishing until the subscriber has gone away (it exits after its first message) so that a
# message sent before the subscriber side finished matching cannot make the test flaky.
_PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import rclpy
    from geometry_msgs.msg import Quaternion
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

    topic, timeout = sys.argv[1], float(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node("sr3d_test_publisher")
    pub = node.create_publisher(Detection3DArray, topic, 10)

    msg = Detection3DArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000000, 123456789
    msg.header.frame_id = "base_link"
    det = Detection3D()
    det.header = msg.header
    det.id = ""
    det.bbox.center.position.x, det.bbox.center.position.y, det.bbox.center.position.z = 1.5, -0.25, 0.4
    det.bbox.center.orientation = Quaternion(x=0.0, y=0.0, z=0.3826834323650898, w=0.9238795325112867)
    det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = 0.6, 0.5, 0.8
    for class_id, score in (("chair", 0.875), ("table", 0.125)):
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = class_id, score
        hyp.pose.pose = det.bbox.center
        det.results.append(hyp)
    msg.detections.append(det)

    deadline = time.monotonic() + timeout
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            sys.exit("publisher: no subscriber discovered")
        rclpy.spin_once(node, timeout_sec=0.05)
    print("publisher: subscriber matched", flush=True)
    while pub.get_subscription_count() > 0:
        if time.monotonic() > deadline:
            sys.exit("publisher: subscriber never left")
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()
    """
)

# Subscriber process: writes the first message it gets as JSON and exits.
_SUBSCRIBER = textwrap.dedent(
    """
    import json, sys, time
    import rclpy
    from vision_msgs.msg import Detection3DArray

    topic, out_path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("sr3d_test_subscriber")
    got = []
    node.create_subscription(Detection3DArray, topic, got.append, 10)
    deadline = time.monotonic() + timeout
    while not got:
        if time.monotonic() > deadline:
            sys.exit("subscriber: nothing received")
        rclpy.spin_once(node, timeout_sec=0.1)
    m = got[0]
    d = m.detections[0]
    p, q, s = d.bbox.center.position, d.bbox.center.orientation, d.bbox.size
    out = {
        "stamp": [m.header.stamp.sec, m.header.stamp.nanosec],
        "frame_id": m.header.frame_id,
        "n_detections": len(m.detections),
        "det_frame_id": d.header.frame_id,
        "id": d.id,
        "center": [p.x, p.y, p.z],
        "orientation": [q.x, q.y, q.z, q.w],
        "size": [s.x, s.y, s.z],
        "results": [[r.hypothesis.class_id, r.hypothesis.score] for r in d.results],
        "result0_pose": [r.pose.pose.position.x for r in d.results[:1]],
    }
    with open(out_path, "w") as f:
        json.dump(out, f)
    node.destroy_node()
    rclpy.shutdown()
    """
)


def _ros_env() -> dict[str, str]:
    """Environment for child processes: loopback-only discovery and this run's domain id.

    Returns:
        A copy of the current environment with the DDS settings the project requires.
    """
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("ROS_DOMAIN_ID", "42")  # test/conftest.py normally picks a random one
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(proc: subprocess.Popen) -> str:
    """Kills ``proc`` if it still runs and returns its combined output.

    Args:
        proc: A process started with stdout piped.

    Returns:
        Whatever the process printed (stdout and stderr).
    """
    if proc.poll() is None:
        proc.kill()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - kill() cannot be ignored
        return ""
    return out or ""


@requires_rclpy
def test_detection3darray_pubsub_between_processes(tmp_path: Path) -> None:
    """A Detection3DArray crosses real DDS between two processes with every field intact."""
    pub_script, sub_script = tmp_path / "pub.py", tmp_path / "sub.py"
    pub_script.write_text(_PUBLISHER)
    sub_script.write_text(_SUBSCRIBER)
    out_path = tmp_path / "received.json"
    env = _ros_env()
    popen = dict(env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    sub = track(
        subprocess.Popen([sys.executable, str(sub_script), TOPIC, str(out_path), str(PROCESS_TIMEOUT_S)], **popen)
    )
    pub = track(subprocess.Popen([sys.executable, str(pub_script), TOPIC, str(PROCESS_TIMEOUT_S)], **popen))
    sub_rc = pub_rc = None
    try:
        # Until the subscriber is done (the publisher then sees it leave and exits too), or the publisher failed
        # first (no point waiting for the subscriber); each child bounds its own wait for the other.
        deadline = time.monotonic() + PROCESS_TIMEOUT_S + 60
        while time.monotonic() < deadline:
            if sub.poll() is not None:
                sub_rc = sub.returncode
                # After a failed subscriber the publisher may still be waiting for one: not waited for.
                pub_rc = wait_exit(pub) if sub_rc == 0 else pub.poll()
                break
            if pub.poll() is not None:
                pub_rc = pub.returncode
                break
            time.sleep(0.1)
    finally:
        sub_out, pub_out = _stop(sub), _stop(pub)
    logs = f"domain {env['ROS_DOMAIN_ID']}\n--- subscriber:\n{sub_out}\n--- publisher:\n{pub_out}"
    assert sub_rc == 0 and out_path.exists(), logs
    assert pub_rc == 0, logs

    got = json.loads(out_path.read_text())
    assert got["stamp"] == [1700000000, 123456789]
    assert got["frame_id"] == "base_link"
    assert got["n_detections"] == 1
    assert got["det_frame_id"] == "base_link"
    assert got["id"] == ""
    assert got["center"] == pytest.approx([1.5, -0.25, 0.4])
    assert got["orientation"] == pytest.approx([0.0, 0.0, 0.3826834323650898, 0.9238795325112867])
    assert got["size"] == pytest.approx([0.6, 0.5, 0.8])
    assert got["results"] == [["chair", 0.875], ["table", 0.125]]
    assert got["result0_pose"] == pytest.approx([1.5])


@requires_rclpy
def test_vision_msgs_type_hash_matches_upstream() -> None:
    """The installed Detection3DArray has upstream's RIHS01 hash, on disk and on the wire."""
    from ament_index_python.packages import get_package_share_directory
    from vision_msgs.msg import Detection3DArray

    json_path = Path(get_package_share_directory("vision_msgs")) / "msg" / "Detection3DArray.json"
    if not json_path.exists():
        pytest.skip(f"{json_path} missing: this ROS distro predates type hashes (Humble)")
    hashes = {h["type_name"]: h["hash_string"] for h in json.loads(json_path.read_text())["type_hashes"]}
    assert hashes["vision_msgs/msg/Detection3DArray"] == UPSTREAM_DETECTION3DARRAY_HASH

    # The hash a publisher actually advertises through the RMW must be the same.
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=int(_ros_env()["ROS_DOMAIN_ID"]))
    node = None
    try:
        node = rclpy.create_node("sr3d_type_hash_probe", context=context)
        node.create_publisher(Detection3DArray, "/sr3d_test/type_hash", 1)
        infos = node.get_publishers_info_by_topic("/sr3d_test/type_hash")
        assert infos and infos[0].topic_type == "vision_msgs/msg/Detection3DArray"
        assert str(infos[0].topic_type_hash) == UPSTREAM_DETECTION3DARRAY_HASH
    finally:
        if node is not None:  # destroyed before its context is shut down, also when an assertion failed
            node.destroy_node()
        rclpy.try_shutdown(context=context)


@requires_rclpy
def test_other_interfaces_import() -> None:
    """Every vision_msgs 4.1.x message and tf2_msgs/TFMessage import with their 4.1.x fields."""
    import vision_msgs.msg as vm
    from tf2_msgs.msg import TFMessage

    names = (
        "BoundingBox2D BoundingBox2DArray BoundingBox3D BoundingBox3DArray Classification Detection2D "
        "Detection2DArray Detection3D Detection3DArray LabelInfo ObjectHypothesis "
        "ObjectHypothesisWithPose Point2D Pose2D VisionClass VisionInfo"
    ).split()
    missing = [n for n in names if not hasattr(vm, n)]
    assert not missing, f"vision_msgs lacks {missing}"
    assert vm.LabelInfo.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "class_map": "sequence<vision_msgs/VisionClass>",
        "threshold": "float",
    }
    assert vm.Pose2D.get_fields_and_field_types() == {"position": "vision_msgs/Point2D", "theta": "double"}
    assert TFMessage.get_fields_and_field_types() == {"transforms": "sequence<geometry_msgs/TransformStamped>"}


@requires_rclpy
def test_colcon_build_of_repository(tmp_path: Path) -> None:
    """`colcon build` installs the package the way `ros2 run` / launch_ros expect it."""
    colcon = shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon is not installed (scripts/setup.sh installs it from PyPI)")
    env = _ros_env()
    # colcon and ament look packages up through AMENT_PREFIX_PATH; the venv prefix holds
    # the ROS wheels' and interface packages' share/ trees.
    prefix_path = env.get("AMENT_PREFIX_PATH", "")
    if sys.prefix not in prefix_path.split(os.pathsep):
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (sys.prefix, prefix_path) if p)
    cmd = [
        colcon, "--log-base", str(tmp_path / "log"), "build",
        "--base-paths", str(REPO), "--packages-select", "sr3d_ros",
        "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
    ]  # fmt: skip
    # CPU seconds, not wall-clock ones: a busy machine stretches the wall clock, not the work the build does.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=PATIENCE_S)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    assert proc.returncode == 0, proc.stdout + proc.stderr

    inst = tmp_path / "install" / "sr3d_ros"
    assert (inst / "lib" / "sr3d_ros" / "sr3d_detector_node").is_file()
    assert (inst / "share" / "ament_index" / "resource_index" / "packages" / "sr3d_ros").is_file()
    assert (inst / "share" / "sr3d_ros" / "package.xml").is_file()
    site = next((inst / "lib").glob("python3*/site-packages"))
    for pkg in ("sr3d_core", "sr3d_ros"):
        assert (site / pkg / "__init__.py").is_file(), f"{pkg} not installed by colcon"
    # colcon build compiles the engine ahead of time: the installed package never compiles at run time.
    for lib in (
        "sr3d_core/sparse/libsr3d_sparse.so",
        "sr3d_core/geometry/libsr3d_geometry.so",
        "sr3d_ros/libsr3d_records.so",
    ):
        assert (site / lib).is_file(), f"{lib} not built by colcon build"
    # The same globs as setup.py's data_files: files added later must be installed too.
    for sub, patterns in (
        ("config", ("*.yaml", "*.rviz", "*.xml")),
        ("config/models", ("*.yaml",)),
        ("launch", ("*.launch.py",)),
    ):
        src = sorted(p.name for pat in patterns for p in (REPO / sub).glob(pat) if p.is_file())
        dst = sorted(p.name for pat in patterns for p in (inst / "share" / "sr3d_ros" / sub).glob(pat) if p.is_file())
        assert src == dst, f"share/sr3d_ros/{sub}: expected {src}, got {dst}"
    assert cpu_s < 60, f"colcon build used {cpu_s:.1f} CPU seconds"
