"""rosbag2 files: the message type store, writing (synthetic bags) and reading (replay), with ``rosbags``.

Reading needs no ROS installation: messages are decoded by ``rosbags`` into objects with the ROS field names,
which the node's conversions (``pointcloud2_to_array``, ``msg_to_detections``, the TF buffer) read as they read
rclpy messages. Types a bag carries definitions for (``ros2 bag record`` stores them) are registered from the
bag; ``vision_msgs`` comes from this package's ``interfaces/`` copy when the bag has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

SCHEMA_DIRS = (Path(__file__).resolve().parent.parent / "interfaces",)


class BagError(RuntimeError):
    """A bag cannot be read as needed; the message names the bag, topic or type."""


def typestore() -> Any:
    """A ``rosbags`` type store with the ROS 2 Kilted types plus ``vision_msgs`` (from ``interfaces/``)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    for root in SCHEMA_DIRS:
        for pkg in ("vision_msgs",):
            for f in sorted((root / pkg / "msg").glob("*.msg")) if (root / pkg / "msg").is_dir() else ():
                name = f"{pkg}/msg/{f.stem}"
                if name not in store.fielddefs:
                    store.register(get_types_from_msg(f.read_text(), name))
    return store


def _qos(durability_transient_local: bool) -> Any:
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    never = QosTime(sec=0, nsec=0)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=1 if durability_transient_local else 10,
        reliability=QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if durability_transient_local else QosDurability.VOLATILE,
        deadline=never,
        lifespan=never,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=never,
        avoid_ros_namespace_conventions=False,
    )


class BagWriter:
    """Write rclpy messages (serialized by rclpy) into a rosbag2 with their definitions and type hashes.

    Args:
        path: the bag folder (must not exist).
        storage: ``"mcap"`` or ``"sqlite3"``.
    """

    def __init__(self, path: Path, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
        if Path(path).exists():
            raise FileExistsError(f"{path} exists; choose a new bag folder")
        self._store = typestore()
        self._writer = Writer(path, version=9, storage_plugin=plugins[storage])
        self._writer.open()
        self._conns: dict[str, Any] = {}

    def write(self, topic: str, msg: Any, stamp_ns: int, latched: bool = False) -> None:
        """Append one message at ``stamp_ns`` (the bag's receive time)."""
        from rclpy.serialization import serialize_message

        if topic not in self._conns:
            msgtype = type(msg).__module__.split(".")[0] + "/msg/" + type(msg).__name__
            self._conns[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self._store, offered_qos_profiles=[_qos(latched)]
            )
        self._writer.write(self._conns[topic], int(stamp_ns), serialize_message(msg))

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        self._writer.close()


@dataclass
class BagMessage:
    """One message read from a bag."""

    topic: str
    msgtype: str
    timestamp_ns: int
    raw: bytes
    msg: Any


class BagReader:
    """Read a rosbag2 (mcap or sqlite3; written by us or by ``ros2 bag record``), decoding on request.

    Args:
        path: the bag folder (or its single storage file).

    Raises:
        BagError: the bag is missing, truncated or unreadable (the message names it).
    """

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag2 import Reader
        from rosbags.typesys import get_types_from_msg

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag not found: {self.path}")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as e:  # rosbags raises several types for damaged files
            raise BagError(f"cannot open bag {self.path}: {type(e).__name__}: {e}") from None
        self.store = typestore()
        for conn in self._reader.connections:
            if conn.msgtype in self.store.fielddefs:
                continue
            msgdef = getattr(conn, "msgdef", None)
            text = getattr(msgdef, "data", msgdef) if msgdef is not None else None
            if text:
                try:
                    self.store.register(get_types_from_msg(text, conn.msgtype))
                except Exception:  # noqa: BLE001 - an unparsable definition is reported when the topic is used
                    pass

    @property
    def topics(self) -> dict[str, str]:
        """Topic → message type."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def duration_ns(self) -> int:
        """Time from the first to the last message."""
        return int(self._reader.duration or 0)

    @property
    def start_ns(self) -> int:
        """Receive time of the first message."""
        return int(self._reader.start_time)

    def count(self, topic: str) -> int:
        """Messages on a topic."""
        return sum(c.msgcount for c in self._reader.connections if c.topic == topic)

    def require(self, topic: str, types: tuple[str, ...]) -> str:
        """The type of ``topic``, checked against ``types``; a clear error when it is missing or decodes to none."""
        t = self.topics
        if topic not in t:
            raise BagError(
                f"bag {self.path} has no topic {topic!r}; it has: "
                + ", ".join(f"{k} ({v})" for k, v in sorted(t.items()))
            )
        if t[topic] not in types:
            raise BagError(f"topic {topic!r} in {self.path} is {t[topic]}, expected {' or '.join(types)}")
        if t[topic] not in self.store.fielddefs:
            raise BagError(
                f"topic {topic!r} in {self.path} has type {t[topic]} and the bag carries no definition " "for it"
            )
        return t[topic]

    def messages(self, topics: list[str], decode: bool = True) -> Iterator[BagMessage]:
        """Messages of ``topics`` in receive-time order."""
        conns = [c for c in self._reader.connections if c.topic in topics]
        if not conns:  # rosbags reads every connection when given none
            return
        try:
            for conn, ts, raw in self._reader.messages(connections=conns):
                msg = self.store.deserialize_cdr(raw, conn.msgtype) if decode else None
                yield BagMessage(conn.topic, conn.msgtype, int(ts), bytes(raw), msg)
        except BagError:
            raise
        except Exception as e:  # noqa: BLE001 - a truncated chunk surfaces here, mid-way
            raise BagError(f"bag {self.path} is damaged or truncated: {type(e).__name__}: {e}") from None

    def close(self) -> None:
        """Close the files."""
        self._reader.close()
