"""sr3d_ros.inbox over real DDS: the inference thread takes the newest cloud and counts the ones it never saw."""

from __future__ import annotations

import importlib.util
import os
import random
import threading
import time

import pytest
from children import PATIENCE_S  # noqa: E402

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("rclpy", "sensor_msgs", "std_msgs")), reason="needs rclpy"
)


@pytest.fixture()
def ros():
    import rclpy

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=random.SystemRandom().randint(1, 101))
    nodes = []
    try:
        nodes.append(rclpy.create_node("det", namespace="/inbox_test", context=context))
        nodes.append(rclpy.create_node("driver", context=context))
        yield tuple(nodes)
    finally:  # nodes before their context, also when the test failed
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def cloud(sec: int):
    from sensor_msgs.msg import PointCloud2

    msg = PointCloud2(height=1, width=1, point_step=4, row_step=4, data=bytes(4))
    msg.header.stamp.sec = sec
    return msg


def publish(pub, secs, wait: float = 0.0) -> None:
    """Publish clouds stamped ``secs`` and return once the reader acknowledged them all (they are in its history,
    nobody takes), then ``wait`` seconds more; a busy machine makes the acknowledgement slower, never missing."""
    from rclpy.duration import Duration

    for s in secs:
        pub.publish(cloud(s))
        time.sleep(0.01)
    assert pub.wait_for_all_acked(Duration(seconds=PATIENCE_S)), "clouds not acknowledged by the reader"
    time.sleep(wait)


def stamp_of(raw: bytes) -> int:
    from sr3d_ros.cdr import parse_pointcloud2

    return parse_pointcloud2(raw).header.stamp.sec


def connected(pub, timeout: float = PATIENCE_S) -> None:
    t0 = time.monotonic()
    while pub.get_subscription_count() == 0:
        assert time.monotonic() - t0 < timeout, "no DDS match"
        time.sleep(0.05)


@pytest.mark.parametrize("depth", [1, 3])
def test_newest_cloud_and_skipped_count(ros, depth: int) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    from sr3d_ros.inbox import CloudInbox

    owner, driver = ros
    qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    inbox = CloudInbox(owner, "/inbox_test/points", qos)
    timer = threading.Timer(0.4, lambda: pub.publish(cloud(8)))  # arrives while the call waits: neither is
    try:
        pub = driver.create_publisher(
            PointCloud2, "/inbox_test/points", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )
        connected(pub)
        assert inbox.take_newest(0.05) is None  # nothing sent yet
        publish(pub, [1])
        raw, skipped, _ = inbox.take_newest(1.0)
        assert (stamp_of(raw), skipped) == (1, 0)
        publish(pub, [2, 3, 4, 5, 6])
        raw, skipped, _ = inbox.take_newest(1.0)
        # 4 clouds never processed: with depth 3, two were taken and superseded, two replaced in DDS's history
        assert (stamp_of(raw), skipped) == (6, 4)
        publish(pub, [7], wait=0.5)  # waited 0.5 s in DDS before the call: that is not the take's time
        raw, skipped, take_ms = inbox.take_newest(1.0)
        assert (stamp_of(raw), skipped) == (7, 0) and 0.0 <= take_ms < 100.0
        timer.start()
        deadline = time.monotonic() + PATIENCE_S
        got = inbox.take_newest(3.0)
        while got is None and time.monotonic() < deadline:  # the executor may wake without the cloud first
            got = inbox.take_newest(3.0)
        assert got is not None and stamp_of(got[0]) == 8 and 0.0 <= got[2] < 100.0
        assert "det_input" in owner.get_node_names()
        inbox.close()
        inbox.close()  # idempotent
        assert inbox.take_newest(0.05) is None
        t0 = time.monotonic()  # the graph shows the helper node gone once discovery says so: no fixed time
        while "det_input" in owner.get_node_names() and time.monotonic() - t0 < PATIENCE_S:
            time.sleep(0.05)
        assert "det_input" not in owner.get_node_names()
    finally:
        timer.cancel()
        if timer.is_alive():
            timer.join()
        inbox.close()


def test_each_publisher_is_counted_on_its_own(ros) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    from sr3d_ros.inbox import CloudInbox

    owner, driver = ros
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    inbox = CloudInbox(owner, "/inbox_test/points", qos)
    try:
        a = driver.create_publisher(PointCloud2, "/inbox_test/points", qos)
        b = owner.create_publisher(PointCloud2, "/inbox_test/points", qos)
        connected(a)
        connected(b)
        publish(a, [1])
        assert inbox.take_newest(1.0)[1] == 0
        for sec in (2, 3):  # b's sequence numbers run ahead of a's: 1, 2
            publish(b, [sec])
            assert inbox.take_newest(1.0)[1] == 0
        publish(a, [4, 5, 6])  # a's 2, 3, 4: two skipped (against b's numbers it would look like one)
        raw, skipped, _ = inbox.take_newest(1.0)
        assert (stamp_of(raw), skipped) == (6, 2)
    finally:
        inbox.close()


def test_direct_take_is_the_default_where_rclpy_has_it(ros) -> None:
    from rclpy.qos import QoSProfile

    from sr3d_ros.inbox import CloudInbox, direct_take_available

    inbox = CloudInbox(ros[0], "/inbox_test/points", QoSProfile(depth=1))
    try:
        assert inbox.direct == direct_take_available()
    finally:
        inbox.close()


@pytest.mark.parametrize("how", ["asked", "internal API missing"])
def test_fallback_takes_through_an_ordinary_subscription(ros, monkeypatch, how: str) -> None:
    """Without rclpy's internal API the inbox takes through a subscription its own executor spins: the newest cloud,
    the superseded ones counted (those replaced in DDS's history before they reached it are not)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    from sr3d_ros import inbox as inbox_module

    owner, driver = ros
    if how == "asked":
        inbox = inbox_module.CloudInbox(
            owner, "/inbox_test/points", QoSProfile(depth=3, reliability=ReliabilityPolicy.RELIABLE), direct=False
        )
    else:
        monkeypatch.setattr(inbox_module, "_rclpy", None)
        inbox = inbox_module.CloudInbox(
            owner, "/inbox_test/points", QoSProfile(depth=3, reliability=ReliabilityPolicy.RELIABLE)
        )
    try:
        assert not inbox.direct
        pub = driver.create_publisher(
            PointCloud2, "/inbox_test/points", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )
        connected(pub)
        assert inbox.take_newest(0.05) is None
        publish(pub, [1])
        got = None
        deadline = time.monotonic() + PATIENCE_S
        while got is None and time.monotonic() < deadline:
            got = inbox.take_newest(1.0)
        assert got is not None and (stamp_of(got[0]), got[1]) == (1, 0)
        publish(pub, [2, 3, 4, 5, 6])
        raw, skipped, take_ms = inbox.take_newest(1.0)
        assert stamp_of(raw) == 6 and skipped == 2 and take_ms >= 0.0  # 4, 5 superseded; 2, 3 replaced by DDS
        assert "det_input" in owner.get_node_names()
        inbox.close()
        inbox.close()
        assert inbox.take_newest(0.05) is None
    finally:
        inbox.close()
