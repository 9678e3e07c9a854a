"""The SR3D detector node: PointCloud2 in, vision_msgs/Detection3DArray (+ markers, diagnostics) out.

Two entry points share one implementation (``_DetectorLogic``): ``main`` runs a lifecycle node (configure
loads the checkpoint, activate subscribes; ``autostart`` does both at start) and ``main_plain`` a plain node
that configures and activates in its constructor. The node holds the parameters (``sr3d_ros.node_params``), the
lifecycle, the publishers (``sr3d_ros.publishing``) and the diagnostics; the frames run on
``sr3d_ros.runner.FrameRunner``'s thread, which takes the newest cloud itself when it is ready for the next frame
(``sr3d_ros.inbox``), and the node publishes each result from its callback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from std_msgs.msg import Header
from std_srvs.srv import SetBool

from sr3d_ros import spin
from sr3d_ros.conversions import label_info_msg
from sr3d_ros.diagnostics import FrameStats, InputWatch
from sr3d_ros.inbox import CloudInbox
from sr3d_ros.node_params import NodeParameters
from sr3d_ros.params import NodeParams, default_params_path, input_qos
from sr3d_ros.pipeline import FramePipeline
from sr3d_ros.publishing import FramePublisher, create_publishers
from sr3d_ros.runner import FrameOutcome, FrameRunner
from sr3d_ros.tf_lookup import TfLookup, make_tf_lookup


class _DetectorLogic:
    """Everything the two node flavours share; mixed into an rclpy ``Node`` or ``LifecycleNode``."""

    # ------------------------------------------------------------------ setup and transitions

    def _declare(self, argv: list[str] | None = None) -> None:
        """Set up the node's state and declare its parameters (``NodeParameters.declare``).

        Args:
            argv: the process's command line (``main`` passes it), checked for values of the wrong type.

        Raises:
            ParameterError: a parameter value of the wrong type or out of range (the message names it).
        """
        self._settings = NodeParameters(self, self._on_params_changed)
        self._pipeline: FramePipeline | None = None
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
        self._frames = FramePublisher(self._stats, self.get_clock())
        self._settings.declare(argv)

    @property
    def _params(self) -> NodeParams | None:
        """The parameters in force while configured; None while unconfigured."""
        return self._settings.current

    def _configure(self) -> None:
        """Validate parameters, load the checkpoint, create publishers and the TF listener.

        Raises:
            ParameterError: a parameter is invalid (the message names it).
            RuntimeError: the checkpoint cannot be loaded (the message names the path).
        """
        device, threads = self._settings.load_model()
        p, detector = self._settings.current, self._settings.detector
        self._pubs = create_publishers(self)
        self._enable_srv = self.create_service(SetBool, "~/enable", self._on_enable)
        if p.target_frame:
            self._tf = make_tf_lookup(self, p.tf_fallback_latest)
        self._pipeline = FramePipeline(detector, p.target_frame, self._tf, p.tf_timeout_s, p.classes, p.missing_color)
        self._timers.append(self.create_timer(p.diagnostics_period_s, self._publish_diagnostics))
        self._stats.start_period(time.monotonic())
        self.get_logger().info(
            f"configured: checkpoint {p.checkpoint} on {device} ({threads} CPU threads), "
            f"classes {list(self._settings.class_names)}, target_frame '{p.target_frame or '<cloud frame>'}'"
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
        self._pipeline = None
        self._settings.release_model()

    def _on_params_changed(self, old: NodeParams, new: NodeParams) -> None:
        """A runtime change was applied to the model: update the class filter and the latched label info."""
        if self._pipeline is not None:
            self._pipeline.classes = new.classes
        if new.score_threshold != old.score_threshold:
            self._publish_label_info()

    # ------------------------------------------------------------------ outputs

    def _publish_frame(self, frame: FrameOutcome) -> None:
        """The runner's result callback (on its thread): publish detections, markers and timings."""
        p = self._params
        if p is not None:
            self._frames.publish(frame, p, self._pubs)

    def _publish_label_info(self) -> None:
        p = self._params
        if "label_info" in self._pubs and p is not None:
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=p.target_frame)
            self._pubs["label_info"].publish(label_info_msg(self._settings.class_names, header, p.score_threshold))

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
