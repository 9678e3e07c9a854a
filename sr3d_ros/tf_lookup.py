"""TF look-ups for the node: ``tf2_ros`` where installed, else a small listener on /tf and /tf_static.

The math (quaternions, slerp, the time-indexed edge buffer and chain look-ups) is pure numpy and unit-tested
without ROS; ``make_tf_lookup`` picks the backend and hides it behind one ``lookup`` call that returns a 4x4
matrix mapping points from the source frame into the target frame.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


class TransformUnavailable(RuntimeError):
    """No transform between two frames at the requested time; the message names both frames."""


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(x, y, z, w)`` -> 3x3 rotation matrix (normalizes first)."""
    x, y, z, w = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> unit quaternion ``(x, y, z, w)`` with ``w >= 0`` (inverse of ``quaternion_to_matrix``)."""
    m = np.asarray(m, np.float64)[:3, :3]
    # Shepperd: start from the largest of 4w^2, 4x^2, 4y^2, 4z^2 so the division is well conditioned.
    d = np.array(
        [
            m[0, 0] + m[1, 1] + m[2, 2],
            m[0, 0] - m[1, 1] - m[2, 2],
            m[1, 1] - m[0, 0] - m[2, 2],
            m[2, 2] - m[0, 0] - m[1, 1],
        ]
    )
    k = int(np.argmax(d))
    r = np.sqrt(1.0 + d[k]) * 2.0  # = 4 * |component k|
    if k == 0:
        q = [(m[2, 1] - m[1, 2]) / r, (m[0, 2] - m[2, 0]) / r, (m[1, 0] - m[0, 1]) / r, r / 4]
    elif k == 1:
        q = [r / 4, (m[0, 1] + m[1, 0]) / r, (m[0, 2] + m[2, 0]) / r, (m[2, 1] - m[1, 2]) / r]
    elif k == 2:
        q = [(m[0, 1] + m[1, 0]) / r, r / 4, (m[1, 2] + m[2, 1]) / r, (m[0, 2] - m[2, 0]) / r]
    else:
        q = [(m[0, 2] + m[2, 0]) / r, (m[1, 2] + m[2, 1]) / r, r / 4, (m[1, 0] - m[0, 1]) / r]
    q = np.asarray(q) / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    """Spherical linear interpolation between unit quaternions ``(x, y, z, w)`` along the shorter arc."""
    q0, q1 = np.asarray(q0, np.float64), np.asarray(q1, np.float64)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # q and -q are the same rotation; take the short way round
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: linear interpolation is exact enough and avoids 0/0
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)


def to_matrix(translation: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Translation ``(3,)`` and quaternion ``(x, y, z, w)`` -> 4x4 homogeneous matrix."""
    m = np.eye(4)
    m[:3, :3] = quaternion_to_matrix(rotation)
    m[:3, 3] = translation
    return m


def transform_msg_to_matrix(transform: Any) -> np.ndarray:
    """``geometry_msgs/Transform`` -> 4x4 matrix."""
    t, r = transform.translation, transform.rotation
    return to_matrix(np.array([t.x, t.y, t.z]), np.array([r.x, r.y, r.z, r.w]))


@dataclass
class _Edge:
    """Samples of one child -> parent transform, sorted by time (nanoseconds)."""

    parent: str
    static: bool
    stamps: list[int] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    rotations: list[np.ndarray] = field(default_factory=list)
    matrix: np.ndarray | None = None  # a static edge's 4x4, built once


