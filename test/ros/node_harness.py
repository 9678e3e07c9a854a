"""Helpers for the node tests: start the node's console script in its own process and talk to it over DDS."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Float64
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

REPO = Path(__file__).resolve().parents[2]


def node_command(name: str, namespace: str, params: dict[str, Any], remap_input: str,
                 entry: str = "main") -> list[str]:
    """The command line launch_ros runs: console script, node name/namespace, params file, overrides, remap."""
    exe = shutil.which("sr3d_detector_node", path=str(Path(sys.executable).parent))
    head = [exe] if entry == "main" and exe else [
        sys.executable, "-c", f"from sr3d_ros.detector_node import {entry}; {entry}()"]
    args = ["--ros-args", "-r", f"__node:={name}", "-r", f"__ns:={namespace}",
            "--params-file", str(REPO / "config" / "node.yaml")]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    return head + args + ["-r", f"~/input/points:={remap_input}"]


def start_node(cmd: list[str], log_path: Path, drop_env: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start the node process with single-threaded math (2 shared cores) and its log in a file.

    ``drop_env`` names variables the process must not inherit (e.g. the Fast DDS profile, to run it in Fast DDS's
    default configuration).
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    for name in drop_env:
        env.pop(name, None)
    log = open(log_path, "w")  # noqa: SIM115 - closed by the process ending
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_node(proc: subprocess.Popen) -> int:
    """SIGINT (what ros2 launch sends), then SIGKILL if needed; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class Client:
    """A test-side node: publishes clouds and TF, records every output of the detector node."""

    def __init__(self, node_fqn: str, input_topic: str) -> None:
        """Subscribe to all outputs of ``node_fqn`` and spin in a background thread."""
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = Node("sr3d_test_client", context=self.ctx)
        self.fqn = node_fqn
        self.lock = threading.Lock()
        self.detections: list[Detection3DArray] = []
        self.markers: list[MarkerArray] = []
        self.label_info: list[LabelInfo] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.processing: list[float] = []
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        n = self.node
        n.create_subscription(Detection3DArray, f"{node_fqn}/detections", self._keep(self.detections), reliable)
        n.create_subscription(MarkerArray, f"{node_fqn}/markers", self._keep(self.markers), reliable)
        n.create_subscription(LabelInfo, f"{node_fqn}/label_info", self._keep(self.label_info), latched)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._keep(self.diagnostics), reliable)
        n.create_subscription(Float64, f"{node_fqn}/debug/processing_time_ms",
                              lambda m: self.processing.append(m.data), reliable)
        self.cloud_pub = n.create_publisher(PointCloud2, input_topic, reliable)
        self.tf_static_pub = n.create_publisher(TFMessage, "/tf_static", latched)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(n)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.ctx.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                return

    def _keep(self, store: list) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            with self.lock:
                store.append(msg)
        return cb

    def wait_for(self, predicate: Callable[[], Any], timeout: float, proc: subprocess.Popen | None = None) -> Any:
        """Poll ``predicate`` until truthy (returned) or ``timeout``; fails early if ``proc`` died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                value = predicate()
            if value:
                return value
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"node process exited with {proc.returncode}")
            time.sleep(0.02)
        return None

    def wait_ready(self, proc: subprocess.Popen, timeout: float = 90.0) -> bool:
        """Wait until the node's subscription matched our publisher and its outputs reached us (latched info)."""
        return bool(self.wait_for(lambda: self.cloud_pub.get_subscription_count() > 0 and self.label_info
                                  and self.node.count_publishers(f"{self.fqn}/detections") > 0, timeout, proc))

    def detection_at(self, stamp_sec: int, nanosec: int = 0) -> Detection3DArray | None:
        """The received detections with this stamp, if any."""
        return next((d for d in self.detections if (d.header.stamp.sec, d.header.stamp.nanosec)
                     == (stamp_sec, nanosec)), None)

    def markers_at(self, stamp_sec: int) -> MarkerArray | None:
        """The received marker array for this stamp, if any."""
        return next((m for m in self.markers if m.markers and m.markers[0].header.stamp.sec == stamp_sec), None)

    def latest_diagnostic_values(self) -> dict[str, str] | None:
        """Key/values of the newest diagnostics status of the detector node."""
        for arr in reversed(self.diagnostics):
            for st in arr.status:
                if st.name.startswith(self.fqn):
                    return {kv.key: kv.value for kv in st.values} | {"_level": st.level, "_message": st.message}
        return None

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 10.0) -> Any:
        """Call a service of the node and wait for the response."""
        cli = self.node.create_client(srv_type, name)
        try:
            assert cli.wait_for_service(timeout_sec=timeout), f"service {name} not available"
            fut = cli.call_async(request)
            deadline = time.monotonic() + timeout
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert fut.done(), f"service {name} did not answer"
            return fut.result()
        finally:
            self.node.destroy_client(cli)

    def set_parameters(self, **values: Any) -> list[Any]:
        """Set parameters through the node's parameter service; returns the SetParametersResult list."""
        req = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        return self.call(SetParameters, f"{self.fqn}/set_parameters", req).results

    def get_parameters(self, *names: str) -> dict[str, Any]:
        """Read parameters through the node's parameter service."""
        res = self.call(GetParameters, f"{self.fqn}/get_parameters", GetParameters.Request(names=list(names)))
        return {n: Parameter.from_parameter_msg(ParameterMsg(name=n, value=v)).value
                for n, v in zip(names, res.values)}

    def lifecycle(self, transition_id: int) -> bool:
        """Trigger a lifecycle transition (lifecycle_msgs/Transition id)."""
        req = ChangeState.Request()
        req.transition.id = transition_id
        return self.call(ChangeState, f"{self.fqn}/change_state", req).success

    def state(self) -> str:
        """The lifecycle state label."""
        return self.call(GetState, f"{self.fqn}/get_state", GetState.Request()).current_state.label

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.ctx.try_shutdown()
        self._thread.join(timeout=5)
