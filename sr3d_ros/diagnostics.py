"""The node's health bookkeeping: frame counters and timing windows, and what each diagnostics period reports.

No ROS here: the node turns ``FrameStats.assess`` into a ``diagnostic_msgs/DiagnosticStatus``; tests can call it
directly.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np


class FrameStats:
    """Thread-safe counters and windows (written by the subscription callback and the inference worker).

    Invariant: ``received = processed + dropped + malformed + tf_failures + errors`` once the frames in flight
    are done.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.tf_failures = 0
        self.errors = 0
        self.points_out_of_range = 0  # dropped by preprocessing (outside point_range or the grid's reach)
        self.malformed: dict[str, int] = {}
        self.processing_ms: deque[float] = deque(maxlen=100)
        self.model_ms: deque[float] = deque(maxlen=100)
        self.latency_ms: deque[float] = deque(maxlen=100)
        self._period = (0.0, 0, 0, 0, 0, 0)  # start time and counters at the start of the current period

    def start_period(self, now: float) -> None:
        """Begin the first diagnostics period at ``now`` (monotonic seconds)."""
        with self.lock:
            self._period = (
                now,
                self.received,
                self.tf_failures,
                sum(self.malformed.values()),
                self.errors,
                self.processed,
            )

    def counters(self) -> dict[str, int]:
        """The frame counters (logged at shutdown as ``key=value``; tools parse the line)."""
        with self.lock:
            return {
                "frames_received": self.received,
                "frames_processed": self.processed,
                "frames_dropped": self.dropped,
                "malformed_inputs": sum(self.malformed.values()),
                "tf_failures": self.tf_failures,
                "errors": self.errors,
                "points_out_of_range": self.points_out_of_range,
            }

    def assess(
        self, now: float, max_processing_time_ms: float, max_input_age_ms: float, subscribed: bool
    ) -> tuple[dict[str, str], list[str], bool]:
        """Close the current period: its key/values, its problems, and whether no cloud arrived in it.

        Args:
            now: monotonic seconds.
            max_processing_time_ms: mean processing time above which the period has a problem.
            max_input_age_ms: median input age at publication above which the inputs are stale.
            subscribed: the node listens to its input (a period without clouds is then a problem).
        """
        with self.lock:
            t_prev, rec_prev, tf_prev, mal_prev, err_prev, done_prev = self._period
            malformed = sum(self.malformed.values())
            rate = (self.received - rec_prev) / max(now - t_prev, 1e-6)
            proc = float(np.mean(self.processing_ms)) if self.processing_ms else 0.0
            model = float(np.mean(self.model_ms)) if self.model_ms else 0.0
            lat = float(np.percentile(self.latency_ms, 50)) if self.latency_ms else 0.0
            values = {
                "input_rate_hz": f"{rate:.2f}",
                "processing_time_ms": f"{proc:.1f}",
                "model_time_ms": f"{model:.1f}",
                "pipeline_latency_ms_p50": f"{lat:.1f}",
                "frames_received": str(self.received),
                "frames_processed": str(self.processed),
                "frames_dropped": str(self.dropped),
                "malformed_inputs": str(malformed),
                "tf_failures": str(self.tf_failures),
                "errors": str(self.errors),
                "points_out_of_range": str(self.points_out_of_range),
                **{f"malformed.{k}": str(v) for k, v in sorted(self.malformed.items())},
            }
            problems = []
            if self.tf_failures > tf_prev:
                problems.append("TF lookups failing")
            if malformed > mal_prev:
                problems.append("malformed inputs")
            if self.errors > err_prev:
                problems.append("frames failed")
            if proc > max_processing_time_ms:
                problems.append(f"processing {proc:.0f} ms > {max_processing_time_ms:.0f} ms")
            # Age of this period's frames only: an old burst must not keep the warning up.
            new = min(self.processed - done_prev, len(self.latency_ms))
            age = float(np.median(list(self.latency_ms)[-new:])) if new > 0 else 0.0
            if age > max_input_age_ms:
                problems.append(
                    f"input stale: {age:.0f} ms old at publication > {max_input_age_ms:.0f} ms "
                    "(clock or use_sim_time mismatch, or a slow link)"
                )
            silent = subscribed and self.received == rec_prev
            if silent:
                problems.append("no input")
            self._period = (now, self.received, self.tf_failures, malformed, self.errors, self.processed)
        return values, problems, silent


