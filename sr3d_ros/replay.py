"""Replay a rosbag2 through the detector and measure it: mAP against ground truth, latency, dropped frames.

    sr3d-replay BAG --checkpoint model.pt --target-frame base_link --out replay_report          # offline
    sr3d-replay BAG --checkpoint model.pt --target-frame base_link --mode live --out replay_live

Offline, the Detector runs in this process on every cloud, through the node's own frame pipeline (point cap,
decoding, TF at the cloud's stamp from the bag's /tf and /tf_static). Live, the node is started as its own
process, the bag's clouds and transforms are published over DDS at the recorded rate (``--rate`` scales it),
and the node's published detections are recorded: dropped frames and latency are what a robot would see.

Ground truth comes from a ``vision_msgs/Detection3DArray`` topic of the bag (``--gt-topic``) or a sidecar file
(``--gt-file``, YAML or JSON, see docs/REPLAY.md); it is matched to detections by stamp and transformed into the
detection frame with the bag's TF. The frames are scored under ``sr3d-evaluate``'s protocol
(``sr3d_core.evaluation.protocol.EvaluationProtocol``, written to ``report.json`` as ``protocol``): mAP@0.25/0.5
without the classes that have no ground truth, precision / recall of the boxes the node publishes by default and,
unless --score-threshold / --max-detections say otherwise, the checkpoint's own post-processing (its score
threshold, NMS IoU and detection cap), so both report the same numbers on the same frames. The report (Markdown
+ JSON), a latency histogram and bird's-eye views of frames that have ground truth or boxes the node publishes by
default are written to ``--out``. Its rate is the answered frames' own: their number
over the time from the first one's publication (offline: the start of its processing) to the last answer, so the
node's start-up and the model's loading are not in it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from sr3d_core.boxes import wrap_angle
from sr3d_core.detections import Detections
from sr3d_core.evaluation.protocol import EvaluationProtocol
from sr3d_ros.bags import BagError, BagReader
from sr3d_ros.cdr import parse_pointcloud2
from sr3d_ros.conversions import MalformedCloudError, msg_to_detections, stamp_ns
from sr3d_ros.tf_lookup import TransformBuffer, TransformUnavailable

DEFAULT_GT_TOPIC = "/ground_truth/detections"
CLOUD_TYPES = ("sensor_msgs/msg/PointCloud2",)
GT_TYPES = ("vision_msgs/msg/Detection3DArray",)
TF_TYPES = ("tf2_msgs/msg/TFMessage",)


class ReplayError(RuntimeError):
    """The replay cannot run as asked (bag, topic, frame or ground truth); the message says which."""


@dataclass
class ReplayConfig:
    """What to replay and how.

    Attributes:
        bag: the rosbag2 folder.
        checkpoint: the model.
        mode: ``offline`` or ``live``.
        cloud_topic: the clouds' topic in the bag.
        gt_topic: the ground truth's topic: None = ``DEFAULT_GT_TOPIC`` when the bag has it; a name = that topic,
            which the bag must have; empty = no ground truth from the bag.
        gt_file: sidecar ground truth instead of a topic.
        target_frame: frame to infer in (empty: the cloud's frame).
        protocol: how detections are made and scored, as ``sr3d-evaluate`` does: its ``score_threshold`` /
            ``max_detections`` / ``nms_iou`` set the post-processing (the same offline and live; None = the
            checkpoint's own).
        rate: live playback speed factor (1 = recorded rate).
        lockstep: live: send the next cloud only when the node has answered the previous one (or skipped it, or
            ``answer_timeout_s`` passed), whatever the rate: nothing is dropped, so offline and live can be compared
            frame by frame.
        max_frames: replay only the first clouds.
        device: torch device.
        out: report folder.
        bev_frames: frames drawn in bird's-eye view.
        progress: show progress bars.
        startup_timeout_s: live: how long the node may take to become active before the replay gives up (a node
            that exits fails it at once).
        answer_timeout_s: live, lockstep: how long to wait for the answer to one cloud before it counts as dropped.
    """

    bag: Path
    checkpoint: Path
    mode: str = "offline"
    cloud_topic: str = "/camera/depth/color/points"
    gt_topic: Optional[str] = None
    gt_file: Optional[Path] = None
    target_frame: str = "base_link"
    protocol: EvaluationProtocol = EvaluationProtocol()
    rate: float = 1.0
    lockstep: bool = False
    max_frames: Optional[int] = None
    device: str = "cpu"
    out: Path = Path("replay_report")
    bev_frames: int = 4
    progress: bool = True
    startup_timeout_s: float = 120.0
    answer_timeout_s: float = 30.0


@dataclass
class FrameRecord:
    """One cloud of the bag and what became of it."""

    stamp_ns: int
    frame: str = ""
    detections: Optional[Detections] = None
    latency_ms: Optional[float] = None  # offline: processing time; live: publish -> detections received
    error: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    # time.monotonic() when the cloud was published (offline: its processing began) and when its detections arrived
    # (offline: were made); the report's rate is taken over these
    t_sent: Optional[float] = None
    t_answered: Optional[float] = None


# --------------------------------------------------------------------------------------------- ground truth
def load_gt_file(path: Path) -> tuple[str, dict[int, tuple[np.ndarray, list[str]]], Optional[tuple]]:
    """Read a sidecar ground-truth file (YAML or JSON; see docs/REPLAY.md).

    Returns:
        ``(frame_id, {stamp_ns: (boxes (K, 7), class names)}, static)`` where ``static`` is ``(boxes, names)``
        applied to every frame without its own entry, or None.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())  # JSON is YAML
    except FileNotFoundError:
        raise ReplayError(f"ground-truth file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ReplayError(f"ground-truth file {path} is not valid YAML/JSON: {e}") from None
    if not isinstance(data, dict) or "frame_id" not in data:
        raise ReplayError(f"ground-truth file {path}: expected a mapping with 'frame_id' and 'frames' or 'static'")

    def parse(entry: dict, where: str) -> tuple[np.ndarray, list[str]]:
        objs = entry.get("objects", [])
        try:
            boxes = np.array([o["box"] for o in objs], np.float64).reshape(-1, 7)
            names = [str(o["class"]) for o in objs]
        except (KeyError, ValueError, TypeError) as e:
            raise ReplayError(
                f"ground-truth file {path}, {where}: each object needs 'class' and a 7-number 'box' "
                f"(x, y, z, dx, dy, dz, yaw) ({e})"
            ) from None
        return boxes, names

    frames = {}
    for i, f in enumerate(data.get("frames", [])):
        if "stamp_ns" not in f:
            raise ReplayError(f"ground-truth file {path}: frames[{i}] has no 'stamp_ns'")
        frames[int(f["stamp_ns"])] = parse(f, f"frames[{i}]")
    static = parse(data["static"], "static") if "static" in data else None
    if not frames and static is None:
        raise ReplayError(f"ground-truth file {path} has neither 'frames' nor 'static'")
    return str(data["frame_id"]), frames, static


def planar_yaw(m: np.ndarray, what: str) -> float:
    """The yaw of a 4x4 transform between two z-up frames; refuse one that tilts z."""
    if abs(m[2, 2] - 1.0) > 1e-3:
        raise ReplayError(
            f"{what} is not a rotation about z (both frames must be gravity-aligned, z up), so "
            "boxes cannot be carried across it"
        )
    return math.atan2(m[1, 0], m[0, 0])


def move_boxes(boxes: np.ndarray, m: np.ndarray, yaw: float) -> np.ndarray:
    """Boxes ``(K, 7)`` carried by the planar transform ``m`` (rotation ``yaw`` about z)."""
    out = boxes.astype(np.float64).copy()
    out[:, :3] = boxes[:, :3] @ m[:3, :3].T + m[:3, 3]
    out[:, 6] = wrap_angle(boxes[:, 6] + yaw)
    return out


# --------------------------------------------------------------------------------------------- the bag
class ReplayBag:
    """A bag prepared for replay: checked topics, the whole TF history, ground truth by stamp."""

    def __init__(self, cfg: ReplayConfig, class_names: tuple[str, ...]) -> None:
        self.cfg = cfg
        self.reader = BagReader(cfg.bag)
        self.reader.require(cfg.cloud_topic, CLOUD_TYPES)
        if self.reader.count(cfg.cloud_topic) == 0:
            raise ReplayError(f"topic {cfg.cloud_topic!r} in {cfg.bag} has no messages")
        self.tf_topics = [t for t, ty in self.reader.topics.items() if ty in TF_TYPES and t in ("/tf", "/tf_static")]
        duration_s = self.reader.duration_ns * 1e-9 + 1.0
        self.tf = TransformBuffer(cache_s=duration_s)  # the whole bag: look-ups at any stamp
        for m in self.reader.messages(self.tf_topics):
            for t in m.msg.transforms:
                self.tf.set_transform_msg(t, static=m.topic == "/tf_static")
        self.class_names = class_names
        self.gt_frame, self.gt, self.gt_static = "", {}, None
        self.gt_source = ""  # where the ground truth came from, for messages
        if cfg.gt_file is not None:
            self.gt_source = str(cfg.gt_file)
            self.gt_frame, frames, self.gt_static = load_gt_file(cfg.gt_file)
            self.gt = {k: self._labels(v, f"{cfg.gt_file}") for k, v in frames.items()}
            if self.gt_static is not None:
                self.gt_static = self._labels(self.gt_static, f"{cfg.gt_file}")
            return
        topic = cfg.gt_topic
        if topic is None:  # the default topic is optional; a topic asked for by name is not
            topic = DEFAULT_GT_TOPIC if DEFAULT_GT_TOPIC in self.reader.topics else ""
        if topic:
            self.gt_source = f"topic {topic}"
            self.reader.require(topic, GT_TYPES)
            for m in self.reader.messages([topic]):
                stamp = stamp_ns(m.msg.header.stamp)
                try:
                    det = msg_to_detections(m.msg, class_names)
                except ValueError as e:
                    raise ReplayError(
                        f"bag {cfg.bag}: the ground truth on {topic} at {stamp * 1e-9:.3f} s cannot be "
                        f"read: {e} (ground-truth class_id must name a class of the model)"
                    ) from None
                self.gt[stamp] = (det.boxes.astype(np.float64), det.labels)
                self.gt_frame = m.msg.header.frame_id

    def _labels(self, entry: tuple[np.ndarray, list[str]], where: str) -> tuple[np.ndarray, np.ndarray]:
        boxes, names = entry
        unknown = sorted(set(names) - set(self.class_names))
        if unknown:
            raise ReplayError(f"{where}: classes {unknown} are not classes of the model {list(self.class_names)}")
        return boxes, np.array([self.class_names.index(n) for n in names], np.int64)

    @property
    def has_gt(self) -> bool:
        """Ground truth is available."""
        return bool(self.gt) or self.gt_static is not None

    def gt_at(self, stamp: int, frame: str) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """GT boxes and labels of the frame at ``stamp``, in ``frame`` (None: no GT for that stamp)."""
        entry = self.gt.get(stamp, self.gt_static)
        if entry is None:
            return None
        boxes, labels = entry
        if self.gt_frame.lstrip("/") != frame.lstrip("/") and len(boxes):
            try:
                m = self.tf.lookup(frame, self.gt_frame, stamp)
            except TransformUnavailable as e:
                raise ReplayError(
                    f"bag {self.cfg.bag}: no transform from the ground truth's frame "
                    f"'{self.gt_frame}' to the detections' frame '{frame}' at {stamp * 1e-9:.3f} s: "
                    f"{e}"
                ) from None
            boxes = move_boxes(boxes, m, planar_yaw(m, f"the transform '{self.gt_frame}' -> '{frame}'"))
        return boxes, labels

    def check_gt_matches(self, records: list[FrameRecord]) -> None:
        """Refuse per-stamp ground truth of which no stamp is a replayed cloud's: the mAP would silently be missing.

        Raises:
            ReplayError: naming the bag, the ground truth's source and both stamp ranges.
        """
        if not self.gt or self.gt_static is not None or not records:
            return
        stamps = [r.stamp_ns for r in records]
        if any(s in self.gt for s in stamps):
            return
        capped = f" (the first {self.cfg.max_frames}: --max-frames)" if self.cfg.max_frames is not None else ""
        raise ReplayError(
            f"bag {self.cfg.bag}: none of the {len(self.gt)} ground-truth stamps of {self.gt_source} "
            f"({min(self.gt) * 1e-9:.3f} to {max(self.gt) * 1e-9:.3f} s) is the header stamp of one of the "
            f"{len(stamps)} clouds replayed from {self.cfg.cloud_topic}{capped} ({min(stamps) * 1e-9:.3f} to "
            f"{max(stamps) * 1e-9:.3f} s). Ground truth is matched to clouds by stamp: each ground-truth message must "
            "carry its cloud's header.stamp"
        )

    def check_transform(self, cloud: Any) -> None:
        """The bag's TF must carry ``cloud`` into the target frame at its stamp, as the offline replay needs.

        Raises:
            ReplayError: naming the bag and both frames.
        """
        source, target = cloud.header.frame_id, self.cfg.target_frame
        if not target or target.lstrip("/") == source.lstrip("/"):
            return
        try:
            BagTf(self.tf, self.cfg.bag).lookup(target, source, stamp_ns(cloud.header.stamp), 0.0)
        except TransformUnavailable as e:
            raise ReplayError(no_transform_message(self.cfg, source, e)) from None

    def clouds(self):
        """The cloud messages, at most ``max_frames``, each read in place (``msg`` a ``SerializedCloud``)."""
        n = 0
        for m in self.reader.messages([self.cfg.cloud_topic], decode=False):
            if self.cfg.max_frames is not None and n >= self.cfg.max_frames:
                return
            n += 1
            yield dataclasses.replace(m, msg=self.read_cloud(m))

    def read_cloud(self, m: Any) -> Any:
        """A bag message's cloud, read in place from its serialized bytes."""
        try:
            return parse_pointcloud2(m.raw)
        except MalformedCloudError as e:
            raise BagError(
                f"bag {self.cfg.bag}: the message on {m.topic} at {m.timestamp_ns * 1e-9:.3f} s is not "
                f"a readable PointCloud2: {e.reason}"
            ) from None


def no_transform_message(cfg: ReplayConfig, source: str, err: Exception) -> str:
    """The error for a cloud the bag's TF cannot carry into the target frame."""
    return (
        f"no transform from the cloud's frame '{source}' to the target frame '{cfg.target_frame}' in the bag's "
        f"/tf and /tf_static: {err}"
    )


class BagTf:
    """The pipeline's TF look-up over the bag's whole transform history."""

    def __init__(self, buffer: TransformBuffer, bag: Path) -> None:
        self.buffer, self.bag = buffer, bag

    def lookup(self, target: str, source: str, stamp: int, timeout_s: float) -> np.ndarray:
        try:
            return self.buffer.lookup(target, source, stamp)
        except TransformUnavailable as e:
            raise TransformUnavailable(f"bag {self.bag}: {e}") from None


# --------------------------------------------------------------------------------------------- modes
def run_offline(cfg: ReplayConfig, detector: Any, bag: ReplayBag) -> list[FrameRecord]:
    """The Detector in this process on every cloud, through the node's frame pipeline."""
    from sr3d_ros.pipeline import FramePipeline

    pipeline = FramePipeline(detector, cfg.target_frame, BagTf(bag.tf, cfg.bag), 0.0)
    records = []
    clouds = bag.clouds()
    if cfg.progress:
        from tqdm import tqdm

        clouds = tqdm(clouds, total=_n_clouds(cfg, bag), desc="offline replay", unit="frame")
    for m in clouds:
        rec = FrameRecord(stamp_ns(m.msg.header.stamp))
        t0, rec.t_sent = time.perf_counter(), time.monotonic()
        try:
            res = pipeline.process(m.msg)
        except MalformedCloudError as e:
            rec.error = f"malformed ({e.kind}): {e.reason}"
        except TransformUnavailable as e:
            raise ReplayError(no_transform_message(cfg, m.msg.header.frame_id, e)) from None
        else:
            for _, level, text in res.notices:  # what the node would log (each kind once)
                if level == "warn":
                    warn(text)
            rec.frame, rec.detections = res.frame, res.detections
            rec.latency_ms = (time.perf_counter() - t0) * 1e3
            rec.t_answered = time.monotonic()
            rec.extra = {"model_ms": res.model_ms, "decode_ms": res.decode_ms}
        records.append(rec)
    return records


def warn(text: str) -> None:
    """A warning on stderr (progress bars write there too)."""
    print(f"sr3d-replay: warning: {text}", file=sys.stderr, flush=True)


def _n_clouds(cfg: ReplayConfig, bag: ReplayBag) -> int:
    n = bag.reader.count(cfg.cloud_topic)
    return n if cfg.max_frames is None else min(n, cfg.max_frames)


def _msg_class(msgtype: str) -> Any:
    import importlib

    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def node_postprocess_params(post: Any, n_classes: int) -> dict[str, Any]:
    """The node's post-processing parameters that reproduce ``post`` (a ``PostprocessConfig``).

    The node always caps its detections (``max_detections`` is an integer >= 1); no cap is a cap at the most that
    post-processing can return: ``nms_pre`` anchors, each under every class.
    """
    cap = post.max_detections if post.max_detections is not None else post.nms_pre * n_classes
    return {"score_threshold": post.score_threshold, "nms_iou": post.nms_iou, "max_detections": cap}


#: The node's counters of frames it received but did not answer, and what a replayed frame is then marked.
NODE_SKIPS = {
    "tf_failures": "no transform in the node",
    "malformed_inputs": "malformed (the node skipped it)",
    "errors": "failed in the node",
}


def read_final_counters(log_path: Path) -> dict[str, int]:
    """The node's ``final counters: key=value ...`` line (logged when it stops); empty when there is none."""
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if "final counters: " in line:
            pairs = (kv.partition("=") for kv in line.split("final counters: ", 1)[1].split())
            return {k: int(v) for k, _, v in pairs if v.isdigit()}
    return {}


def node_warnings(log_path: Path, limit: int = 5) -> list[str]:
    """The distinct WARN / ERROR lines of the node's log (their text), at most ``limit``."""
    seen: list[str] = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith(("[WARN]", "[ERROR]")) and "]: " in line:
            text = line.split("]: ", 1)[1]
            if text not in seen:
                seen.append(text)
    return seen[:limit]


def run_live(cfg: ReplayConfig, class_names: tuple[str, ...], bag: ReplayBag, post: Any) -> list[FrameRecord]:
    """Start the node in its own process, publish the bag to it at the recorded rate, record its outputs.

    Before the node starts, the bag's TF must carry the first cloud into the target frame (and each later cloud
    before it is sent), as offline. Under ``lockstep`` a frame the node skips (its /diagnostics counters say which)
    ends the wait for its answer at once.

    Raises:
        ReplayError: no transform in the bag, or the node did not start or died (the message names its log).
    """
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import Detection3DArray, LabelInfo

    first = next(iter(bag.clouds()), None)
    if first is not None:
        bag.check_transform(first.msg)  # before spending the node's start-up
    ns, name = "/sr3d_replay", "detector"
    topic = f"{ns}/input/points"
    params = {
        "checkpoint": str(cfg.checkpoint),
        "device": cfg.device,
        "target_frame": cfg.target_frame,
        **node_postprocess_params(post, len(class_names)),
        "input_qos": "reliable",
        "input_qos_depth": 1,
        "tf_timeout_s": 0.5,
        "tf_fallback_latest": False,
        "diagnostics_period_s": 0.2,
    }
    from sr3d_ros.params import default_params_path

    params_file = default_params_path()
    cmd = [
        sys.executable,
        "-c",
        "from sr3d_ros.detector_node import main; main()",
        "--ros-args",
        "-r",
        f"__node:={name}",
        "-r",
        f"__ns:={ns}",
        "--params-file",
        str(params_file),
    ]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v if v != '' else chr(34) * 2}"]
    cmd += ["-r", f"~/input/points:={topic}"]
    cfg.out.mkdir(parents=True, exist_ok=True)
    log_path = cfg.out / "node.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    proc = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115

    def node_died() -> ReplayError:
        return ReplayError(
            f"the node exited (status {proc.poll()}) during the live replay of {cfg.bag}; its log: "
            f"{log_path}\n" + log_path.read_text(errors="replace")[-2000:]
        )

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("sr3d_replay_player", context=ctx)
    got: dict[int, tuple[float, Any]] = {}
    counters: dict[str, int] = {}  # the node's newest /diagnostics counters
    lock = threading.Lock()

    def on_det(msg: Any) -> None:
        with lock:
            got[stamp_ns(msg.header.stamp)] = (time.monotonic(), msg)

    def on_diagnostics(msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith(f"{ns}/{name}:"):
                values = {kv.key: kv.value for kv in status.values}
                with lock:
                    counters.update({k: int(values[k]) for k in NODE_SKIPS if values.get(k, "").isdigit()})

    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    labels: list = []
    node.create_subscription(Detection3DArray, f"{ns}/{name}/detections", on_det, reliable)
    node.create_subscription(LabelInfo, f"{ns}/{name}/label_info", labels.append, latched)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, reliable)
    pubs = {
        "cloud": node.create_publisher(
            _msg_class(CLOUD_TYPES[0]), topic, QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        ),
        "/tf": node.create_publisher(_msg_class(TF_TYPES[0]), "/tf", QoSProfile(depth=100)),
        "/tf_static": node.create_publisher(_msg_class(TF_TYPES[0]), "/tf_static", latched),
    }
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    stop_spin = threading.Event()
    spin = threading.Thread(target=lambda: _spin(executor, ctx, stop_spin), daemon=True)
    spin.start()
    sent: list[tuple[int, float]] = []
    base: dict[str, int] = {}  # the node's skip counters when the newest cloud was sent
    skipped: dict[int, str] = {}  # stamp -> why the node did not answer (lockstep only)
    try:
        deadline = time.monotonic() + cfg.startup_timeout_s
        while not (labels and pubs["cloud"].get_subscription_count() > 0):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exit {proc.poll()}"
                    if proc.poll() is not None
                    else f"not active after {cfg.startup_timeout_s:g} s"
                )
                raise ReplayError(
                    f"the node did not start ({why}); its log: {log_path}\n" + log_path.read_text()[-2000:]
                )
            time.sleep(0.05)
        stream = bag.reader.messages([cfg.cloud_topic, *bag.tf_topics], decode=False)
        n_total = _n_clouds(cfg, bag)
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=n_total, desc="live replay", unit="frame")
        t_start, bag_start, n = None, None, 0
        for m in stream:
            if m.topic == cfg.cloud_topic and n >= n_total:
                break
            if t_start is None:
                t_start, bag_start = time.monotonic(), m.timestamp_ns
            if cfg.lockstep and m.topic == cfg.cloud_topic and sent:
                why = _wait_answer(sent[-1][0], got, counters, base, lock, proc, cfg.answer_timeout_s)
                if why == "died":
                    raise node_died()
                if why:
                    skipped[sent[-1][0]] = why
                t_start = time.monotonic() - (m.timestamp_ns - bag_start) * 1e-9 / cfg.rate  # re-base the clock
            wait = t_start + (m.timestamp_ns - bag_start) * 1e-9 / cfg.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if m.topic == cfg.cloud_topic:
                msg = bag.read_cloud(m)
                bag.check_transform(msg)
                with lock:
                    base = dict(counters)
                pubs["cloud"].publish(m.raw)
                sent.append((stamp_ns(msg.header.stamp), time.monotonic()))
                n += 1
                if bar is not None:
                    bar.update(1)
            else:
                pubs[m.topic].publish(m.raw)
        if bar is not None:
            bar.close()
        if cfg.lockstep and sent:
            why = _wait_answer(sent[-1][0], got, counters, base, lock, proc, cfg.answer_timeout_s)
            if why == "died":
                raise node_died()
            if why:
                skipped[sent[-1][0]] = why
        # Wait for the tail: until the last frame is answered or 3 s pass without any new answer.
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < 3.0 and not (sent and sent[-1][0] in got):
            with lock:
                if len(got) != last_count:
                    last_count, last_change = len(got), time.monotonic()
            time.sleep(0.05)
    finally:
        # The spin thread first (joined: no thread may outlive the context, or the interpreter's exit aborts), then
        # the executor, the node and the context, in that order.
        stop_spin.set()
        spin.join()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    records = []
    for stamp, t_pub in sent:
        rec = FrameRecord(stamp, t_sent=t_pub)
        if stamp in got:
            t_recv, msg = got[stamp]
            rec.frame = msg.header.frame_id
            rec.detections = msg_to_detections(msg, class_names)
            rec.latency_ms = (t_recv - t_pub) * 1e3
            rec.t_answered = t_recv
        else:
            rec.error = skipped.get(stamp, "dropped (no detections received for this stamp)")
        records.append(rec)
    skips = {k: v for k, v in read_final_counters(log_path).items() if k in NODE_SKIPS and v}
    if skips and not cfg.lockstep:
        warn(
            f"the node skipped frames ({', '.join(f'{k}={v}' for k, v in skips.items())}); they count as dropped "
            f"here (--lockstep names each); its log: {log_path}"
        )
    for text in node_warnings(log_path):
        warn(f"the node: {text}")
    return records


