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
from children import PATIENCE_S, died, output_of, stop, track  # noqa: E402
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


def node_command(name: str, namespace: str, params: dict[str, Any], remap_input: str, entry: str = "main") -> list[str]:
    """The command line launch_ros runs: console script, node name/namespace, params file, overrides, remap."""
    exe = shutil.which("sr3d_detector_node", path=str(Path(sys.executable).parent))
    head = (
        [exe]
        if entry == "main" and exe
        else [sys.executable, "-c", f"from sr3d_ros.detector_node import {entry}; {entry}()"]
    )
    args = [
        "--ros-args",
        "-r",
        f"__node:={name}",
        "-r",
        f"__ns:={namespace}",
        "--params-file",
        str(REPO / "config" / "node.yaml"),
    ]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    return head + args + ["-r", f"~/input/points:={remap_input}"]


def start_node(cmd: list[str], log_path: Path, drop_env: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start the node process with single-threaded math (2 shared cores) and its log in a file.

    ``drop_env`` names variables the process must not inherit (e.g. the Fast DDS profile, to run it in Fast DDS's
    default configuration). The process is tracked (``children.track``): failure messages quote its log, and
    ``test/ros/conftest.py`` kills it after its module if the test's own clean-up never ran.
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    for name in drop_env:
        env.pop(name, None)
    with open(log_path, "w") as log:  # the child writes through its own copy of the descriptor
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return track(proc, log_path)


def stop_node(proc: subprocess.Popen) -> int:
    """SIGINT (what ros2 launch sends), then SIGKILL only if the node is stuck; returns the exit code.

    A slow machine may take long to stop the node; only ``PATIENCE_S`` without an exit counts as stuck.
    """
    return stop(proc, signal.SIGINT)


# Every Client not closed yet, so a test that failed before its clean-up cannot leave one spinning (``close_all``).
_OPEN: list["Client"] = []


class Client:
    """A test-side node: publishes clouds and TF, records every output of the detector node.

    Use it as a context manager (or call ``close``): a context that is never shut down leaves its executor thread
    spinning when the interpreter exits, and the process then aborts ("terminate called without an active
    exception", a C++ thread still joinable at exit).
    """

    def __init__(self, node_fqn: str, input_topic: str) -> None:
        """Subscribe to all outputs of ``node_fqn`` and spin in a background thread."""
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.fqn = node_fqn
        self.proc: subprocess.Popen | None = None  # the node's process, once ``wait_ready`` or ``watch`` named it
        self.ready_at: float | None = None  # time.monotonic() when the node was first seen ready
        self.lock = threading.Lock()
        self.detections: list[Detection3DArray] = []
        self.markers: list[MarkerArray] = []
        self.label_info: list[LabelInfo] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.processing: list[float] = []
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.node: Node | None = None
        self.executor: SingleThreadedExecutor | None = None
        try:
            self.node = n = Node("sr3d_test_client", context=self.ctx)
            reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
            latched = QoSProfile(
                depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
            )
            n.create_subscription(Detection3DArray, f"{node_fqn}/detections", self._keep(self.detections), reliable)
            n.create_subscription(MarkerArray, f"{node_fqn}/markers", self._keep(self.markers), reliable)
            n.create_subscription(LabelInfo, f"{node_fqn}/label_info", self._keep(self.label_info), latched)
            n.create_subscription(DiagnosticArray, "/diagnostics", self._keep(self.diagnostics), reliable)
            n.create_subscription(
                Float64, f"{node_fqn}/debug/processing_time_ms", lambda m: self.processing.append(m.data), reliable
            )
            self.cloud_pub = n.create_publisher(PointCloud2, input_topic, reliable)
            self.tf_static_pub = n.create_publisher(TFMessage, "/tf_static", latched)
            self.executor = SingleThreadedExecutor(context=self.ctx)
            self.executor.add_node(n)
            self._thread = threading.Thread(target=self._spin, name=f"client of {node_fqn}", daemon=True)
            self._thread.start()
        except BaseException:
            self.close()
            raise
        _OPEN.append(self)

    def __enter__(self) -> "Client":
        """The client itself; ``close`` runs on leaving the block, whatever raised."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the client (see ``close``)."""
        self.close()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.ctx.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                return

    def _keep(self, store: list) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            with self.lock:
                store.append(msg)

        return cb

    def watch(self, proc: subprocess.Popen) -> None:
        """Name the node's process: every later wait fails at once, with its log, when it exits."""
        self.proc = proc

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = PATIENCE_S, proc: subprocess.Popen | None = None
    ) -> Any:
        """Poll ``predicate`` until truthy (returned) or ``timeout`` (None).

        Fails at once, quoting the node's log, when ``proc`` (default: the watched process) exited. ``timeout``
        bounds a wait that succeeds unless the node is broken; a slow machine only makes it last longer.
        """
        proc = proc or self.proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                value = predicate()
            if value:
                return value
            if proc is not None and proc.poll() is not None:
                raise AssertionError(died(proc, "the node process"))
            time.sleep(0.02)
        return None

    def wait_ready(self, proc: subprocess.Popen, input_matched: bool = True, bound: float = PATIENCE_S) -> float:
        """Wait until the node is active: its detections publisher is in the graph, its latched label info reached
        us, and (``input_matched``) its input subscription matched our cloud publisher.

        These are the node's own readiness signals, however long its start-up takes (importing torch alone can
        take a minute on a busy machine): the wait fails at once when the process exits, and only ``bound``
        seconds without either counts as stuck.

        Returns:
            ``time.monotonic()`` when the node was seen ready (also kept as ``ready_at``): the start of any
            timing the test checks.

        Raises:
            AssertionError: the process exited, or ``bound`` passed, with the node's log.
        """
        self.watch(proc)
        ok = self.wait_for(
            lambda: self.label_info
            and self.node.count_publishers(f"{self.fqn}/detections") > 0
            and (not input_matched or self.cloud_pub.get_subscription_count() > 0),
            bound,
            proc,
        )
        assert ok, f"the node was not active after {bound:.0f} s (stuck); its log:\n{output_of(proc)}"
        self.ready_at = time.monotonic()
        return self.ready_at

    def wait_for_service(self, name: str, proc: subprocess.Popen | None = None, bound: float = PATIENCE_S) -> float:
        """Wait until the service ``name`` is in the graph (the node's readiness for a manager); returns
        ``time.monotonic()`` then. Fails at once when the node's process exits."""
        fq = name if name.startswith("/") else f"/{name}"
        ok = self.wait_for(lambda: any(s == fq for s, _ in self.node.get_service_names_and_types()), bound, proc)
        assert ok, f"service {fq} not in the graph after {bound:.0f} s; its log:\n{output_of(proc or self.proc)}"
        return time.monotonic()

    def detection_at(self, stamp_sec: int, nanosec: int = 0) -> Detection3DArray | None:
        """The received detections with this stamp, if any."""
        return next(
            (d for d in self.detections if (d.header.stamp.sec, d.header.stamp.nanosec) == (stamp_sec, nanosec)), None
        )

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

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = PATIENCE_S) -> Any:
        """Call a service of the node and wait for the response (failing at once if the watched process exits)."""
        cli = self.node.create_client(srv_type, name)
        try:
            assert self.wait_for(cli.service_is_ready, timeout), f"service {name} not available"
            fut = cli.call_async(request)
            assert self.wait_for(fut.done, timeout), f"service {name} did not answer"
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
        return {n: Parameter.from_parameter_msg(ParameterMsg(name=n, value=v)).value for n, v in zip(names, res.values)}

    def lifecycle(self, transition_id: int) -> bool:
        """Trigger a lifecycle transition (lifecycle_msgs/Transition id)."""
        req = ChangeState.Request()
        req.transition.id = transition_id
        return self.call(ChangeState, f"{self.fqn}/change_state", req).success

    def state(self) -> str:
        """The lifecycle state label."""
        return self.call(GetState, f"{self.fqn}/get_state", GetState.Request()).current_state.label

    def close(self) -> None:
        """Stop and join the spin thread, then destroy the node and shut the context down (idempotent).

        In this order: the executor is idle once the thread is joined, so nothing uses the node while it is destroyed,
        and no thread is left for the interpreter's exit.
        """
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        try:
            if self._thread is not None:
                self._thread.join(PATIENCE_S)
                assert not self._thread.is_alive(), "the client's spin thread did not stop"
        finally:
            try:
                if self.executor is not None:
                    self.executor.shutdown()
                if self.node is not None:
                    self.node.destroy_node()
            finally:
                self.ctx.try_shutdown()
                if self in _OPEN:
                    _OPEN.remove(self)


def close_all() -> int:
    """Close every client a test left open (its clean-up never ran); returns how many there were."""
    left = list(_OPEN)
    for client in left:
        client.close()
    return len(left)
