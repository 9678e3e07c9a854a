"""The SR3D detector node: PointCloud2 in, vision_msgs/Detection3DArray (+ markers, diagnostics) out.

Two entry points share one implementation (``_DetectorLogic``): ``main`` runs a lifecycle node (configure
loads the checkpoint, activate subscribes; ``autostart`` does both at start) and ``main_plain`` a plain node
that configures and activates in its constructor.

Latency policy: the inference thread takes the newest cloud itself when it is ready for the next frame
(``sr3d_ros.inbox``: the input subscription is on a helper node ``<name>_input`` that no executor spins, so the
executor never copies a cloud); DDS keeps only the newest clouds meanwhile. A cloud replaced before it is taken
is dropped and counted (from its publisher's sequence numbers); nothing is queued and no frame is inferred twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float64, Header
from std_srvs.srv import SetBool
from vision_msgs.msg import Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

from sr3d_ros.cdr import SerializedCloud, parse_pointcloud2
from sr3d_ros.conversions import (
    MalformedCloudError,
    MessagePool,
    detections_to_markers,
    detections_to_msg,
    label_info_msg,
    stamp_ns,
)
from sr3d_ros.diagnostics import FrameStats
from sr3d_ros.inbox import CloudInbox
from sr3d_ros.params import (
    NodeParams,
    ParameterError,
    check_command_line,
    default_params_path,
    load_defaults,
    runtime_parameters,
)
from sr3d_ros.pipeline import FramePipeline, PreparedFrame
from sr3d_ros.tf_lookup import TfLookup, TransformUnavailable, make_tf_lookup

DetectorFactory = Callable[[str, str], Any]


def load_detector(checkpoint: str, device: str) -> Any:
    """Default factory: ``sr3d_core.inference.Detector.from_checkpoint``."""
    from sr3d_core.inference import Detector

    return Detector.from_checkpoint(checkpoint, device)


def set_torch_threads(requested: int) -> int:
    """Set torch's intra-op threads: ``requested``, or for 0 all usable cores but one; returns the count.

    OpenMP pools spin-wait: when the executor and DDS threads take a core the pool needs, a frame takes several
    times longer (measured 5.6 s instead of 0.8 s per frame on 2 cores with a 30 Hz input), so auto leaves one.
    """
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = requested or min(torch.get_num_threads(), max(1, cores - 1))
    torch.set_num_threads(n)
    return n


def input_qos(preset: str, depth: int) -> QoSProfile:
    """The subscription QoS for a preset name (``sensor_data`` = best effort, volatile)."""
    base = {"sensor_data": qos_profile_sensor_data, "system_default": qos_profile_system_default}.get(preset)
    if base is not None:
        return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=base.reliability,
                          durability=base.durability)
    reliability = ReliabilityPolicy.BEST_EFFORT if preset == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


class _DetectorLogic:
    """Everything the two node flavours share; mixed into an rclpy ``Node`` or ``LifecycleNode``."""

    _detector_factory: DetectorFactory = staticmethod(load_detector)

    # ------------------------------------------------------------------ setup and transitions

    def _declare(self, argv: list[str] | None = None) -> None:
        """Declare every parameter with its default from config/node.yaml (the one home of defaults).

        Args:
            argv: the process's command line (``main`` passes it): a value of the wrong type on it is refused
                (rcl would drop it without a word when another source set the parameter), and a remap rule that
                the shell tilde-expanded is reported.

        Raises:
            ParameterError: a parameter value of the wrong type or out of range (the message names it).
        """
        self._params: NodeParams | None = None
        self._detector: Any = None
        self._pipeline: FramePipeline | None = None
        self._silent_since: float | None = None  # a publisher exists on the input but nothing arrives
        self._silence_logged = False
        self._unpublished_since: float | None = None  # subscribed, and nobody publishes on the input
        self._unpublished_warned: float | None = None
        self._class_names: tuple[str, ...] = ()
        self._tf: TfLookup | None = None
        self._inbox: CloudInbox | None = None
        self._active = False
        self._enabled = True  # the ~/enable switch: while False the node is active but unsubscribed
        self._enable_srv = None
        self._pubs: dict[str, Any] = {}
        self._timers: list[Any] = []
        self._worker: threading.Thread | None = None
        self._infer_worker: threading.Thread | None = None  # the second stage (pipeline_stages: 2)
        self._ready: PreparedFrame | None = None  # a prepared frame waiting for the network
        self._ready_prepare_ms = 0.0
        self._cond = threading.Condition()
        self._running = False
        self._stats = FrameStats()
        self._logged_kinds: set[str] = set()
        self._marker_count = 0
        self._messages = MessagePool()  # output messages refilled frame after frame (one publishing thread)
        self._model_params: list[str] = []
        self._defaults_path = default_params_path()
        if argv is not None:
            check_command_line(argv, self.get_name(), self.get_fully_qualified_name())
            self._warn_expanded_remaps(argv)
        runtime = runtime_parameters()
        for name, value in load_defaults(self._defaults_path).items():
            desc = NodeParams.__dataclass_fields__[name].metadata["description"]
            # Dynamically typed, so that a value of the wrong type reaches the set-parameters callback, which refuses
            # it naming the parameter, the type and the value (rclpy's own type check names none of them); doubles
            # take integers too (`-p score_threshold:=1`).
            self.declare_parameter(name, value, ParameterDescriptor(
                description=desc, read_only=name not in runtime, dynamic_typing=True))
        self._read_params()  # an override of the wrong type or out of range: refused at start, not at configure
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _warn_expanded_remaps(self, argv: list[str]) -> None:
        """Warn about remap rules that start with the home directory: an unquoted ``~`` the shell expanded."""
        home = os.path.expanduser("~").rstrip("/")
        if not home or home == "~":
            return
        for i, arg in enumerate(argv[:-1]):
            rule = argv[i + 1]
            if arg in ("-r", "--remap") and rule.startswith(home + "/") and ":=" in rule:
                fixed = "~" + rule[len(home):]
                self.get_logger().warning(
                    f"remap rule '{rule}' starts with your home directory {home}: the shell expanded an unquoted "
                    f"'~', so the rule matches no topic of this node. Quote it: -r '{fixed}'")

    def _read_params(self) -> NodeParams:
        names = [f for f in NodeParams.__dataclass_fields__]
        return NodeParams.from_mapping({n: self.get_parameter(n).value for n in names})

    def _configure(self) -> None:
        """Validate parameters, load the checkpoint, create publishers and the TF listener.

        Raises:
            ParameterError: a parameter is invalid (the message names it).
            RuntimeError: the checkpoint cannot be loaded (the message names the path).
        """
        p = self._read_params()
        log = self.get_logger()
        if not p.checkpoint:
            raise ParameterError("parameter 'checkpoint' is empty: pass -p checkpoint:=/path/to/model.pt")
        if not Path(p.checkpoint).is_file():
            raise ParameterError(f"parameter 'checkpoint': no such file {p.checkpoint}")
        from sr3d_core.inference import choose_device  # torch loads with the model, not at import
        from sr3d_core.runtime import keep_freed_memory

        chosen, warning = choose_device(p.device)
        device = str(chosen)
        if warning:
            log.warning(warning)
        threads = set_torch_threads(p.torch_threads)
        keep_freed_memory()  # frames reuse the heap instead of page-faulting fresh memory in
        try:
            detector = self._detector_factory(p.checkpoint, device)
        except Exception as err:  # noqa: BLE001 - any load failure becomes one clear message
            raise RuntimeError(f"cannot load checkpoint {p.checkpoint} on {device}: {err}") from err
        self._detector = detector
        self._class_names = tuple(detector.class_names)
        self._check_classes(p.classes)
        self._params = p
        self._apply_postprocess(p)
        self._declare_model_parameters(detector)

        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pubs = {
            "detections": self.create_publisher(Detection3DArray, "~/detections", reliable),
            "label_info": self.create_publisher(LabelInfo, "~/label_info", latched),
            "markers": self.create_publisher(MarkerArray, "~/markers", reliable),
            "processing": self.create_publisher(Float64, "~/debug/processing_time_ms", reliable),
            "model": self.create_publisher(Float64, "~/debug/model_time_ms", reliable),
            "latency": self.create_publisher(Float64, "~/debug/pipeline_latency_ms", reliable),
            "diagnostics": self.create_publisher(DiagnosticArray, "/diagnostics", reliable),
        }
        self._enable_srv = self.create_service(SetBool, "~/enable", self._on_enable)
        if p.target_frame:
            self._tf = make_tf_lookup(self, p.tf_fallback_latest)
        self._pipeline = FramePipeline(detector, p.target_frame, self._tf, p.tf_timeout_s, p.classes, p.missing_color)
        self._timers.append(self.create_timer(p.diagnostics_period_s, self._publish_diagnostics))
        self._stats.start_period(time.monotonic())
        log.info(f"configured: checkpoint {p.checkpoint} on {device} ({threads} CPU threads), "
                 f"classes {list(self._class_names)}, target_frame '{p.target_frame or '<cloud frame>'}'"
                 + (f", TF via {self._tf.backend}" if self._tf else ""))

    def _activate(self) -> None:
        """Publish the latched label info, start the worker and subscribe to the input."""
        p = self._params
        self._publish_label_info()
        self._running = True
        two_stage = p.pipeline_stages == 2
        self._worker = threading.Thread(target=self._work, args=(two_stage,), name="sr3d_inference", daemon=True)
        self._worker.start()
        if two_stage:
            self._infer_worker = threading.Thread(target=self._infer_work, name="sr3d_network", daemon=True)
            self._infer_worker.start()
        self._active = True
        if self._enabled:
            self._subscribe()
        self.get_logger().info(f"active: listening on {self.resolve_topic_name('~/input/points')} ({p.input_qos}, "
                               f"depth {p.input_qos_depth})" + ("" if self._enabled else "; disabled by ~/enable"))

    def _subscribe(self) -> None:
        """Subscribe to the input (idempotent)."""
        p = self._params
        if self._inbox is None:
            inbox = CloudInbox(self, self.resolve_topic_name("~/input/points"),
                               input_qos(p.input_qos, p.input_qos_depth))
            self._unpublished_since, self._unpublished_warned = time.monotonic(), None
            with self._cond:
                self._inbox = inbox
                self._cond.notify_all()

    def _unsubscribe(self) -> None:
        """Stop receiving (the publisher then sends us nothing) and forget a frame still waiting."""
        with self._cond:
            inbox, self._inbox = self._inbox, None
            self._ready = None
        if inbox is not None:
            inbox.close()

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """``~/enable``: a light switch. Off unsubscribes from the input (no bandwidth, no inference); the model
        stays loaded, so switching on again is instant. Remembered across deactivate/activate."""
        was, self._enabled = self._enabled, bool(request.data)
        if self._active and self._enabled:
            self._subscribe()
        elif self._active:
            self._unsubscribe()
        word = "enabled" if self._enabled else "disabled"
        response.success = True
        response.message = (f"already {word}" if was == self._enabled else word) + (
            "" if self._active else " (takes effect when the node is activated)")
        self.get_logger().info(f"~/enable: {response.message}")
        return response

    def _deactivate(self) -> None:
        """Unsubscribe and stop the worker; the model stays loaded (cleanup frees it)."""
        self._active = False
        self._unsubscribe()  # also forgets a prepared frame still waiting
        with self._cond:
            self._running = False
            self._cond.notify_all()
        for worker in (self._worker, self._infer_worker):
            if worker is not None:
                worker.join(timeout=10.0)
        self._worker = self._infer_worker = None

    def _cleanup(self) -> None:
        """Free the model, publishers, timers and TF listener (back to unconfigured)."""
        self._deactivate()
        for t in self._timers:
            self.destroy_timer(t)
        self._timers = []
        if self._enable_srv is not None:
            self.destroy_service(self._enable_srv)
            self._enable_srv = None
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        if self._tf is not None and hasattr(self._tf, "destroy"):
            self._tf.destroy()
        self._tf = None
        for name in self._model_params:
            self.undeclare_parameter(name)
        self._model_params = []
        self._detector = None
        self._pipeline = None
        self._params = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give VRAM back while unconfigured
        except ImportError:  # pragma: no cover
            pass

    # ------------------------------------------------------------------ parameters

    def _declare_model_parameters(self, detector: Any) -> None:
        """Expose the checkpoint's input contract as read-only ``model.*`` parameters (never overridable)."""
        c = detector.contract
        values = {
            "model.class_names": list(self._class_names),
            "model.voxel_size": float(c.voxel_size),
            "model.use_color": bool(c.use_color),
            "model.max_points": int(c.max_points or 0),
            "model.point_range": [float(v) for v in c.point_range] if c.point_range else [0.0] * 6,
            "model.quantize_dtype": str(c.quantize_dtype),
        }
        for name, value in values.items():
            # Not rclpy read_only (those can never be undeclared, which cleanup needs): the set-parameters
            # callback refuses every change instead.
            self.declare_parameter(name, value, ParameterDescriptor(
                description="from the checkpoint's input contract (0 / zeros = none); read-only"),
                ignore_override=True)
            self._model_params.append(name)

    def _check_classes(self, classes: tuple[str, ...]) -> None:
        unknown = [c for c in classes if c not in self._class_names]
        if unknown:
            raise ParameterError(f"parameter 'class_filter': unknown classes {unknown}; the model has "
                                 f"{list(self._class_names)}")

    def _apply_postprocess(self, p: NodeParams) -> None:
        for name in ("score_threshold", "nms_iou", "max_detections"):
            if hasattr(self._detector, name):
                setattr(self._detector, name, getattr(p, name))

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate and apply runtime changes; read-only ones are refused by rclpy before this."""
        fixed = [p.name for p in params if p.name in self._model_params]
        if fixed:
            return SetParametersResult(successful=False, reason=f"{fixed} come from the checkpoint (read-only)")
        ours = {p.name: p.value for p in params if p.name in NodeParams.__dataclass_fields__}
        if not ours:
            return SetParametersResult(successful=True)
        try:
            if self._params is None:  # unconfigured: validate now, configure will read the values
                self._read_params().replace(**ours)
                return SetParametersResult(successful=True)
            new = self._params.replace(**ours)
            self._check_classes(new.classes)
        except (ParameterError, TypeError, ValueError) as err:
            self._keep_descriptor_types(params)
            return SetParametersResult(successful=False, reason=str(err))
        old, self._params = self._params, new
        self._apply_postprocess(new)
        if self._pipeline is not None:
            self._pipeline.classes = new.classes
        if new.score_threshold != old.score_threshold:
            self._publish_label_info()
        self.get_logger().info(f"parameters changed: {ours}")
        return SetParametersResult(successful=True)

    def _keep_descriptor_types(self, params: list[Parameter]) -> None:
        """Undo what rclpy did before calling us: a dynamically typed descriptor takes the type of every value
        offered, also of one the callback then refuses (``ros2 param describe`` would show it)."""
        for param in params:
            if param.name in NodeParams.__dataclass_fields__ and self.has_parameter(param.name):
                current = self.get_parameter(param.name)
                self.describe_parameter(param.name).type = current.type_.value

    # ------------------------------------------------------------------ data path

    def _next_cloud(self, two_stage: bool) -> tuple[bytes, float] | None:
        """Block until the newest cloud is taken (with two stages, once the network took the previous frame);
        returns it and the milliseconds the take cost, or None when the worker is to stop. Counts the cloud and
        those skipped before it."""
        while True:
            with self._cond:
                while self._running and (self._inbox is None or (two_stage and self._ready is not None)):
                    self._cond.wait()
                if not self._running:
                    return None
                inbox = self._inbox
            try:
                got = inbox.take_newest(timeout_s=0.1)
            except Exception as err:  # noqa: BLE001 - a failing take must not end the worker
                self.get_logger().error(f"taking a cloud failed: {err!r}", throttle_duration_sec=5.0)
                time.sleep(0.1)
                continue
            if got is not None:
                raw, skipped, take_ms = got
                with self._stats.lock:
                    self._stats.received += 1 + skipped
                    self._stats.dropped += skipped
                return raw, take_ms

    def _work(self, two_stage: bool) -> None:
        """First thread: take the newest frame and prepare it; with one stage, also run the network on it.

        With two stages it prepares a frame only once the network thread has taken the previous one, so no
        preparation is wasted on a frame that a newer one would replace, and the newest cloud is always the next.
        """
        while True:
            got = self._next_cloud(two_stage)
            if got is None:
                return
            raw, take_ms = got
            t0 = time.perf_counter()
            msg = self._parse(raw)
            if msg is None:
                continue
            with self._guard(msg.header.stamp):
                prepared = self._prepare(msg)
                prepare_ms = take_ms + (time.perf_counter() - t0) * 1e3  # the take is this thread's work too
                if prepared is None:
                    continue
                if not two_stage:
                    self._finish(prepared, prepare_ms)
                    continue
                with self._cond:
                    self._ready, self._ready_prepare_ms = prepared, prepare_ms
                    self._cond.notify_all()

    def _infer_work(self) -> None:
        """Second thread (two stages): the network, post-processing and publishing of each prepared frame."""
        while True:
            with self._cond:
                while self._running and self._ready is None:
                    self._cond.wait()
                if not self._running:
                    return
                prepared, prepare_ms, self._ready = self._ready, self._ready_prepare_ms, None
                self._cond.notify_all()  # the first thread may prepare the next frame now
            with self._guard(prepared.header_stamp):
                self._finish(prepared, prepare_ms)

    @contextlib.contextmanager
    def _guard(self, stamp: Any) -> Iterator[None]:
        """Count and log (throttled) anything a frame raises: the node must survive every frame."""
        try:
            yield
        except Exception as err:  # noqa: BLE001 - the node must survive anything a frame does
            with self._stats.lock:
                self._stats.errors += 1
            self.get_logger().error(f"frame at {stamp_ns(stamp) * 1e-9:.3f}s failed: {err!r}",
                                    throttle_duration_sec=5.0)

    def _report_malformed(self, err: MalformedCloudError) -> None:
        with self._stats.lock:
            self._stats.malformed[err.kind] = self._stats.malformed.get(err.kind, 0) + 1
        if err.kind not in self._logged_kinds:  # once per kind; diagnostics keep counting
            self._logged_kinds.add(err.kind)
            self.get_logger().warning(f"skipping malformed cloud on {self.resolve_topic_name('~/input/points')}"
                                      f" ({err.kind}): {err.reason}")

    def _parse(self, raw: bytes) -> SerializedCloud | None:
        """The cloud's layout from its serialized bytes; None (reported and counted) when they are not a cloud."""
        try:
            return parse_pointcloud2(raw)
        except MalformedCloudError as err:
            self._report_malformed(err)
            return None

    def _prepare(self, msg: SerializedCloud) -> PreparedFrame | None:
        """Decode, transform and voxelize one cloud; None (reported and counted) when it is skipped."""
        p = self._params
        pipeline = self._pipeline
        if p is None or pipeline is None:
            return None
        try:
            prepared = pipeline.prepare(msg)
        except MalformedCloudError as err:
            self._report_malformed(err)
            return None
        except TransformUnavailable as err:
            with self._stats.lock:
                self._stats.tf_failures += 1
            self.get_logger().warning(f"no transform '{msg.header.frame_id}' -> '{p.target_frame}', frame skipped: "
                                      f"{err}", throttle_duration_sec=2.0)
            return None
        return prepared

    def _finish(self, prepared: PreparedFrame, prepare_ms: float) -> None:
        """Run the network on a prepared frame and publish detections, markers and timings."""
        p = self._params
        pipeline = self._pipeline
        if p is None or pipeline is None:
            return
        t0 = time.perf_counter()
        res = pipeline.infer(prepared)
        for _, level, text in res.notices:  # each kind once per configuration
            if level == "info":  # (rclpy ties one severity to each logging call site)
                self.get_logger().info(text)
            else:
                self.get_logger().warning(text)
        if res.prep is not None and res.prep.out_of_range:
            with self._stats.lock:
                self._stats.points_out_of_range += res.prep.out_of_range
        det, frame = res.detections, res.frame
        stamp = prepared.header_stamp
        header = Header(stamp=Time(sec=stamp.sec, nanosec=stamp.nanosec), frame_id=frame)
        self._pubs["detections"].publish(detections_to_msg(det, header, p.class_id_format, self._messages))
        if self._pubs["markers"].get_subscription_count() > 0:  # markers cost only when someone looks
            self._pubs["markers"].publish(detections_to_markers(det, header, self._marker_count, p.marker_lifetime_s,
                                                                p.marker_line_width, pool=self._messages))
            self._marker_count = len(det)
        t3 = time.perf_counter()
        latency_ms = (self.get_clock().now().nanoseconds - res.stamp_ns) * 1e-6
        processing_ms = prepare_ms + (t3 - t0) * 1e3  # the frame's own work, not its wait between the stages
        with self._stats.lock:
            self._stats.processed += 1
            self._stats.processing_ms.append(processing_ms)
            self._stats.model_ms.append(res.model_ms)
            self._stats.latency_ms.append(latency_ms)
        self._pubs["processing"].publish(Float64(data=processing_ms))
        self._pubs["model"].publish(Float64(data=res.model_ms))
        self._pubs["latency"].publish(Float64(data=latency_ms))

    # ------------------------------------------------------------------ outputs

    def _publish_label_info(self) -> None:
        if "label_info" in self._pubs and self._params is not None:
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self._params.target_frame)
            self._pubs["label_info"].publish(label_info_msg(self._class_names, header, self._params.score_threshold))

    def _log_counters(self) -> None:
        """One ``key=value`` line of the frame counters (at shutdown; tools parse it)."""
        counters = self._stats.counters()
        self.get_logger().info("final counters: " + " ".join(f"{k}={v}" for k, v in counters.items()))

    def _silence_problem(self, now: float, silent: bool, p: NodeParams) -> str:
        """A publisher exists on the input topic but nothing arrives: say why once in the log, and each period
        in /diagnostics (returns the diagnostics text, or "")."""
        topic = self.resolve_topic_name("~/input/points")
        publishers = self.count_publishers(topic) if silent else 0
        if not publishers:
            self._silent_since, self._silence_logged = None, False
            return ""
        if self._silent_since is None:
            self._silent_since = now - p.diagnostics_period_s  # this period was already silent
        waited = now - self._silent_since
        if waited < p.no_data_warn_s:
            return ""
        if not self._silence_logged:
            self._silence_logged = True
            profile = default_params_path().parent / "fastdds_large_messages.xml"
            self.get_logger().warning(
                f"{publishers} publisher(s) on {topic} but no cloud arrived for {waited:.0f} s. Likely causes: "
                f"(1) clouds larger than Fast DDS's default 512 kB shared-memory segment, sent best effort, are "
                f"fragmented over UDP and lost whole: start the camera driver and this node with "
                f"FASTDDS_DEFAULT_PROFILES_FILE={profile} (scripts/env.sh and the launch file set it for the node), "
                f"or publish reliably and set input_qos:=reliable; (2) incompatible QoS: this node subscribes with "
                f"input_qos={p.input_qos}, and a reliable subscription gets nothing from a best-effort publisher")
        return f"publisher on the input but no data for {waited:.0f} s (QoS or DDS segment size, see the log)"

    def _watch_publishers(self, now: float, p: NodeParams) -> None:
        """Warn while the input topic has no publisher: after ``no_publisher_warn_s`` subscribed, then every
        ``no_publisher_warn_s``, naming the PointCloud2 topics that have one (the remap probably missed)."""
        topic = self.resolve_topic_name("~/input/points")
        if self._inbox is None or self.count_publishers(topic):
            self._unpublished_since = now if self._inbox is not None else None
            self._unpublished_warned = None
            return
        if self._unpublished_since is None:
            self._unpublished_since = now
        waited = now - self._unpublished_since
        if waited < p.no_publisher_warn_s or (
                self._unpublished_warned is not None and now - self._unpublished_warned < p.no_publisher_warn_s):
            return
        self._unpublished_warned = now
        clouds = sorted(name for name, types in self.get_topic_names_and_types()
                        if "sensor_msgs/msg/PointCloud2" in types and name != topic and self.count_publishers(name))
        found = (f"PointCloud2 topics with a publisher: {', '.join(clouds)}; remap the input onto one, e.g. "
                 f"-r '~/input/points:={clouds[0]}' (quoted: bash expands an unquoted ~ to your home directory)"
                 if clouds else "no PointCloud2 topic has a publisher yet (is the camera driver running, in this "
                 "ROS_DOMAIN_ID, and discoverable: ROS_AUTOMATIC_DISCOVERY_RANGE?)")
        self.get_logger().warning(f"no publisher on the input {topic} for {waited:.0f} s; {found}")

    def _publish_diagnostics(self) -> None:
        p, s = self._params, self._stats
        if p is None or "diagnostics" not in self._pubs:
            return
        now = time.monotonic()
        self._watch_publishers(now, p)
        values, problems, silent = s.assess(now, p.max_processing_time_ms, p.max_input_age_ms, self._inbox is not None)
        values["enabled"] = str(self._enabled).lower()
        silence = self._silence_problem(now, silent, p)
        if silence:
            problems.append(silence)
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if problems else DiagnosticStatus.OK,
            name=f"{self.get_fully_qualified_name()}: detector", hardware_id=Path(p.checkpoint).name,
            message="; ".join(problems) or ("active" if self._inbox is not None else
                                             "disabled by ~/enable" if self._active else "inactive"),
            values=[KeyValue(key=k, value=v) for k, v in values.items()])
        self._pubs["diagnostics"].publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                          status=[status]))


