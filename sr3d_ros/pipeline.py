"""One frame, cloud message in, detections out: the step the node, its benchmark and the replay tool share.

``FramePipeline.process`` applies the checkpoint's point cap before decoding, looks up the transform into the
target frame with TF at the cloud's stamp, decodes the ``PointCloud2`` straight into that frame (feeding a neutral
colour to a colour model when the cloud has none and ``missing_color`` is ``neutral``), runs ``Detector.detect``
and filters classes. It imports no ROS node machinery: the TF look-up is any object with
``lookup(target, source, stamp_ns, timeout_s) -> 4x4``, so the replay tool can feed it a buffer filled from a
bag.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Protocol

import numpy as np

from sr3d_core.detections import Detections
from sr3d_core.preprocess import NEUTRAL_COLOR, PrepareStats, cap_rows, with_neutral_color
from sr3d_ros.conversions import MalformedCloudError, color_fields, pointcloud2_to_array, stamp_ns
from sr3d_ros.params import MISSING_COLOR_MODES

if TYPE_CHECKING:  # torch loads with the model, not when the node or the replay tool imports this module
    from sr3d_core.inference import Detector
    from sr3d_core.sparse.tensor import SparseTensor


class Lookup(Protocol):
    """A TF look-up: the 4x4 transform taking points from ``source`` to ``target`` at ``stamp_ns``."""

    def lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> np.ndarray:
        """Raise ``sr3d_ros.tf_lookup.TransformUnavailable`` when there is none."""


@dataclass
class FrameResult:
    """The outcome of one frame.

    Attributes:
        detections: the detections, in ``frame``.
        frame: the frame the points were inferred in (the target frame, or the cloud's own).
        stamp_ns: the cloud's stamp.
        decode_ms / tf_ms / model_ms: time spent decoding the points (and transforming them: one pass), looking
            the transform up, and in ``Detector.detect``.
        prep: what preprocessing dropped (None for an empty cloud).
        notices: ``(kind, level, text)`` for conditions seen for the first time (logged once by the caller).
    """

    detections: Detections
    frame: str
    stamp_ns: int
    decode_ms: float
    tf_ms: float
    model_ms: float
    prep: Optional[PrepareStats]
    notices: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class PreparedFrame:
    """A frame after ``FramePipeline.prepare``: decoded, transformed and voxelized, waiting for the network.

    Attributes:
        batch: the network input (None when no point survived preprocessing).
        header_stamp: the cloud's ``header.stamp`` (the output keeps it).
        frame / stamp_ns / decode_ms / tf_ms / prep / notices: as in ``FrameResult``.
        input_ms: time spent in ``Detector.network_input`` (part of the model time).
    """

    batch: Optional[SparseTensor]
    header_stamp: Any
    frame: str
    stamp_ns: int
    decode_ms: float
    tf_ms: float
    input_ms: float
    prep: Optional[PrepareStats]
    notices: list[tuple[str, str, str]] = field(default_factory=list)


class FramePipeline:
    """Cloud → detections for one detector and its input settings.

    Args:
        detector: a loaded ``sr3d_core.inference.Detector``.
        target_frame: gravity-aligned z-up frame to infer in; empty = the cloud's frame.
        tf: the TF look-up (needed when ``target_frame`` is set).
        tf_timeout_s: how long a look-up may wait.
        classes: class names to keep; empty = all.
        missing_color: ``"refuse"`` (a colourless cloud is malformed for a colour model) or ``"neutral"`` (feed
            ``NEUTRAL_COLOR``; accuracy may drop).
    """

    def __init__(
        self,
        detector: Detector,
        target_frame: str = "",
        tf: Optional[Lookup] = None,
        tf_timeout_s: float = 0.05,
        classes: tuple[str, ...] = (),
        missing_color: str = "refuse",
    ) -> None:
        if missing_color not in MISSING_COLOR_MODES:
            raise ValueError(f"missing_color must be one of {MISSING_COLOR_MODES}, got {missing_color!r}")
        self.detector = detector
        self.target_frame = target_frame
        self.tf = tf
        self.tf_timeout_s = tf_timeout_s
        self.classes = tuple(classes)
        self.missing_color = missing_color
        self._seen: set[str] = set()
        self._cap_key: tuple[int, Any] | None = None
        self._cap: np.ndarray | None = None

    def _notice(self, out: list, kind: str, level: str, text: str) -> None:
        if kind not in self._seen:
            self._seen.add(kind)
            out.append((kind, level, text))

    def process(self, msg: Any) -> FrameResult:
        """Detect objects in one ``sensor_msgs/PointCloud2`` (``infer(prepare(msg))``).

        Raises:
            MalformedCloudError: the cloud cannot be read (the kind says why).
            TransformUnavailable: no transform from the cloud's frame to the target frame at its stamp.
        """
        return self.infer(self.prepare(msg))

    def prepare(self, msg: Any) -> PreparedFrame:
        """Everything before the network: point cap, decoding, TF, preprocessing and voxelization.

        Raises:
            MalformedCloudError: the cloud cannot be read (the kind says why).
            TransformUnavailable: no transform from the cloud's frame to the target frame at its stamp.
        """
        notices: list[tuple[str, str, str]] = []
        contract = self.detector.contract
        t0 = time.perf_counter()
        n_rows = int(msg.width) * int(msg.height)
        # The checkpoint's point cap, applied before decoding: the rows it drops are never read or transformed,
        # and detect() gets exactly the points it would have kept from the whole cloud.
        key = (n_rows, contract.max_points)
        if self._cap_key != key:  # a camera's clouds all have one size: compute its rows once
            self._cap_key, self._cap = key, cap_rows(n_rows, contract)
        rows = self._cap
        if rows is not None:
            self._notice(
                notices,
                "capped",
                "info",
                f"input clouds have {n_rows} points; the checkpoint's input "
                f"contract uses max_points={len(rows)} of them (evenly strided), the rest are never decoded",
            )
        source = msg.header.frame_id
        frame = source
        stamp = stamp_ns(msg.header.stamp)
        if stamp == 0:
            self._notice(
                notices,
                "zero_stamp",
                "warn",
                "input clouds have a zero header.stamp; TF at the stamp and "
                "message synchronization cannot work; fix the driver",
            )
        if not source:  # RViz and TF cannot place such output
            self._notice(
                notices, "empty_frame_id", "warn", "input clouds have an empty header.frame_id; fix the " "driver"
            )
        matrix = None
        if self.target_frame and self.target_frame.lstrip("/") != source.lstrip("/"):
            if self.tf is None:
                raise ValueError("a target_frame needs a TF look-up")
            # looked up before decoding: the transform is applied while the points are decoded, in one pass
            matrix = self.tf.lookup(self.target_frame, source, stamp, self.tf_timeout_s)
            frame = self.target_frame
        t1 = time.perf_counter()
        want_color = bool(contract.use_color)
        neutral = want_color and self.missing_color == "neutral" and not color_fields({f.name for f in msg.fields})
        points, _ = pointcloud2_to_array(msg, want_color=want_color and not neutral, rows=rows, transform=matrix)
        if neutral:
            self._notice(
                notices,
                "neutral_color",
                "warn",
                "input clouds have no colour; the model was trained "
                f"with colour, so it is fed the neutral colour {NEUTRAL_COLOR} (missing_color: neutral) "
                "and may be less accurate",
            )
            points = with_neutral_color(points)
        if "optical" in frame:
            # An optical frame has z forward and y down; the model expects z up, so boxes would look valid but
            # lie on their side.
            self._notice(
                notices,
                "optical_frame",
                "warn",
                f"inferring in '{frame}', an optical frame (z forward, y "
                "down), but the model expects a gravity-aligned z-up frame: set target_frame to one "
                "(base_link, or camera_link of a level camera)",
            )
        t2 = time.perf_counter()
        batch, prep = None, None
        if len(points):
            batch, prep = self.detector.network_input(points)
        t3 = time.perf_counter()
        return PreparedFrame(
            batch, msg.header.stamp, frame, stamp, (t2 - t1) * 1e3, (t1 - t0) * 1e3, (t3 - t2) * 1e3, prep, notices
        )

    def infer(self, frame: PreparedFrame) -> FrameResult:
        """The network, post-processing and class filter on a prepared frame."""
        t0 = time.perf_counter()
        det = self.detector.detect_input(frame.batch)
        if self.classes:
            keep = np.isin(det.labels, [det.class_names.index(c) for c in self.classes])
            det = Detections(det.boxes[keep], det.scores[keep], det.labels[keep], det.class_names)
        model_ms = frame.input_ms + (time.perf_counter() - t0) * 1e3
        return FrameResult(
            det, frame.frame, frame.stamp_ns, frame.decode_ms, frame.tf_ms, model_ms, frame.prep, frame.notices
        )


__all__ = ["FramePipeline", "FrameResult", "Lookup", "MISSING_COLOR_MODES", "MalformedCloudError", "PreparedFrame"]
