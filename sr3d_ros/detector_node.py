"""The SR3D detector node: PointCloud2 in, vision_msgs/Detection3DArray (+ markers, diagnostics) out.

Two entry points share one implementation (``_DetectorLogic``): ``main`` runs a lifecycle node (configure
loads the checkpoint, activate subscribes; ``autostart`` does both at start) and ``main_plain`` a plain node
that configures and activates in its constructor. The node holds the parameters, the lifecycle, the publishers and
the diagnostics; the frames run on ``sr3d_ros.runner.FrameRunner``'s thread, which takes the newest cloud itself
when it is ready for the next frame (``sr3d_ros.inbox``), and the node publishes each result from its callback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64, Header
from std_srvs.srv import SetBool
from vision_msgs.msg import Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

from sr3d_ros import spin
from sr3d_ros.conversions import MessagePool, detections_to_markers, detections_to_msg, label_info_msg
from sr3d_ros.diagnostics import FrameStats, InputWatch
from sr3d_ros.inbox import CloudInbox
from sr3d_ros.params import (
    NodeParams,
    ParameterError,
    check_command_line,
    default_params_path,
    expanded_remaps,
    input_qos,
    load_defaults,
    runtime_parameters,
)
from sr3d_ros.pipeline import FramePipeline
from sr3d_ros.runner import FrameOutcome, FrameRunner
from sr3d_ros.tf_lookup import TfLookup, make_tf_lookup

if TYPE_CHECKING:  # torch loads with the model at configure, not at import
    from sr3d_core.inference import Detector


class _DetectorLogic:
    """Everything the two node flavours share; mixed into an rclpy ``Node`` or ``LifecycleNode``."""

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
        self._detector: Detector | None = None
        self._pipeline: FramePipeline | None = None
        self._class_names: tuple[str, ...] = ()
        self._tf: TfLookup | None = None
        self._inbox: CloudInbox | None = None
        self._active = False
        self._enabled = True  # the ~/enable switch: while False the node is active but unsubscribed
        self._enable_srv = None
        self._pubs: dict[str, Any] = {}
        self._timers: list[Any] = []
        self._stats = FrameStats()
        topic = self.resolve_topic_name("~/input/points")
        self._runner = FrameRunner(self._stats, self.get_logger(), topic, self._publish_frame)
        self._watch = InputWatch(
            topic,
            self.count_publishers,
            lambda: [
                name
                for name, types in self.get_topic_names_and_types()
                if "sensor_msgs/msg/PointCloud2" in types and name != topic and self.count_publishers(name)
            ],
            self.get_logger().warning,
            str(default_params_path().parent / "fastdds_large_messages.xml"),
        )
        self._marker_count = 0
        self._messages = MessagePool()  # output messages refilled frame after frame (one publishing thread)
        self._model_params: list[str] = []
        self._defaults_path = default_params_path()
        if argv is not None:
            check_command_line(argv, self.get_name(), self.get_fully_qualified_name())
            for warning in expanded_remaps(argv):
                self.get_logger().warning(warning)
        runtime = runtime_parameters()
        for name, value in load_defaults(self._defaults_path).items():
            desc = NodeParams.__dataclass_fields__[name].metadata["description"]
            # Dynamically typed, so that a value of the wrong type reaches the set-parameters callback, which refuses
            # it naming the parameter, the type and the value (rclpy's own type check names none of them); doubles
            # take integers too (`-p score_threshold:=1`).
            self.declare_parameter(
                name, value, ParameterDescriptor(description=desc, read_only=name not in runtime, dynamic_typing=True)
            )
        self._read_params()  # an override of the wrong type or out of range: refused at start, not at configure
        self.add_on_set_parameters_callback(self._on_set_parameters)

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
        from sr3d_core.inference import Detector  # torch loads with the model, not at import
        from sr3d_core.runtime import choose_device, keep_freed_memory, set_torch_threads

        chosen, warning = choose_device(p.device)
        device = str(chosen)
        if warning:
            log.warning(warning)
        threads = set_torch_threads(p.torch_threads)
        keep_freed_memory()  # frames reuse the heap instead of page-faulting fresh memory in
        try:
            detector = Detector.from_checkpoint(p.checkpoint, device)
        except Exception as err:  # noqa: BLE001 - any load failure becomes one clear message
            raise RuntimeError(f"cannot load checkpoint {p.checkpoint} on {device}: {err}") from err
        self._detector = detector
        self._class_names = tuple(detector.class_names)
        self._check_classes(p.classes)
        self._params = p
        self._apply_postprocess(p)
        self._declare_model_parameters(detector)

        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
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
        log.info(
            f"configured: checkpoint {p.checkpoint} on {device} ({threads} CPU threads), "
            f"classes {list(self._class_names)}, target_frame '{p.target_frame or '<cloud frame>'}'"
            + (f", TF via {self._tf.backend}" if self._tf else "")
        )

    def _activate(self) -> None:
        """Publish the latched label info, start the frame thread and subscribe to the input."""
        p = self._params
        self._publish_label_info()
        self._runner.start(self._pipeline)
        self._active = True
        if self._enabled:
            self._subscribe()
        self.get_logger().info(
            f"active: listening on {self.resolve_topic_name('~/input/points')} ({p.input_qos}, "
            f"depth {p.input_qos_depth})" + ("" if self._enabled else "; disabled by ~/enable")
        )

    def _subscribe(self) -> None:
        """Subscribe to the input (idempotent)."""
        p = self._params
        if self._inbox is None:
            inbox = CloudInbox(
                self, self.resolve_topic_name("~/input/points"), input_qos(p.input_qos, p.input_qos_depth)
            )
            self._watch.subscribed(time.monotonic())
            self._inbox = inbox
            self._runner.attach(inbox)

    def _unsubscribe(self) -> None:
        """Stop receiving (the publisher then sends us nothing)."""
        self._runner.detach()
        inbox, self._inbox = self._inbox, None
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
            "" if self._active else " (takes effect when the node is activated)"
        )
        self.get_logger().info(f"~/enable: {response.message}")
        return response

    def _deactivate(self) -> None:
        """Unsubscribe and stop the frame thread; the model stays loaded (cleanup frees it)."""
        self._active = False
        self._unsubscribe()
        self._runner.stop()

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

    def _declare_model_parameters(self, detector: Detector) -> None:
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
            self.declare_parameter(
                name,
                value,
                ParameterDescriptor(description="from the checkpoint's input contract (0 / zeros = none); read-only"),
                ignore_override=True,
            )
            self._model_params.append(name)

    def _check_classes(self, classes: tuple[str, ...]) -> None:
        unknown = [c for c in classes if c not in self._class_names]
        if unknown:
            raise ParameterError(
                f"parameter 'class_filter': unknown classes {unknown}; the model has " f"{list(self._class_names)}"
            )

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

    # ------------------------------------------------------------------ outputs

    def _publish_frame(self, frame: FrameOutcome) -> None:
        """The runner's result callback (on its thread): publish detections, markers and timings."""
        p = self._params
        if p is None:
            return
        res = frame.result
        det = res.detections
        stamp = frame.header_stamp
        header = Header(stamp=Time(sec=stamp.sec, nanosec=stamp.nanosec), frame_id=res.frame)
        self._pubs["detections"].publish(detections_to_msg(det, header, p.class_id_format, self._messages))
        if self._pubs["markers"].get_subscription_count() > 0:  # markers cost only when someone looks
            self._pubs["markers"].publish(
                detections_to_markers(
                    det, header, self._marker_count, p.marker_lifetime_s, p.marker_line_width, pool=self._messages
                )
            )
            self._marker_count = len(det)
        t3 = time.perf_counter()
        latency_ms = (self.get_clock().now().nanoseconds - res.stamp_ns) * 1e-6
        processing_ms = frame.prepare_ms + (t3 - frame.infer_started) * 1e3
        with self._stats.lock:
            self._stats.processed += 1
            self._stats.processing_ms.append(processing_ms)
            self._stats.model_ms.append(res.model_ms)
            self._stats.latency_ms.append(latency_ms)
        self._pubs["processing"].publish(Float64(data=processing_ms))
        self._pubs["model"].publish(Float64(data=res.model_ms))
        self._pubs["latency"].publish(Float64(data=latency_ms))

    def _publish_label_info(self) -> None:
        if "label_info" in self._pubs and self._params is not None:
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self._params.target_frame)
            self._pubs["label_info"].publish(label_info_msg(self._class_names, header, self._params.score_threshold))

    def stop(self) -> None:
        """At process exit: log one ``key=value`` line of the frame counters (tools parse it), then clean up."""
        counters = self._stats.counters()
        self.get_logger().info("final counters: " + " ".join(f"{k}={v}" for k, v in counters.items()))
        self._cleanup()

    def _publish_diagnostics(self) -> None:
        p, s = self._params, self._stats
        if p is None or "diagnostics" not in self._pubs:
            return
        now = time.monotonic()
        self._watch.watch_publishers(now, self._inbox is not None, p.no_publisher_warn_s)
        values, problems, silent = s.assess(now, p.max_processing_time_ms, p.max_input_age_ms, self._inbox is not None)
        values["enabled"] = str(self._enabled).lower()
        silence = self._watch.silence_problem(now, silent, p.diagnostics_period_s, p.no_data_warn_s, p.input_qos)
        if silence:
            problems.append(silence)
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if problems else DiagnosticStatus.OK,
            name=f"{self.get_fully_qualified_name()}: detector",
            hardware_id=Path(p.checkpoint).name,
            message="; ".join(problems)
            or ("active" if self._inbox is not None else "disabled by ~/enable" if self._active else "inactive"),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        self._pubs["diagnostics"].publish(
            DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status])
        )


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


def main(args: list[str] | None = None) -> None:
    """Console script ``sr3d_detector_node``: the lifecycle node, auto-activated when ``autostart`` is true."""
    stop = spin.init(args)
    try:
        node = DetectorLifecycleNode(argv=spin.command_line(args))
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
            node.get_logger().fatal(
                "autostart: configure failed (see the error above); exiting. Set "
                "autostart:=false to leave the node unconfigured for a lifecycle manager."
            )
            node.destroy_node()
            rclpy.try_shutdown()
            raise SystemExit(1)
    spin.spin(node, node.stop, stop)


def main_plain(args: list[str] | None = None) -> None:
    """Console script ``sr3d_detector_node_plain``: a plain node (no lifecycle), active at once."""
    stop = spin.init(args)
    try:
        node = DetectorNode(argv=spin.command_line(args))
    except Exception as err:  # noqa: BLE001 - report, then exit non-zero
        rclpy.logging.get_logger("sr3d_detector").fatal(str(err))
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    spin.spin(node, node.stop, stop)


if __name__ == "__main__":
    main()
