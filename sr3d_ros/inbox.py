"""The detector node's input: clouds taken by the frame thread when it is ready, newest first.

A subscription served by the node's executor takes every cloud the moment it arrives: for a 640x480 RGB-D cloud
that is three copies of 4.9 MB (DDS, rmw, Python), made while holding the interpreter lock, 30 times a second,
also for the clouds that are then dropped because the network is still busy with an earlier one. The frame
thread needs the lock between its operations, so it stalls for all of that. Here the input subscription lives on
a helper node that the node's executor never spins (``<node name>_input``, in the node's namespace): the frame
thread takes from it itself when it is ready for the next frame, and meanwhile DDS keeps only the newest clouds
(``input_qos_depth``, keep-last). The subscription is raw (serialized bytes; ``sr3d_ros.cdr`` reads them in
place), so a taken cloud costs one copy less than a deserialized message.

Two ways to take, behind one class (``CloudInbox``):

- ``_DirectTake`` (the default where rclpy has it): a wait set and ``take_message`` on the subscription's handle,
  rclpy's internal API. A cloud replaced in DDS's history is never copied, and it is counted from its publisher's
  sequence numbers.
- ``_SpinTake`` (the fallback when that internal API is missing or changed): an ordinary subscription on the helper
  node, spun by a private executor from the frame thread. Each cloud in DDS's history is copied once, and only the
  clouds that reached the callback are counted as skipped.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional, Protocol

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import PointCloud2

try:  # rclpy's internal C extension: only _DirectTake uses it
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
except ImportError:  # pragma: no cover - an rclpy without it takes through _SpinTake
    _rclpy = None

#: ``(serialized cloud, message info or None)`` per taken cloud, oldest first.
Taken = list[tuple[bytes, Optional[dict]]]


class _Take(Protocol):
    """One way to take clouds from the helper node's subscription."""

    def take_all(self) -> Taken:
        """Every cloud available now, oldest first (no waiting)."""

    def wait(self, timeout_s: float) -> None:
        """Sleep until a cloud is available or ``timeout_s`` passed."""

    def destroy(self) -> None:
        """Release what the take holds (the helper node is destroyed by its owner)."""


def direct_take_available() -> bool:
    """Whether this rclpy has the internal API ``_DirectTake`` needs."""
    return _rclpy is not None and hasattr(_rclpy, "WaitSet")


class _DirectTake:
    """Takes from the subscription's handle itself: one wait set to sleep, one ``take_message`` per cloud."""

    def __init__(self, node: Any, topic: str, qos: QoSProfile, context: Any) -> None:
        # Never called: the clouds are taken from the handle below, not dispatched by an executor.
        self._sub = node.create_subscription(PointCloud2, topic, lambda _raw: None, qos, raw=True)
        if not hasattr(self._sub.handle, "take_message"):
            node.destroy_subscription(self._sub)
            raise AttributeError("this rclpy's subscription handle has no take_message")
        self._wait_set = _rclpy.WaitSet(1, 0, 0, 0, 0, 0, context.handle)

    def take_all(self) -> Taken:
        taken = []
        with self._sub.handle:
            while (got := self._sub.handle.take_message(PointCloud2, True)) is not None:
                taken.append(got)
        return taken

    def wait(self, timeout_s: float) -> None:
        with self._sub.handle:
            self._wait_set.clear_entities()
            self._wait_set.add_subscription(self._sub.handle)
            self._wait_set.wait(int(timeout_s * 1e9))

    def destroy(self) -> None:
        self._wait_set.destroy_when_not_in_use()


class _SpinTake:
    """An ordinary raw subscription, its callback run by a private executor that only the frame thread spins."""

    def __init__(self, node: Any, topic: str, qos: QoSProfile, context: Any) -> None:
        self._arrived: Taken = []
        node.create_subscription(PointCloud2, topic, lambda raw: self._arrived.append((raw, None)), qos, raw=True)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(node)

    def take_all(self) -> Taken:
        idle = 0
        while idle < 2:  # one callback per spin, and every other spin only starts a new wait: two idle spins
            before = len(self._arrived)
            self._executor.spin_once(timeout_sec=0.0)
            idle = idle + 1 if len(self._arrived) == before else 0
        taken, self._arrived = self._arrived, []
        return taken

    def wait(self, timeout_s: float) -> None:
        self._executor.spin_once(timeout_sec=timeout_s)

    def destroy(self) -> None:
        self._executor.shutdown(timeout_sec=0.0)


class CloudInbox:
    """A raw ``PointCloud2`` subscription that only its owner's frame thread takes from.

    Args:
        owner: the detector node: the helper node gets its context, namespace and name (+ ``_input``).
        topic: the input topic, resolved by the owner (its remappings applied).
        qos: the input QoS (its depth is how many clouds DDS keeps while the thread is busy).
        direct: take through rclpy's internal API (``_DirectTake``) or an ordinary subscription (``_SpinTake``);
            None takes directly where this rclpy allows it and falls back otherwise.
    """

    def __init__(self, owner: Any, topic: str, qos: QoSProfile, direct: Optional[bool] = None) -> None:
        self._node = rclpy.create_node(
            f"{owner.get_name()}_input",
            namespace=owner.get_namespace(),
            context=owner.context,
            use_global_arguments=False,
            enable_rosout=False,
            start_parameter_services=False,
            parameter_overrides=[Parameter("start_type_description_service", value=False)],
        )
        self._context = owner.context
        self._take: _Take
        if direct is None:
            direct = direct_take_available()
        try:
            self._take = (_DirectTake if direct else _SpinTake)(self._node, topic, qos, self._context)
        except (AttributeError, TypeError):  # the internal API changed: take through public API instead
            if not direct:
                raise
            self._take = _SpinTake(self._node, topic, qos, self._context)
        self._last_seq: dict[bytes, int] = {}  # publisher gid -> last publication sequence number seen
        self._lock = threading.Lock()  # take_newest against close
        self._closed = False

    @property
    def direct(self) -> bool:
        """Whether clouds are taken through rclpy's internal API (else through an ordinary subscription)."""
        return isinstance(self._take, _DirectTake)

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
                taken = self._take.take_all()
                if not taken:
                    self._take.wait(timeout_s)
                    start_ns = time.time_ns()  # (where the middleware gives no reception time)
                    taken = self._take.take_all()
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
            self._take.destroy()
            self._node.destroy_node()


__all__ = ["CloudInbox", "direct_take_available"]
