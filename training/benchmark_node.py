"""Benchmark the detector node end to end over real DDS, side by side with the bare ``Detector.detect``.

Renders full-resolution synthetic camera frames (the sunrgbd-like generator without its 50k-point subsampling:
~300k valid points each, with furniture and ground truth), sends them as 640x480 organized RGB-D clouds (x, y, z
float32 + packed rgb, NaN where the sensor saw nothing, each in its camera's optical frame) at a fixed rate to
``sr3d_detector_node`` started through its console script (target_frame ``base_link`` through static TFs), then
reports end-to-end latency (input stamp -> detections received), node processing and model time, throughput, drop
rates and the mAP of what the node published; then times the node's frame pipeline (``FramePipeline``: conversion,
TF, ``Detector.detect``) on the same frames in-process, and one plain copy of a serialized cloud: taking a cloud
from the middleware is two such copies, the floor under the node's overhead.

Example:
    source scripts/env.sh
    python training/benchmark_node.py --checkpoint runs/baseline_sunrgbd_small/final.pt --rate 30
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# The profile the package ships for camera-size clouds (scripts/env.sh and the launch file use it too).
FASTDDS_PROFILE = REPO / "config" / "fastdds_large_messages.xml"


@dataclass(frozen=True)
class BenchConfig:
    """Benchmark settings (from the command line)."""

    checkpoint: str
    model_config: str
    seconds: float
    rate_hz: float
    preset: str
    seed: int
    frames: int
    device: str
    score_threshold: float
    max_detections: int
    input_qos: str
    markers: bool
    bare_repeats: int
    torch_threads: int


@dataclass
class Frame:
    """One benchmark frame: an organized cloud in its camera's optical frame, its mount, and the ground truth.

    Attributes:
        xyz: ``(H*W, 3)`` float32, row-major pixels, NaN where the sensor saw nothing.
        rgb: ``(H*W, 3)`` uint8.
        cam_to_base: ``(4, 4)`` optical frame -> ``base_link`` (gravity-aligned, z up, origin at the camera).
        gt_boxes: ``(K, 7)`` boxes in ``base_link``; gt_labels: ``(K,)``.
        height, width: image size.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    cam_to_base: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    height: int
    width: int


def rgbd_frames(cfg: BenchConfig) -> list[Frame]:
    """Full-resolution synthetic RGB-D frames (the sunrgbd-like generator, no subsampling), put back on their
    pixel grid (`organize`: NaN where the sensor saw nothing)."""
    from sr3d_core.data.synthetic.presets import PRESETS
    from sr3d_core.data.synthetic.scene import generate_scene
    from sr3d_core.data.synthetic.sensor import organize

    preset = PRESETS[cfg.preset].full_resolution()
    if preset.num_views != (1, 1):
        raise SystemExit(f"--preset {cfg.preset} fuses several views; the node benchmark needs a single-view preset")
    out = []
    for i in range(cfg.frames):
        s = generate_scene(preset, cfg.seed, i)
        h, w = preset.camera.height, preset.camera.width
        opt = (s.points[:, :3] - s.cam2frame[:3, 3]) @ s.cam2frame[:3, :3]  # sample frame -> optical
        xyz, rgb = organize(preset.camera, opt, s.points[:, 3:6])
        out.append(Frame(xyz, rgb, s.cam2frame.copy(), s.boxes, s.labels, h, w))
    return out


class CameraMounts:
    """The TF look-up of the benchmark's static mounts: ``camera_optical_<k>`` -> ``base_link`` is frame k's.

    Args:
        frames: The benchmark frames, in the order of their camera frame names.
    """

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames

    def lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> np.ndarray:
        """The 4x4 mount of camera ``source`` (``target`` is always ``base_link``)."""
        return self.frames[int(source.rsplit("_", 1)[1])].cam_to_base