def _wait_answer(
    stamp: int, got: dict, counters: dict, base: dict, lock: threading.Lock, proc: Any, timeout: float
) -> str:
    """Wait until the frame at ``stamp`` is answered (""), the node's skip counters rose past ``base`` (the
    frame's mark, from ``NODE_SKIPS``), the node died ("died"), or ``timeout`` passed ("")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if stamp in got:
                return ""
            rose = [k for k in NODE_SKIPS if counters.get(k, 0) > base.get(k, 0)]
        if rose:
            time.sleep(0.3)  # an answer in flight still wins
            with lock:
                return "" if stamp in got else NODE_SKIPS[rose[0]]
        if proc.poll() is not None:
            return "died"
        time.sleep(0.01)
    return ""


def _spin(executor: Any, ctx: Any, stop: threading.Event) -> None:
    while not stop.is_set() and ctx.ok():
        try:
            executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: BLE001 - shutting down
            return


# --------------------------------------------------------------------------------------------- report
def map_over_frames(
    records: list[FrameRecord],
    bag: ReplayBag,
    class_names: tuple[str, ...],
    protocol: EvaluationProtocol = EvaluationProtocol(),
) -> Optional[Any]:
    """mAP over the answered frames that have ground truth (None without ground truth)."""
    from sr3d_core.evaluation.indoor_map import SceneGroundTruth

    if not bag.has_gt:
        return None
    ev = protocol.map_evaluator(class_names)
    n = 0
    for rec in records:
        if rec.detections is None:
            continue
        gt = bag.gt_at(rec.stamp_ns, rec.frame)
        if gt is None:
            continue
        ev.add(SceneGroundTruth(gt[0].astype(np.float32), gt[1]), protocol.judged(rec.detections))
        n += 1
    return ev.compute() if n else None


def precision_recall_over_frames(
    records: list[FrameRecord],
    bag: ReplayBag,
    class_names: tuple[str, ...],
    protocol: EvaluationProtocol = EvaluationProtocol(),
) -> Optional[Any]:
    """Precision / recall of the boxes a user sees (scored at or above the protocol's ``pr_score_threshold``, by
    default the node's default threshold) over the answered frames with ground truth (None without ground truth
    or without a ``pr_score_threshold``)."""
    from sr3d_core.evaluation.indoor_map import SceneGroundTruth

    counter = protocol.pr_counter(class_names)
    if not bag.has_gt or counter is None:
        return None
    n = 0
    for rec in records:
        gt = bag.gt_at(rec.stamp_ns, rec.frame) if rec.detections is not None else None
        if gt is None:
            continue
        counter.add(SceneGroundTruth(gt[0].astype(np.float32), gt[1]), protocol.judged(rec.detections))
        n += 1
    return counter.compute() if n else None


def answered_rate(records: list[FrameRecord]) -> tuple[Optional[float], Optional[float]]:
    """The answered frames' own rate: ``(frames per second, span in seconds)``.

    The span runs from the first answered frame's publication (offline: the start of its processing) to the last
    answer, so whatever came before the first frame (the node's start-up, the model's loading) is not in it; the
    rate is the answered frames over that span. ``(None, None)`` when no answered frame carries both times.
    """
    timed = [r for r in records if r.detections is not None and r.t_sent is not None and r.t_answered is not None]
    if not timed:
        return None, None
    span = max(r.t_answered for r in timed) - min(r.t_sent for r in timed)
    return (len(timed) / span if span > 0 else None), span


def summarize(
    cfg: ReplayConfig, records: list[FrameRecord], result: Any, wall_s: float, post: Any = None, pr: Any = None
) -> dict[str, Any]:
    """The numbers of the report; ``post`` is the post-processing the detections were made with, ``pr`` the
    precision / recall at the protocol's threshold. ``wall_s`` is the whole replay (live: the node's start-up
    included); ``rate_hz`` is the answered frames' own rate (`answered_rate`) over ``rate_span_s``."""
    lat = np.array([r.latency_ms for r in records if r.latency_ms is not None])
    answered = [r for r in records if r.detections is not None]
    rate, span = answered_rate(records)
    out: dict[str, Any] = {
        "bag": str(cfg.bag),
        "mode": cfg.mode,
        "checkpoint": str(cfg.checkpoint),
        "target_frame": cfg.target_frame,
        "score_threshold": post.score_threshold if post is not None else cfg.protocol.score_threshold,
        "nms_iou": post.nms_iou if post is not None else None,
        "max_detections": post.max_detections if post is not None else cfg.protocol.max_detections,
        "frames": len(records),
        "frames_answered": len(answered),
        "frames_dropped": sum(r.error.startswith("dropped") for r in records),
        "frames_malformed": sum(r.error.startswith("malformed") for r in records),
        "frames_no_transform": sum(r.error.startswith("no transform") for r in records),
        "frames_failed": sum(r.error.startswith("failed") for r in records),
        "detections_per_frame": float(np.mean([len(r.detections) for r in answered])) if answered else 0.0,
        "wall_s": round(wall_s, 2),
        "rate_hz": round(rate, 2) if rate is not None else None,
        "rate_span_s": round(span, 3) if span is not None else None,
        "latency_ms": {f"p{q}": float(np.percentile(lat, q)) for q in (50, 90, 99)} if len(lat) else {},
        "protocol": cfg.protocol.to_dict(),
    }
    if cfg.mode == "offline" and answered:
        out["model_ms_p50"] = float(np.median([r.extra["model_ms"] for r in answered]))
    if result is not None:
        out["mAP_0.25"], out["mAP_0.5"] = result.map_at(0.25), result.map_at(0.5)
        out["per_class_AP_0.25"] = {
            n: (None if np.isnan(v) else float(v)) for n, v in zip(result.class_names, result.ap[0])
        }
    if pr is not None:
        iou = pr.iou_thresholds[0]
        row = pr.rows(iou)["all classes"]
        out["user_view"] = {
            "score_threshold": pr.score_threshold,
            "iou": iou,
            **{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()},
        }
    return out