@dataclass
class InputWatch:
    """Why no cloud arrives, said in the log and in /diagnostics: nobody publishes on the input, or somebody does
    and nothing arrives (QoS, DDS segment size).

    The node's graph is queried through the two functions, so this runs without ROS in tests.

    Attributes:
        topic: the resolved input topic.
        count_publishers: publishers on a topic.
        cloud_topics: the other ``PointCloud2`` topics that have a publisher.
        warn: logs a warning.
        profile: the Fast DDS profile for large clouds that the node ships (named in the warning).
    """

    topic: str
    count_publishers: Callable[[str], int]
    cloud_topics: Callable[[], list[str]]
    warn: Callable[[str], None]
    profile: str
    silent_since: Optional[float] = None  # a publisher exists on the input but nothing arrives
    silence_logged: bool = False
    unpublished_since: Optional[float] = None  # subscribed, and nobody publishes on the input
    unpublished_warned: Optional[float] = None

    def subscribed(self, now: float) -> None:
        """The node subscribed at ``now``: the no-publisher wait starts over."""
        self.unpublished_since, self.unpublished_warned = now, None

    def silence_problem(self, now: float, silent: bool, period_s: float, warn_after_s: float, qos: str) -> str:
        """A publisher exists on the input topic but nothing arrived this period: say why once in the log, and
        each period in /diagnostics (returns the diagnostics text, or "")."""
        publishers = self.count_publishers(self.topic) if silent else 0
        if not publishers:
            self.silent_since, self.silence_logged = None, False
            return ""
        if self.silent_since is None:
            self.silent_since = now - period_s  # this period was already silent
        waited = now - self.silent_since
        if waited < warn_after_s:
            return ""
        if not self.silence_logged:
            self.silence_logged = True
            self.warn(
                f"{publishers} publisher(s) on {self.topic} but no cloud arrived for {waited:.0f} s. Likely causes: "
                f"(1) clouds larger than Fast DDS's default 512 kB shared-memory segment, sent best effort, are "
                f"fragmented over UDP and lost whole: start the camera driver and this node with "
                f"FASTDDS_DEFAULT_PROFILES_FILE={self.profile} (scripts/env.sh and the launch file set it for the "
                f"node), or publish reliably and set input_qos:=reliable; (2) incompatible QoS: this node subscribes "
                f"with input_qos={qos}, and a reliable subscription gets nothing from a best-effort publisher"
            )
        return f"publisher on the input but no data for {waited:.0f} s (QoS or DDS segment size, see the log)"

    def watch_publishers(self, now: float, subscribed: bool, warn_after_s: float) -> None:
        """Warn while the input topic has no publisher: after ``warn_after_s`` subscribed, then every
        ``warn_after_s``, naming the PointCloud2 topics that have one (the remap probably missed)."""
        if not subscribed or self.count_publishers(self.topic):
            self.unpublished_since = now if subscribed else None
            self.unpublished_warned = None
            return
        if self.unpublished_since is None:
            self.unpublished_since = now
        waited = now - self.unpublished_since
        if waited < warn_after_s or (
            self.unpublished_warned is not None and now - self.unpublished_warned < warn_after_s
        ):
            return
        self.unpublished_warned = now
        clouds = sorted(self.cloud_topics())
        found = (
            f"PointCloud2 topics with a publisher: {', '.join(clouds)}; remap the input onto one, e.g. "
            f"-r '~/input/points:={clouds[0]}' (quoted: bash expands an unquoted ~ to your home directory)"
            if clouds
            else "no PointCloud2 topic has a publisher yet (is the camera driver running, in this "
            "ROS_DOMAIN_ID, and discoverable: ROS_AUTOMATIC_DISCOVERY_RANGE?)"
        )
        self.warn(f"no publisher on the input {self.topic} for {waited:.0f} s; {found}")