class TransformBuffer:
    """A thread-safe, time-indexed store of TF edges with chained look-ups.

    Each child frame has one parent. Dynamic edges keep ``cache_s`` seconds of samples and are interpolated
    (translation linearly, rotation by slerp); static edges hold one value valid at all times.
    """

    def __init__(self, cache_s: float = 10.0) -> None:
        """Create an empty buffer that keeps ``cache_s`` seconds of each dynamic edge."""
        self._cache_ns = int(cache_s * 1e9)
        self._edges: dict[str, _Edge] = {}
        self._lock = threading.Lock()

    def set_transform(
        self,
        parent: str,
        child: str,
        stamp_ns: int,
        translation: np.ndarray,
        rotation: np.ndarray,
        static: bool = False,
    ) -> None:
        """Insert one sample of ``T_parent_child`` (maps child coordinates into the parent)."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        t = np.asarray(translation, np.float64)
        r = np.asarray(rotation, np.float64) / np.linalg.norm(rotation)
        with self._lock:
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent or edge.static != static:
                edge = self._edges[child] = _Edge(parent, static)  # re-parenting replaces the history
            if static:
                edge.stamps, edge.translations, edge.rotations = [0], [t], [r]
                edge.matrix = to_matrix(t, r)
                return
            i = bisect.bisect_left(edge.stamps, stamp_ns)
            if i < len(edge.stamps) and edge.stamps[i] == stamp_ns:
                edge.translations[i], edge.rotations[i] = t, r
            else:
                edge.stamps.insert(i, stamp_ns)
                edge.translations.insert(i, t)
                edge.rotations.insert(i, r)
            cut = bisect.bisect_left(edge.stamps, edge.stamps[-1] - self._cache_ns)
            if cut:
                del edge.stamps[:cut], edge.translations[:cut], edge.rotations[:cut]

    def set_transform_msg(self, msg: Any, static: bool = False) -> None:
        """Insert a ``geometry_msgs/TransformStamped``."""
        s, tr, rot = msg.header.stamp, msg.transform.translation, msg.transform.rotation
        self.set_transform(
            msg.header.frame_id,
            msg.child_frame_id,
            s.sec * 1_000_000_000 + s.nanosec,
            np.array([tr.x, tr.y, tr.z]),
            np.array([rot.x, rot.y, rot.z, rot.w]),
            static,
        )

    def lookup(self, target: str, source: str, stamp_ns: int | None, fallback_latest: bool = False) -> np.ndarray:
        """Return ``T_target_source`` (4x4) at ``stamp_ns`` (``None`` = latest of every edge).

        Raises:
            TransformUnavailable: frames not connected, or the time lies outside a dynamic edge's samples
                (unless ``fallback_latest``, which then uses the latest sample of that edge).
        """
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4)
        with self._lock:
            up_source = self._chain(source)
            up_target = self._chain(target)
            common = next((f for f, _ in up_source if f in {g for g, _ in up_target}), None)
            if common is None:
                raise TransformUnavailable(
                    f"frames '{source}' and '{target}' are not connected "
                    f"(known frames: {sorted(set(self._edges) | {e.parent for e in self._edges.values()})})"
                )
            m_source = self._compose(up_source, common, stamp_ns, fallback_latest)  # T_common_source
            if common == target:  # the usual case: the target is an ancestor of the source
                return m_source
            m_target = self._compose(up_target, common, stamp_ns, fallback_latest)  # T_common_target
        return np.linalg.inv(m_target) @ m_source

    def _chain(self, frame: str) -> list[tuple[str, _Edge | None]]:
        """``[(frame, edge to parent), (parent, ...), ..., (root, None)]``."""
        chain, seen = [], set()
        while frame in self._edges and frame not in seen:
            seen.add(frame)
            chain.append((frame, self._edges[frame]))
            frame = self._edges[frame].parent
        chain.append((frame, None))
        return chain

    def _compose(
        self, chain: list[tuple[str, _Edge | None]], stop: str, stamp_ns: int | None, fallback_latest: bool
    ) -> np.ndarray:
        m = None
        for frame, edge in chain:
            if frame == stop:
                break
            e = self._edge_matrix(frame, edge, stamp_ns, fallback_latest)
            m = e if m is None else e @ m
        return np.eye(4) if m is None else m.copy()  # a copy: a static edge's matrix is shared

    @staticmethod
    def _edge_matrix(child: str, edge: _Edge, stamp_ns: int | None, fallback_latest: bool) -> np.ndarray:
        if edge.static:
            return edge.matrix
        if stamp_ns is None:
            return to_matrix(edge.translations[-1], edge.rotations[-1])
        stamps = edge.stamps
        i = bisect.bisect_left(stamps, stamp_ns)
        if i < len(stamps) and stamps[i] == stamp_ns:
            return to_matrix(edge.translations[i], edge.rotations[i])
        if 0 < i < len(stamps):
            a = (stamp_ns - stamps[i - 1]) / (stamps[i] - stamps[i - 1])
            t = (1 - a) * edge.translations[i - 1] + a * edge.translations[i]
            return to_matrix(t, slerp(edge.rotations[i - 1], edge.rotations[i], a))
        if fallback_latest:
            return to_matrix(edge.translations[-1], edge.rotations[-1])
        raise TransformUnavailable(
            f"no transform '{edge.parent}' -> '{child}' at t={stamp_ns * 1e-9:.3f}s: samples cover "
            f"[{stamps[0] * 1e-9:.3f}, {stamps[-1] * 1e-9:.3f}]s"
        )


class TfLookup:
    """The node's TF interface: ``lookup(target, source, stamp_ns, timeout_s) -> 4x4``.

    Safe to call from a worker thread while the executor delivers /tf messages.
    """

    backend = "none"

    def lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> np.ndarray:  # pragma: no cover
        """Return ``T_target_source`` at ``stamp_ns``, waiting up to ``timeout_s``."""
        raise NotImplementedError


class OwnTfLookup(TfLookup):
    """Subscribes /tf and /tf_static (tf2_msgs/TFMessage) into a ``TransformBuffer``."""

    backend = "sr3d_ros.tf_lookup"

    def __init__(self, node: Any, fallback_latest: bool, cache_s: float = 10.0) -> None:
        """Create the two subscriptions on ``node`` (static: transient-local, like tf2_ros)."""
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage

        self.buffer = TransformBuffer(cache_s)
        self._fallback = fallback_latest
        dynamic = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        static = QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            history=HistoryPolicy.KEEP_LAST,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._subs = [
            node.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), dynamic),
            node.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True), static),
        ]
        self._node = node

    def _on_tf(self, msg: Any, static: bool) -> None:
        for t in msg.transforms:
            self.buffer.set_transform_msg(t, static)

    def lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> np.ndarray:
        """Poll the buffer until the transform at the stamp exists or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.buffer.lookup(target, source, stamp_ns)
            except TransformUnavailable as err:
                if time.monotonic() >= deadline:
                    if self._fallback:
                        return self.buffer.lookup(target, source, stamp_ns, fallback_latest=True)
                    raise TransformUnavailable(str(err)) from None
            time.sleep(0.005)

    def destroy(self) -> None:
        """Remove the subscriptions."""
        for s in self._subs:
            self._node.destroy_subscription(s)


