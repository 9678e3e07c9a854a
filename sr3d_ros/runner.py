"""The detector node's frame thread: newest cloud in, a result callback out.

One thread takes the newest cloud from the input (``sr3d_ros.inbox``) when it is ready for the next frame,
decodes, transforms and voxelizes it, runs the network (``sr3d_ros.pipeline.FramePipeline``) and hands the result
to a callback (the node publishes it). Nothing is queued and no frame is inferred twice: DDS keeps only the newest
clouds while the thread is busy, and a cloud replaced before it is taken is dropped and counted.

Preparing the next frame in a second thread while the network runs the current one was measured to add latency
and no throughput on 2 cores, so there is one thread. The runner imports no node machinery: it needs a logger,
the counters (``FrameStats``) and an input that has ``take_newest``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Protocol

from sr3d_ros.cdr import SerializedCloud, parse_pointcloud2
from sr3d_ros.conversions import MalformedCloudError, stamp_ns
from sr3d_ros.diagnostics import FrameStats
from sr3d_ros.pipeline import FramePipeline, FrameResult, PreparedFrame
from sr3d_ros.tf_lookup import TransformUnavailable


class CloudSource(Protocol):
    """Where the frame thread takes clouds from (``sr3d_ros.inbox.CloudInbox``)."""

    def take_newest(self, timeout_s: float) -> Optional[tuple[bytes, int, float]]:
        """``(serialized cloud, clouds skipped before it, take_ms)``, or None when nothing arrived in time."""


@dataclass(frozen=True)
class FrameOutcome:
    """One processed frame, as handed to the result callback.

    Attributes:
        result: the pipeline's result (detections, frame, stamp, timings).
        header_stamp: the cloud's ``header.stamp`` (the output keeps it).
        prepare_ms: the frame's work before the network: taking, parsing, decoding, TF and voxelization.
        infer_started: ``time.perf_counter()`` when the network started: the callback adds its own publishing
            time to the frame's processing time from there.
    """

    result: FrameResult
    header_stamp: Any
    prepare_ms: float
    infer_started: float


#: Called on the frame thread with each processed frame; an exception is counted as a frame error.
ResultCallback = Callable[[FrameOutcome], None]


class FrameRunner:
    """Runs frames on its own thread while started, from whichever input is attached.

    Args:
        stats: the counters it updates (received, dropped, malformed, TF failures, errors, points out of range;
            the callback counts processed frames and their timings).
        logger: an rclpy logger (``throttle_duration_sec`` is used for repeated failures).
        topic: the input topic's name, for log lines.
        on_result: called with each processed frame.
    """

    def __init__(self, stats: FrameStats, logger: Any, topic: str, on_result: ResultCallback) -> None:
        self._stats = stats
        self._log = logger
        self._topic = topic
        self._on_result = on_result
        self._cond = threading.Condition()
        self._source: Optional[CloudSource] = None
        self._pipeline: Optional[FramePipeline] = None
        self._running = False
        self._thread: Optional[threading.Thread] = None
        self._logged_kinds: set[str] = set()  # malformed kinds logged once for the runner's life

    @property
    def running(self) -> bool:
        """Whether the frame thread runs."""
        return self._thread is not None

    def start(self, pipeline: FramePipeline) -> None:
        """Start the frame thread on ``pipeline`` (it waits for an input to be attached)."""
        if self._thread is not None:
            raise RuntimeError("the frame runner is already started")
        with self._cond:
            self._pipeline, self._running = pipeline, True
        self._thread = threading.Thread(target=self._work, name="sr3d_inference", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the frame thread after the frame in progress (idempotent); the input stays attached."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self._thread = None

    def attach(self, source: CloudSource) -> None:
        """Take frames from ``source`` from now on."""
        with self._cond:
            self._source = source
            self._cond.notify_all()

    def detach(self) -> Optional[CloudSource]:
        """Stop taking frames; returns the input that was attached (the caller closes it)."""
        with self._cond:
            source, self._source = self._source, None
        return source

    # ------------------------------------------------------------------ the frame thread

    def _next_cloud(self) -> Optional[tuple[bytes, float]]:
        """Block until the newest cloud is taken; returns it and the milliseconds the take cost, or None when the
        thread is to stop. Counts the cloud and those skipped before it."""
        while True:
            with self._cond:
                while self._running and self._source is None:
                    self._cond.wait()
                if not self._running:
                    return None
                source = self._source
            try:
                got = source.take_newest(timeout_s=0.1)
            except Exception as err:  # noqa: BLE001 - a failing take must not end the thread
                self._log.error(f"taking a cloud failed: {err!r}", throttle_duration_sec=5.0)
                time.sleep(0.1)
                continue
            if got is not None:
                raw, skipped, take_ms = got
                with self._stats.lock:
                    self._stats.received += 1 + skipped
                    self._stats.dropped += skipped
                return raw, take_ms

    def _work(self) -> None:
        """Take, prepare and infer frame after frame until stopped."""
        while True:
            got = self._next_cloud()
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
                if prepared is not None:
                    self._finish(prepared, prepare_ms)

    @contextlib.contextmanager
    def _guard(self, stamp: Any) -> Iterator[None]:
        """Count and log (throttled) anything a frame raises: the thread must survive every frame."""
        try:
            yield
        except Exception as err:  # noqa: BLE001 - the node must survive anything a frame does
            with self._stats.lock:
                self._stats.errors += 1
            self._log.error(f"frame at {stamp_ns(stamp) * 1e-9:.3f}s failed: {err!r}", throttle_duration_sec=5.0)

    def _report_malformed(self, err: MalformedCloudError) -> None:
        with self._stats.lock:
            self._stats.malformed[err.kind] = self._stats.malformed.get(err.kind, 0) + 1
        if err.kind not in self._logged_kinds:  # once per kind; diagnostics keep counting
            self._logged_kinds.add(err.kind)
            self._log.warning(f"skipping malformed cloud on {self._topic} ({err.kind}): {err.reason}")

    def _parse(self, raw: bytes) -> Optional[SerializedCloud]:
        """The cloud's layout from its serialized bytes; None (reported and counted) when they are not a cloud."""
        try:
            return parse_pointcloud2(raw)
        except MalformedCloudError as err:
            self._report_malformed(err)
            return None

    def _prepare(self, msg: SerializedCloud) -> Optional[PreparedFrame]:
        """Decode, transform and voxelize one cloud; None (reported and counted) when it is skipped."""
        pipeline = self._pipeline
        if pipeline is None:
            return None
        try:
            return pipeline.prepare(msg)
        except MalformedCloudError as err:
            self._report_malformed(err)
            return None
        except TransformUnavailable as err:
            with self._stats.lock:
                self._stats.tf_failures += 1
            self._log.warning(
                f"no transform '{msg.header.frame_id}' -> '{pipeline.target_frame}', frame skipped: " f"{err}",
                throttle_duration_sec=2.0,
            )
            return None

    def _finish(self, prepared: PreparedFrame, prepare_ms: float) -> None:
        """Run the network on a prepared frame and hand the result on."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        t0 = time.perf_counter()
        res = pipeline.infer(prepared)
        for _, level, text in res.notices:  # each kind once per configuration
            if level == "info":  # (rclpy ties one severity to each logging call site)
                self._log.info(text)
            else:
                self._log.warning(text)
        if res.prep is not None and res.prep.out_of_range:
            with self._stats.lock:
                self._stats.points_out_of_range += res.prep.out_of_range
        self._on_result(FrameOutcome(res, prepared.header_stamp, prepare_ms, t0))


__all__ = ["CloudSource", "FrameOutcome", "FrameRunner", "ResultCallback"]