def _ratio_text(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.3f}"


def bev_frames(records: list[FrameRecord], bag: ReplayBag, n: int) -> list[FrameRecord]:
    """Up to ``n`` answered frames to draw from above, evenly spread over those that have something to draw:
    ground truth, or a box scored at or above the node's default threshold (the boxes the drawing shows)."""
    from sr3d_core.config import DEPLOY_SCORE_THRESHOLD

    drawable = []
    for rec in records:
        if rec.detections is None:
            continue
        gt = bag.gt_at(rec.stamp_ns, rec.frame) if bag.has_gt else None
        has_gt = gt is not None and bool((np.asarray(gt[1]) >= 0).any())  # label -1: ignored, not drawn
        if has_gt or bool((np.asarray(rec.detections.scores) >= DEPLOY_SCORE_THRESHOLD).any()):
            drawable.append(rec)
    if n <= 0 or not drawable:
        return []
    return [drawable[int(i)] for i in np.linspace(0, len(drawable) - 1, min(n, len(drawable)))]


def write_report(
    cfg: ReplayConfig, summary: dict[str, Any], records: list[FrameRecord], bag: ReplayBag, result: Any
) -> Path:
    """report.json, report.md, latency_hist.png and bev_<i>.png in ``cfg.out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sr3d_core.config import DEPLOY_SCORE_THRESHOLD
    from sr3d_core.evaluation.bev import bev_figure, save_png

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    lat = [r.latency_ms for r in records if r.latency_ms is not None]
    if lat:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(lat, bins=30)
        ax.set_xlabel(
            "latency ms (" + ("publish → detections received" if cfg.mode == "live" else "decode + TF + detect") + ")"
        )
        ax.set_ylabel("frames")
        fig.tight_layout()
        fig.savefig(out / "latency_hist.png", dpi=80)
        plt.close(fig)
    for old in out.iterdir():  # views of an earlier report in this folder would pass for this one's
        if re.fullmatch(r"bev_\d+\.png", old.name):
            old.unlink()
    picks = bev_frames(records, bag, cfg.bev_frames)
    images = []
    for i, rec in enumerate(picks):
        gt = bag.gt_at(rec.stamp_ns, rec.frame) if bag.has_gt else None
        gt_boxes, gt_labels = gt if gt is not None else (np.zeros((0, 7)), np.zeros(0, np.int64))
        det = rec.detections
        # Boxes only (the clouds are not kept), at the score the node reports at by default.
        fig = bev_figure(
            None,
            gt_boxes,
            gt_labels,
            bag.class_names,
            det.boxes,
            det.scores,
            det.labels,
            DEPLOY_SCORE_THRESHOLD,
            title=f"{rec.stamp_ns * 1e-9:.2f} s in {rec.frame}",
            size_in=5.0,
            dpi=80,
        )
        fig.axes[0].plot(0, 0, "k^")  # the frame's origin
        name = f"bev_{i}.png"
        save_png(fig, out / name)
        images.append(name)
    lines = [
        f"# Replay report: {cfg.mode}",
        "",
        f"- bag: `{cfg.bag}`",
        f"- checkpoint: `{cfg.checkpoint}`",
        f"- frames: {summary['frames']}, answered {summary['frames_answered']}, dropped "
        f"{summary['frames_dropped']}, malformed {summary['frames_malformed']}",
        f"- detections per frame (score > {summary['score_threshold']}, at most "
        f"{summary['max_detections'] or 'all'}): {summary['detections_per_frame']:.1f}",
    ]
    if summary["rate_hz"] is not None:
        span = (
            "from the first one's publication to the last answer; the node's start-up is not in it"
            if cfg.mode == "live"
            else "from the start of the first one's processing to the end of the last's; loading the model is not in it"
        )
        lines.append(
            f"- rate: {summary['rate_hz']:.2f} answered frames per second ({summary['frames_answered']} "
            f"frames over {summary['rate_span_s']:.2f} s, {span}; the whole replay took "
            f"{summary['wall_s']:.1f} s)"
        )
    if summary["latency_ms"]:
        lines.append("- latency ms p50 / p90 / p99: " + " / ".join(f"{v:.1f}" for v in summary["latency_ms"].values()))
    if images:
        lines.append(
            f"- bird's-eye views: {len(images)} of the answered frames that have ground truth (green) or a "
            f"box scored >= {DEPLOY_SCORE_THRESHOLD:g} (red)"
        )
    elif cfg.bev_frames > 0:
        lines.append(
            "- no bird's-eye view: no answered frame has ground truth or a box scored >= " f"{DEPLOY_SCORE_THRESHOLD:g}"
        )
    if "user_view" in summary:
        u = summary["user_view"]
        lines.append(
            f"- boxes scored >= {u['score_threshold']:g} (what the node publishes by default), "
            f"IoU >= {u['iou']:g}: "
            f"precision {_ratio_text(u['precision'])}, recall {_ratio_text(u['recall'])} "
            f"(TP {u['tp']}, FP {u['fp']}, FN {u['fn']})"
        )
    if "mAP_0.25" in summary:
        lines += [f"- **mAP@0.25 {summary['mAP_0.25']:.4f}, mAP@0.5 {summary['mAP_0.5']:.4f}**", "", result.as_table()]
    else:
        lines.append("- no ground truth: mAP not computed")
    lines += ["", *(f"![{n}]({n})" for n in ["latency_hist.png", *images] if (out / n).exists())]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"


def replay(cfg: ReplayConfig) -> dict[str, Any]:
    """Run a replay and write its report; returns the summary."""
    from sr3d_core.inference import Detector
    from sr3d_core.runtime import keep_freed_memory

    keep_freed_memory()
    if cfg.mode not in ("offline", "live"):
        raise ReplayError(f"mode must be offline or live, got {cfg.mode!r}")
    detector = Detector.from_checkpoint(cfg.checkpoint, device=cfg.device)
    # Only what the protocol asks for changes: by default the checkpoint's post-processing, as sr3d-evaluate runs it.
    overrides = cfg.protocol.postprocess_overrides()
    if overrides:
        detector.set_postprocess(**overrides)
    bag = ReplayBag(cfg, detector.class_names)
    t0 = time.monotonic()
    if cfg.mode == "offline":
        records = run_offline(cfg, detector, bag)
    else:
        records = run_live(cfg, detector.class_names, bag, detector.postprocess)
    wall = time.monotonic() - t0
    bag.check_gt_matches(records)
    result = map_over_frames(records, bag, detector.class_names, cfg.protocol)
    summary = summarize(
        cfg,
        records,
        result,
        wall,
        detector.postprocess,
        precision_recall_over_frames(records, bag, detector.class_names, cfg.protocol),
    )
    write_report(cfg, summary, records, bag, result)
    return summary


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and every option's default (in words where the help gives it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "(default:" in (action.help or "") or action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def main(argv: Optional[list[str]] = None) -> int:
    """Console script ``sr3d-replay``."""
    ap = argparse.ArgumentParser(prog="sr3d-replay", description=__doc__, formatter_class=_HelpFormatter)
    ap.add_argument("bag", type=Path, help="the rosbag2 folder (mcap or sqlite3)")
    ap.add_argument("--checkpoint", required=True, type=Path, help="the model")
    ap.add_argument(
        "--mode",
        choices=["offline", "live"],
        default="offline",
        help="offline: the detector in this process; live: the node in its own process, over DDS",
    )
    ap.add_argument("--cloud-topic", default=ReplayConfig.cloud_topic, help="the PointCloud2 topic of the bag")
    ap.add_argument(
        "--gt-topic",
        default=None,
        help=f"the ground truth's Detection3DArray topic, which the bag must then have; '' = none "
        f"(default: {DEFAULT_GT_TOPIC} when the bag has it)",
    )
    ap.add_argument(
        "--gt-file",
        type=Path,
        default=None,
        help="sidecar ground truth (YAML/JSON, docs/REPLAY.md) instead of a topic (default: none)",
    )
    ap.add_argument(
        "--target-frame",
        default=ReplayConfig.target_frame,
        help="gravity-aligned z-up frame to infer in; '' = the cloud's frame",
    )
    ap.add_argument(
        "--score-threshold",
        type=float,
        default=None,
        help="minimum score (default: the checkpoint's postprocess.score_threshold, as sr3d-evaluate)",
    )
    ap.add_argument(
        "--max-detections",
        type=int,
        default=None,
        help="detections kept per frame (default: the checkpoint's postprocess.max_detections, as "
        "sr3d-evaluate; none for TR3D's configs)",
    )
    ap.add_argument(
        "--nms-iou",
        type=float,
        default=None,
        help="BEV IoU threshold of the per-class NMS (default: the checkpoint's postprocess.nms_iou, as "
        "sr3d-evaluate)",
    )
    ap.add_argument("--rate", type=float, default=1.0, help="live playback speed factor")
    ap.add_argument(
        "--lockstep",
        action="store_true",
        help="live: send each cloud only after the previous one was answered or skipped by the node " "(no drops)",
    )
    ap.add_argument("--max-frames", type=int, default=None, help="replay only the first clouds (default: all)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (offline mode and the live node)")
    ap.add_argument("--out", type=Path, default=Path("replay_report"), help="report folder")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    a = ap.parse_args(argv)
    if a.rate <= 0 or (a.max_frames is not None and a.max_frames < 1):
        ap.error("--rate must be > 0 and --max-frames >= 1")
    if a.gt_topic and a.gt_file is not None:
        ap.error("give --gt-topic or --gt-file, not both")
    if a.score_threshold is not None and not 0.0 <= a.score_threshold < 1.0:
        ap.error(f"--score-threshold must lie in [0, 1), got {a.score_threshold}")
    if a.max_detections is not None and a.max_detections < 1:
        ap.error(f"--max-detections must be >= 1, got {a.max_detections}")
    try:  # the protocol's own rules for its values (the same as sr3d-evaluate's)
        protocol = EvaluationProtocol(
            score_threshold=a.score_threshold, max_detections=a.max_detections, nms_iou=a.nms_iou
        )
    except ValueError as e:
        ap.error(str(e))
    cfg = ReplayConfig(
        a.bag,
        a.checkpoint,
        a.mode,
        a.cloud_topic,
        a.gt_topic,
        a.gt_file,
        a.target_frame,
        protocol,
        a.rate,
        a.lockstep,
        a.max_frames,
        a.device,
        a.out,
        progress=not a.no_progress,
    )
    try:
        s = replay(cfg)
    except (BagError, ReplayError, FileNotFoundError) as e:
        print(f"sr3d-replay: error: {e}", file=sys.stderr)
        return 2
    maps = f"mAP@0.25 {s['mAP_0.25']:.4f}  mAP@0.5 {s['mAP_0.5']:.4f}  " if "mAP_0.25" in s else "no ground truth  "
    lat = s["latency_ms"]
    skipped = sum(s[k] for k in ("frames_malformed", "frames_no_transform", "frames_failed"))
    print(
        f"{s['mode']}: {s['frames_answered']}/{s['frames']} frames answered, {s['frames_dropped']} dropped"
        + (f", {skipped} skipped (malformed, no transform or failed)" if skipped else "")
        + f"  {maps}"
        f"latency p50 {lat.get('p50', float('nan')):.1f} ms  p90 {lat.get('p90', float('nan')):.1f} ms  "
        f"report: {cfg.out / 'report.md'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