class Tf2RosLookup(TfLookup):
    """``tf2_ros.Buffer`` + ``TransformListener`` (system ROS installs)."""

    backend = "tf2_ros"

    def __init__(self, node: Any, fallback_latest: bool) -> None:
        """Create the buffer and a listener with its own spin thread (no executor starvation)."""
        import tf2_ros

        self._tf2 = tf2_ros
        self.buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self.buffer, node, spin_thread=True)
        self._fallback = fallback_latest

    def lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> np.ndarray:
        """Look up at the stamp; on failure optionally take the latest transform."""
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            t = self.buffer.lookup_transform(
                target, source, Time(nanoseconds=stamp_ns), timeout=Duration(nanoseconds=int(timeout_s * 1e9))
            )
        except self._tf2.TransformException as err:
            if not self._fallback:
                raise TransformUnavailable(f"'{source}' -> '{target}': {err}") from None
            try:
                t = self.buffer.lookup_transform(target, source, Time())
            except self._tf2.TransformException as err2:
                raise TransformUnavailable(f"'{source}' -> '{target}': {err2}") from None
        return transform_msg_to_matrix(t.transform)

    def destroy(self) -> None:
        """Stop the listener's thread."""
        unregister: Callable[[], None] | None = getattr(self._listener, "unregister", None)
        if unregister:
            unregister()


def make_tf_lookup(node: Any, fallback_latest: bool, prefer: str = "auto") -> TfLookup:
    """``tf2_ros`` when importable (or ``prefer == "tf2_ros"``), else the project's own listener."""
    if prefer in ("auto", "tf2_ros"):
        try:
            import tf2_ros  # noqa: F401

            return Tf2RosLookup(node, fallback_latest)
        except ImportError:
            if prefer == "tf2_ros":
                raise
    return OwnTfLookup(node, fallback_latest)