class DetectorLifecycleNode(_DetectorLogic, LifecycleNode):
    """Lifecycle flavour: configure loads the checkpoint, activate subscribes, cleanup frees the model."""

    def __init__(self, node_name: str = "sr3d_detector", argv: list[str] | None = None, **kwargs: Any) -> None:
        """Declare parameters (checking ``argv``, the command line, when given); transitions are driven by
        ``autostart`` (see ``main``) or a lifecycle manager."""
        super().__init__(node_name, **kwargs)
        self._declare(argv)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load parameters and model; failure leaves the node unconfigured with the reason logged."""
        try:
            self._configure()
        except Exception as err:  # noqa: BLE001
            self.get_logger().error(f"configure failed: {err}")
            self._cleanup()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the data path."""
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the data path."""
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the model."""
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything."""
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS


class DetectorNode(_DetectorLogic, Node):
    """Plain-node flavour: configured and active from construction."""

    def __init__(self, node_name: str = "sr3d_detector", argv: list[str] | None = None, **kwargs: Any) -> None:
        """Declare parameters (checking ``argv``, the command line, when given), load the model and subscribe;
        raises on an invalid configuration."""
        super().__init__(node_name, **kwargs)
        self._declare(argv)
        self._configure()
        self._activate()


class _StopRequest:
    """SIGINT / SIGTERM, caught by the node itself instead of rclpy.

    rclpy's own handlers shut the context down the moment the signal arrives, so everything the node logs while it
    stops (the final counters) fails to reach /rosout ("publisher's context is invalid"). Here a signal only asks the
    spin loop to stop; the node logs, cleans up and is destroyed, and the context is shut down last.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested.set()