def packed_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, 3) -> uint32 0x00RRGGBB."""
    c = rgb.astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def percentiles(x: list[float]) -> str:
    """``p50 / p90 / p99 / max`` of a list, or ``n/a``."""
    if not x:
        return "n/a"
    a = np.asarray(x)
    return " / ".join(f"{v:.1f}" for v in (*np.percentile(a, [50, 90, 99]), a.max()))


def run(cfg: BenchConfig) -> None:
    """Run the node benchmark and print the table."""
    tmp = Path(tempfile.mkdtemp(prefix="sr3d_bench_"))
    os.environ.update(FASTDDS_DEFAULT_PROFILES_FILE=str(FASTDDS_PROFILE), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    if os.environ.get("ROS_DISTRO") == "humble":  # Humble's Fast DDS reads the older variable name
        os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))

    import rclpy
    from geometry_msgs.msg import TransformStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import Float64, Header
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection3DArray, LabelInfo
    from visualization_msgs.msg import MarkerArray

    from sr3d_core.evaluation.indoor_map import IndoorMapEvaluator, SceneGroundTruth
    from sr3d_core.inference import Detector, write_random_checkpoint
    from sr3d_core.runtime import set_torch_threads
    from sr3d_ros.conversions import make_pointcloud2, msg_to_detections
    from sr3d_ros.pipeline import FramePipeline
    from sr3d_ros.tf_lookup import matrix_to_quaternion

    ckpt = cfg.checkpoint or str(write_random_checkpoint(tmp / "random.pt", cfg.model_config))
    frames = rgbd_frames(cfg)
    height, width = frames[0].height, frames[0].width
    # Frame k is seen by camera_optical_k, mounted on base_link by a static TF (each scene's camera has its own tilt).
    msgs = [
        make_pointcloud2(
            Header(frame_id=f"camera_optical_{k}"),
            height,
            width,
            [("x", f.xyz[:, 0], 7), ("y", f.xyz[:, 1], 7), ("z", f.xyz[:, 2], 7), ("rgb", packed_rgb(f.rgb), 7)],
        )
        for k, f in enumerate(frames)
    ]

    ns, name = "/bench", "sr3d_detector"
    fqn = f"{ns}/{name}"
    exe = Path(sys.executable).parent / "sr3d_detector_node"
    cmd = [
        str(exe),
        "--ros-args",
        "-r",
        f"__node:={name}",
        "-r",
        f"__ns:={ns}",
        "--params-file",
        str(REPO / "config" / "node.yaml"),
        "-p",
        f"checkpoint:={ckpt}",
        "-p",
        f"device:={cfg.device}",
        "-p",
        "target_frame:=base_link",
        "-p",
        f"input_qos:={cfg.input_qos}",
        "-p",
        f"score_threshold:={cfg.score_threshold}",
        "-p",
        f"max_detections:={cfg.max_detections}",
        "-p",
        f"torch_threads:={cfg.torch_threads}",
        "-r",
        "~/input/points:=/bench/points",
    ]
    log = open(tmp / "node.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))

    rclpy.init()
    node = Node("sr3d_benchmark")
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    sent: dict[int, int] = {}  # stamp ns -> frame index
    e2e, proc_ms, model_ms, n_dets = [], [], [], []
    arrays: list[tuple[int, Detection3DArray]] = []  # (frame index, message)
    ready = threading.Event()
    lock = threading.Lock()

    def on_det(m: Detection3DArray) -> None:
        t = time.time()
        key = m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
        with lock:
            if key in sent:
                e2e.append((t - key * 1e-9) * 1e3)
                n_dets.append(len(m.detections))
                arrays.append((sent[key], m))

    node.create_subscription(Detection3DArray, f"{fqn}/detections", on_det, reliable)
    node.create_subscription(Float64, f"{fqn}/debug/processing_time_ms", lambda m: proc_ms.append(m.data), reliable)
    node.create_subscription(Float64, f"{fqn}/debug/model_time_ms", lambda m: model_ms.append(m.data), reliable)
    node.create_subscription(LabelInfo, f"{fqn}/label_info", lambda m: ready.set(), latched)
    if cfg.markers:
        node.create_subscription(MarkerArray, f"{fqn}/markers", lambda m: None, reliable)
    pub = node.create_publisher(PointCloud2, "/bench/points", reliable)
    tf_pub = node.create_publisher(TFMessage, "/tf_static", latched)
    mounts = []
    for k, f in enumerate(frames):
        tf = TransformStamped(header=Header(frame_id="base_link"), child_frame_id=f"camera_optical_{k}")
        tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = f.cam_to_base[:3, 3]
        r = tf.transform.rotation
        r.x, r.y, r.z, r.w = matrix_to_quaternion(f.cam_to_base)
        mounts.append(tf)
    tf_pub.publish(TFMessage(transforms=mounts))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        t0 = time.monotonic()
        while not (ready.is_set() and pub.get_subscription_count() > 0):
            if proc.poll() is not None or time.monotonic() - t0 > 120:
                raise RuntimeError(f"node did not start; see {tmp / 'node.log'}")
            time.sleep(0.05)
        # warm-up: one frame end to end, not counted
        warm = msgs[0]
        warm.header.stamp = node.get_clock().now().to_msg()
        pub.publish(warm)
        time.sleep(2.0)
        with lock:
            e2e.clear(), n_dets.clear(), arrays.clear()
        proc_ms.clear(), model_ms.clear()
        period, n_sent = 1.0 / cfg.rate_hz, 0
        start = time.monotonic()
        while time.monotonic() - start < cfg.seconds:
            k = n_sent % len(msgs)
            msg = msgs[k]
            now = time.time_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 10**9)
            with lock:
                sent[now] = k
            pub.publish(msg)
            n_sent += 1
            time.sleep(max(0.0, start + n_sent * period - time.monotonic()))
        send_s = time.monotonic() - start
        time.sleep(3.0)  # let the last frame finish
    finally:
        proc.send_signal(2)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    diag = _last_diagnostics(tmp / "node.log")

    # the bare library on the same frames with the node's thread count (the node is gone, the input stream too),
    # through the node's own frame pipeline (point cap, decoding, TF, detect) with the cameras' static mounts
    threads = set_torch_threads(cfg.torch_threads)
    det = Detector.from_checkpoint(ckpt, cfg.device if cfg.device != "auto" else "cpu")
    det.score_threshold, det.max_detections = cfg.score_threshold, cfg.max_detections
    pipeline = FramePipeline(det, "base_link", CameraMounts(frames))
    conv_ms, bare_ms, bare_out = [], [], {}
    bare_eval = IndoorMapEvaluator(det.class_names, skip_classes_without_gt=True)
    pipeline.process(msgs[0])  # warm-up
    for r in range(max(cfg.bare_repeats, len(msgs))):  # every frame at least once: the reference per frame
        k = r % len(msgs)
        res = pipeline.process(msgs[k])
        conv_ms.append(res.decode_ms + res.tf_ms)
        bare_ms.append(res.model_ms)
        if r < len(msgs):
            bare_out[k] = res.detections
            bare_eval.add(SceneGroundTruth(frames[k].gt_boxes, frames[k].gt_labels), res.detections)
    # The decoding alone, compiled pass and numpy path interleaved (same bits; see sr3d_core.sparse.native)
    from sr3d_core.preprocess import cap_rows
    from sr3d_core.sparse import native
    from sr3d_ros.conversions import pointcloud2_to_array

    rows = cap_rows(height * width, det.contract)
    dec_ms: dict[bool, list[float]] = {True: [], False: []}
    for r in range(3 * len(msgs)):
        for compiled in (True, False):
            native.set_enabled(compiled)
            t = time.perf_counter()
            pointcloud2_to_array(msgs[r % len(msgs)], True, rows, frames[r % len(msgs)].cam_to_base)
            dec_ms[compiled].append((time.perf_counter() - t) * 1e3)
    native.set_enabled(True)
    # The floor under the node's take: one copy of a serialized cloud (rmw copies it out of DDS's history, rclpy
    # into a Python object: two per take), sources taken in turn so they are not in the cache.
    from rclpy.serialization import serialize_message

    raws = [serialize_message(m) for m in msgs]
    sink = bytearray(len(raws[0]))
    copy_ms = []
    for r in range(3 * len(raws)):
        t = time.perf_counter()
        sink[:] = raws[r % len(raws)]
        copy_ms.append((time.perf_counter() - t) * 1e3)
    node_eval = IndoorMapEvaluator(det.class_names, skip_classes_without_gt=True)
    same = 0  # received arrays equal (to message precision) to bare detect on the same frame
    for k, m in arrays:
        got = msg_to_detections(m, det.class_names)
        node_eval.add(SceneGroundTruth(frames[k].gt_boxes, frames[k].gt_labels), got)
        ref = bare_out.get(k)
        same += (
            ref is not None
            and len(ref) == len(got)
            and bool(
                np.array_equal(ref.labels, got.labels)
                and np.allclose(ref.scores, got.scores, atol=1e-6)
                and np.allclose(ref.boxes[:, :6], got.boxes[:, :6], atol=1e-5)
            )
        )
    node_map, bare_map = node_eval.compute(), bare_eval.compute()
    n_points = [int(np.isfinite(f.xyz[:, 0]).sum()) for f in frames]

    received = len(e2e)
    overhead = [p - q for p, q in zip(proc_ms, model_ms)]
    print(
        f"\nSR3D node benchmark: {len(frames)} full-resolution {cfg.preset} frames (seed {cfg.seed}) as {width}x"
        f"{height} organized RGB-D clouds ({msgs[0].point_step * width * height / 1e6:.1f} MB, "
        f"{np.mean(n_points):.0f} valid points on average; model cap max_points = {det.contract.max_points}) "
        f"at {cfg.rate_hz:.0f} Hz for "
        f"{send_s:.1f} s; model {Path(ckpt).name} ({cfg.model_config if not cfg.checkpoint else 'given'}), "
        f"device {cfg.device}, torch threads {threads} (node and bare), "
        f"score_threshold {cfg.score_threshold}, max_detections {cfg.max_detections}, "
        f"markers {'on' if cfg.markers else 'off'}, input QoS {cfg.input_qos}"
    )
    rows = [
        ("frames sent / with detections received", f"{n_sent} / {received}"),
        ("end-to-end latency ms (p50 / p90 / p99 / max)", percentiles(e2e)),
        ("throughput, detections per s", f"{received / send_s:.2f}"),
        ("node processing ms (p50 / p90 / p99 / max)", percentiles(proc_ms)),
        ("  of which model (Detector.detect) ms", percentiles(model_ms)),
        ("  node overhead ms (take + conversion + TF + messages)", percentiles(overhead)),
        (
            "  overhead / model time (median)",
            f"{100 * np.median(overhead) / np.median(model_ms):.1f} %" if model_ms else "n/a",
        ),
        (
            "node: frames received / dropped while busy",
            f"{diag.get('frames_received', '?')} / " f"{diag.get('frames_dropped', '?')}",
        ),
        (
            "lost in transport (sent - received by node)",  # + 1: the uncounted warm-up frame
            f"{n_sent + 1 - int(diag['frames_received'])}" if "frames_received" in diag else "?",
        ),
        ("drop rate (not inferred / sent)", f"{100 * (1 - received / max(n_sent, 1)):.1f} %"),
        ("mean detections per frame", f"{np.mean(n_dets):.1f}" if n_dets else "n/a"),
        (
            "mAP@0.25 / 0.5 of what the node published (at its threshold)",
            f"{node_map.map_at(0.25):.3f} / {node_map.map_at(0.5):.3f}",
        ),
        ("received arrays equal to bare detect on the same frame", f"{same} / {len(arrays)}"),
        (
            "mAP@0.25 / 0.5 of bare detect on the distinct frames",
            f"{bare_map.map_at(0.25):.3f} / {bare_map.map_at(0.5):.3f}",
        ),
        ("bare: conversion + TF ms (p50 / p90 / p99 / max)", percentiles(conv_ms)),
        (
            "bare: decoding into base_link, compiled / numpy ms (p50)",
            f"{np.median(dec_ms[True]):.2f} / {np.median(dec_ms[False]):.2f}",
        ),
        ("bare: Detector.detect ms (p50 / p90 / p99 / max)", percentiles(bare_ms)),
        ("bare: one copy of a serialized cloud ms (p50; a take makes two)", f"{np.median(copy_ms):.2f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print("| metric | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k.ljust(width)} | {v} |")
    print(f"(node log: {tmp / 'node.log'})")


def _last_diagnostics(log: Path) -> dict[str, str]:
    """The node logs its final counters at shutdown; parse ``key=value`` pairs of that line."""
    for line in reversed(log.read_text().splitlines()):
        if "final counters" in line:
            return dict(kv.split("=", 1) for kv in line.split("final counters:", 1)[1].split())
    return {}


def main() -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="", help="checkpoint; empty = random weights of --config")
    ap.add_argument("--config", default="synth_scannet_small", help="model config for random weights")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--preset", default="sunrgbd-like", help="single-view synthetic preset rendering the frames")
    ap.add_argument("--seed", type=int, default=1, help="scene seed (1: the val split's scenes)")
    ap.add_argument("--frames", type=int, default=8, help="distinct frames cycled through")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--score-threshold", type=float, default=0.3)
    ap.add_argument("--max-detections", type=int, default=100)
    ap.add_argument("--input-qos", default="sensor_data")
    ap.add_argument("--no-markers", action="store_true", help="do not subscribe to ~/markers")
    ap.add_argument("--bare-repeats", type=int, default=16)
    ap.add_argument("--torch-threads", type=int, default=0, help="node parameter torch_threads (0 = auto)")
    a = ap.parse_args()
    run(
        BenchConfig(
            a.checkpoint,
            a.config,
            a.seconds,
            a.rate,
            a.preset,
            a.seed,
            a.frames,
            a.device,
            a.score_threshold,
            a.max_detections,
            a.input_qos,
            not a.no_markers,
            a.bare_repeats,
            a.torch_threads,
        )
    )


if __name__ == "__main__":
    main()
