"""The node's health bookkeeping: frame counters and timing windows, and what each diagnostics period reports.

No ROS here: the node turns ``FrameStats.assess`` into a ``diagnostic_msgs/DiagnosticStatus``; tests can call it
directly.
"""

from __future__ import annotations

import threading
from collections import deque

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
            self._period = (now, self.received, self.tf_failures, sum(self.malformed.values()), self.errors,
                            self.processed)

    def counters(self) -> dict[str, int]:
        """The frame counters (logged at shutdown as ``key=value``; tools parse the line)."""
        with self.lock:
            return {"frames_received": self.received, "frames_processed": self.processed,
                    "frames_dropped": self.dropped, "malformed_inputs": sum(self.malformed.values()),
                    "tf_failures": self.tf_failures, "errors": self.errors,
                    "points_out_of_range": self.points_out_of_range}

    def assess(self, now: float, max_processing_time_ms: float, max_input_age_ms: float,
               subscribed: bool) -> tuple[dict[str, str], list[str], bool]:
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
                "input_rate_hz": f"{rate:.2f}", "processing_time_ms": f"{proc:.1f}", "model_time_ms": f"{model:.1f}",
                "pipeline_latency_ms_p50": f"{lat:.1f}", "frames_received": str(self.received),
                "frames_processed": str(self.processed), "frames_dropped": str(self.dropped),
                "malformed_inputs": str(malformed), "tf_failures": str(self.tf_failures), "errors": str(self.errors),
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
                problems.append(f"input stale: {age:.0f} ms old at publication > {max_input_age_ms:.0f} ms "
                                "(clock or use_sim_time mismatch, or a slow link)")
            silent = subscribed and self.received == rec_prev
            if silent:
                problems.append("no input")
            self._period = (now, self.received, self.tf_failures, malformed, self.errors, self.processed)
        return values, problems, silent
