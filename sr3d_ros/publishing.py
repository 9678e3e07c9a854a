"""The detector node's output topics and what it publishes on them for each frame.

``create_publishers`` makes the node's publishers (topics and QoS in one place); ``FramePublisher`` turns each
processed frame into its messages (detections, markers while someone subscribes, timings) and counts it in the
node's ``FrameStats``. It runs on the frame thread, the only thread that publishes frames, so the messages it
refills (``MessagePool``) are never shared.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64, Header
from vision_msgs.msg import Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

from sr3d_ros.conversions import MessagePool, detections_to_markers, detections_to_msg
from sr3d_ros.diagnostics import FrameStats
from sr3d_ros.params import NodeParams
from sr3d_ros.runner import FrameOutcome


def create_publishers(node: Any) -> dict[str, Any]:
    """Create the node's publishers: detections, latched label info, markers, timings and ``/diagnostics``.

    Args:
        node: the rclpy node that publishes (``~`` topics are under its name).

    Returns:
        The publishers by role: ``detections``, ``label_info``, ``markers``, ``processing``, ``model``,
        ``latency`` and ``diagnostics``.
    """
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return {
        "detections": node.create_publisher(Detection3DArray, "~/detections", reliable),
        "label_info": node.create_publisher(LabelInfo, "~/label_info", latched),
        "markers": node.create_publisher(MarkerArray, "~/markers", reliable),
        "processing": node.create_publisher(Float64, "~/debug/processing_time_ms", reliable),
        "model": node.create_publisher(Float64, "~/debug/model_time_ms", reliable),
        "latency": node.create_publisher(Float64, "~/debug/pipeline_latency_ms", reliable),
        "diagnostics": node.create_publisher(DiagnosticArray, "/diagnostics", reliable),
    }


class FramePublisher:
    """Publishes each processed frame: detections, markers (only while subscribed) and the three timings.

    Args:
        stats: the node's counters; each published frame counts as processed, with its timings.
        clock: the node's clock (the latency is measured from the cloud's stamp on it).
    """

    def __init__(self, stats: FrameStats, clock: Any) -> None:
        self._stats = stats
        self._clock = clock
        self._marker_count = 0  # markers of the previous frame, deleted when this one has fewer
        self._messages = MessagePool()  # output messages refilled frame after frame (one publishing thread)

    def publish(self, frame: FrameOutcome, p: NodeParams, pubs: Mapping[str, Any]) -> None:
        """Publish one frame's messages and count it.

        Args:
            frame: the runner's outcome for the frame.
            p: the parameters in force (output format, marker look).
            pubs: the publishers of ``create_publishers``.
        """
        res = frame.result
        det = res.detections
        stamp = frame.header_stamp
        header = Header(stamp=Time(sec=stamp.sec, nanosec=stamp.nanosec), frame_id=res.frame)
        pubs["detections"].publish(detections_to_msg(det, header, p.class_id_format, self._messages))
        if pubs["markers"].get_subscription_count() > 0:  # markers cost only when someone looks
            pubs["markers"].publish(
                detections_to_markers(
                    det, header, self._marker_count, p.marker_lifetime_s, p.marker_line_width, pool=self._messages
                )
            )
            self._marker_count = len(det)
        t3 = time.perf_counter()
        latency_ms = (self._clock.now().nanoseconds - res.stamp_ns) * 1e-6
        processing_ms = frame.prepare_ms + (t3 - frame.infer_started) * 1e3
        with self._stats.lock:
            self._stats.processed += 1
            self._stats.processing_ms.append(processing_ms)
            self._stats.model_ms.append(res.model_ms)
            self._stats.latency_ms.append(latency_ms)
        pubs["processing"].publish(Float64(data=processing_ms))
        pubs["model"].publish(Float64(data=res.model_ms))
        pubs["latency"].publish(Float64(data=latency_ms))