def _init(args: list[str] | None) -> _StopRequest:
    """``rclpy.init`` without its signal handlers, and ours in their place."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    return _StopRequest()


def _spin(node: Any, args: list[str] | None, stop: _StopRequest | None = None, period_s: float = 0.2) -> None:
    """Spin until a signal asks to stop (``stop``; else until the context is shut down), then log the final
    counters, clean up, destroy the node and shut the context down, in that order."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # Short waits: the signal handler runs (and sets the event) only between them.
        while (stop is None or not stop.requested.is_set()) and rclpy.ok():
            executor.spin_once(timeout_sec=period_s)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # The context was shut down from elsewhere while a callback (a timer's diagnostics) was publishing, and rcl
        # raises "publisher's context is invalid": a normal stop. With the context still up, it is a real error.
        if rclpy.ok():
            raise
    finally:
        node._log_counters()
        node._cleanup()
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()


def _argv(args: list[str] | None) -> list[str]:
    """The command line rclpy reads: ``args``, or the process's."""
    return list(sys.argv if args is None else args)


def main(args: list[str] | None = None) -> None:
    """Console script ``sr3d_detector_node``: the lifecycle node, auto-activated when ``autostart`` is true."""
    stop = _init(args)
    try:
        node = DetectorLifecycleNode(argv=_argv(args))
    except Exception as err:  # noqa: BLE001 - e.g. a parameter override of the wrong type
        rclpy.logging.get_logger("sr3d_detector").fatal(str(err))
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    if node.get_parameter("autostart").value:
        if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
        else:
            # Under `ros2 launch` an idle node would look healthy: with autostart nobody else will configure it,
            # so exit non-zero (configure already logged the reason, naming the parameter).
            node.get_logger().fatal("autostart: configure failed (see the error above); exiting. Set "
                                    "autostart:=false to leave the node unconfigured for a lifecycle manager.")
            node.destroy_node()
            rclpy.try_shutdown()
            raise SystemExit(1)
    _spin(node, args, stop)


def main_plain(args: list[str] | None = None) -> None:
    """Console script ``sr3d_detector_node_plain``: a plain node (no lifecycle), active at once."""
    stop = _init(args)
    try:
        node = DetectorNode(argv=_argv(args))
    except Exception as err:  # noqa: BLE001 - report, then exit non-zero
        rclpy.logging.get_logger("sr3d_detector").fatal(str(err))
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    _spin(node, args, stop)


if __name__ == "__main__":
    main()
