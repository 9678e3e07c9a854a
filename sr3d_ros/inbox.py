"""The detector node's input: clouds taken by the inference thread when it is ready, newest first.

A subscription served by the node's executor takes every cloud the moment it arrives: for a 640x480 RGB-D cloud
that is three copies of 4.9 MB (DDS, rmw, Python), made while holding the interpreter lock, 30 times a second,
also for the clouds that are then dropped because the network is still busy with an earlier one. The inference
thread needs the lock between its operations, so it stalls for all of that. Here the input subscription lives on
a helper node that no executor spins (``<node name>_input``, in the node's namespace): the inference thread takes
from it itself when it is ready for the next frame, and meanwhile DDS keeps only the newest clouds
(``input_qos_depth``, keep-last). A cloud replaced there is never copied; it is counted from its publisher's
sequence numbers.

The subscription is raw (serialized bytes; ``sr3d_ros.cdr`` reads them in place), so a taken cloud costs one copy
less than a deserialized message.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

import rclpy
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import PointCloud2


class CloudInbox:
    """A raw ``PointCloud2`` subscription that only its owner's inference thread takes from.

    The thread takes from the subscription's handle itself (a wait set to sleep until a cloud arrives, then one
    take per cloud in DDS's history): an executor would add a wait, a task and a callback per cloud in Python.

    Args:
        owner: the detector node: the helper node gets its context, namespace and name (+ ``_input``).
        topic: the input topic, resolved by the owner (its remappings applied).
        qos: the input QoS (its depth is how many clouds DDS keeps while the thread is busy).
    """

    def __init__(self, owner: Any, topic: str, qos: QoSProfile) -> None:
        self._node = rclpy.create_node(
            f"{owner.get_name()}_input", namespace=owner.get_namespace(), context=owner.context,
            use_global_arguments=False, enable_rosout=False, start_parameter_services=False,
            parameter_overrides=[Parameter("start_type_description_service", value=False)])
        self._context = owner.context
        # Never called: the clouds are taken from the handle below, not dispatched by an executor.
        self._sub = self._node.create_subscription(PointCloud2, topic, lambda _raw: None, qos, raw=True)
        self._wait_set = _rclpy.WaitSet(1, 0, 0, 0, 0, 0, self._context.handle)
        self._last_seq: dict[bytes, int] = {}  # publisher gid -> last publication sequence number seen
        self._lock = threading.Lock()  # take_newest against close
        self._closed = False

    def _skipped(self, info: Any) -> int:
        """Clouds of this cloud's publisher that were never taken since the last one (sequence number gap)."""
        if not isinstance(info, dict):  # no message info: only taken clouds count
            return 0
        seq, gid = info.get("publication_sequence_number"), (info.get("publisher_gid") or {}).get("data")
        if not seq or gid is None:  # samples not numbered (by the middleware or distro): only taken count
            return 0
        key = bytes(gid)
        last = self._last_seq.get(key)
        self._last_seq[key] = max(seq, last or 0)
        return seq - last - 1 if last is not None and seq > last + 1 else 0

    def _take_all(self) -> list[tuple[bytes, Any]]:
        """Every cloud in DDS's history, oldest first (one take each, no waiting)."""
        taken = []
        with self._sub.handle:
            while (got := self._sub.handle.take_message(PointCloud2, True)) is not None:
                taken.append(got)
        return taken

    def _wait(self, timeout_s: float) -> None:
        """Sleep until the subscription has a cloud or ``timeout_s`` passed."""
        with self._sub.handle:
            self._wait_set.clear_entities()
            self._wait_set.add_subscription(self._sub.handle)
            self._wait_set.wait(int(timeout_s * 1e9))

    def take_newest(self, timeout_s: float) -> Optional[tuple[bytes, int, float]]:
        """Wait up to ``timeout_s`` for a cloud and take the newest one available.

        Returns:
            ``(serialized cloud, skipped, take_ms)``: ``skipped`` counts the clouds before it that were not
            processed (replaced in DDS's history, taken but superseded, or lost in transport); ``take_ms`` is the
            time spent taking it, waiting for it to arrive excluded. None when nothing arrived or the inbox is
            closed.
        """
        with self._lock:
            if self._closed or not self._context.ok():
                return None
            start_ns = time.time_ns()
            try:
                taken = self._take_all()
                if not taken:
                    self._wait(timeout_s)
                    start_ns = time.time_ns()  # (where the middleware gives no reception time)
                    taken = self._take_all()
            except Exception:  # the context shut down meanwhile: no cloud, no error
                if self._context.ok():
                    raise
                return None
            if not taken:
                return None
        # The work started when both the call and the newest cloud were there (the middleware's reception time,
        # on the same system clock).
        info = taken[-1][1]
        received = info.get("received_timestamp", 0) if isinstance(info, dict) else 0
        take_ms = (time.time_ns() - max(start_ns, received or 0)) * 1e-6
        skipped = len(taken) - 1 + sum(self._skipped(info) for _, info in taken)
        return taken[-1][0], skipped, max(take_ms, 0.0)

    def close(self) -> None:
        """Unsubscribe and destroy the helper node (waits for a take in progress; idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wait_set.destroy_when_not_in_use()
            self._node.destroy_node()


__all__ = ["CloudInbox"]
