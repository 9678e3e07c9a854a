"""Benchmark the detector node end to end over real DDS, side by side with the bare ``Detector.detect``.

Sends 640x480 organized RGB-D clouds (x, y, z float32 + packed rgb, NaN holes, camera optical frame) at a fixed
rate to ``sr3d_detector_node`` started through its console script (target_frame ``base_link`` through a static
TF), then reports end-to-end latency (input stamp -> detections received), node processing and model time,
throughput and drop rates; then times conversion + ``Detector.detect`` on the same frames in-process.

Example:
    source scripts/env.sh
    python training/benchmark_node.py --seconds 10 --rate 30 --config synth_scannet_small
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

# A 64 MiB shared-memory segment: ~5 MB clouds are otherwise fragmented and lost under best effort.
FASTDDS_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor><transport_id>shm_big</transport_id><type>SHM</type>
      <segment_size>67108864</segment_size></transport_descriptor>
    <transport_descriptor><transport_id>udp</transport_id><type>UDPv4</type></transport_descriptor>
  </transport_descriptors>
  <participant profile_name="sr3d_benchmark" is_default_profile="true">
    <rtps><userTransports><transport_id>shm_big</transport_id><transport_id>udp</transport_id></userTransports>
      <useBuiltinTransports>false</useBuiltinTransports></rtps>
  </participant>
</profiles>
"""


@dataclass(frozen=True)
class BenchConfig:
    """Benchmark settings (from the command line)."""

    checkpoint: str
    model_config: str
    seconds: float
    rate_hz: float
    width: int
    height: int
    frames: int
    device: str
    score_threshold: float
    max_detections: int
    input_qos: str
    markers: bool
    bare_repeats: int
    torch_threads: int


def rgbd_frames(cfg: BenchConfig, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic organized RGB-D frames in the camera optical frame: a room (floor, walls) with boxes, NaN holes.

    Returns:
        ``[(xyz (H*W, 3) float32, rgb (H*W, 3) uint8)]``.
    """
    rng = np.random.default_rng(seed)
    h, w = cfg.height, cfg.width
    fx = fy = 525.0 * w / 640
    u, v = np.meshgrid(np.arange(w) - (w - 1) / 2, np.arange(h) - (h - 1) / 2)
    rays = np.stack([u / fx, v / fy, np.ones_like(u)], -1).reshape(-1, 3)  # optical: x right, y down, z ahead
    out = []
    for _ in range(cfg.frames):
        # depth: a wall 4-5 m ahead, the floor 1 m below the camera, and a few boxes (planes facing the camera)
        depth = np.full(h * w, rng.uniform(4.0, 5.0))
        floor = rays[:, 1] > 1e-3
        depth = np.where(floor, np.minimum(depth, 1.0 / np.where(floor, rays[:, 1], 1)), depth)
        colour = np.tile(rng.integers(60, 200, 3), (h * w, 1))
        colour[floor] = [120, 100, 80]
        for _ in range(4):
            d, cx, top = rng.uniform(1.5, 3.5), rng.uniform(-1.0, 1.0), rng.uniform(-0.2, 0.6)
            x, y = rays[:, 0] * d, rays[:, 1] * d
            inside = (np.abs(x - cx) < rng.uniform(0.2, 0.5)) & (y > top) & (y < 1.0) & (d < depth)
            depth = np.where(inside, d, depth)
            colour[inside] = rng.integers(0, 256, 3)
        xyz = (rays * depth[:, None]).astype(np.float32)
        xyz[rng.random(h * w) < 0.05] = np.nan  # depth holes
        out.append((xyz, colour.astype(np.uint8)))
    return out


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
    profile = tmp / "fastdds.xml"
    profile.write_text(FASTDDS_PROFILE)
    os.environ.update(FASTDDS_DEFAULT_PROFILES_FILE=str(profile), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    if os.environ.get("ROS_DISTRO") == "humble":  # Humble's Fast DDS reads the older variable name
        os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(profile)
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

    from sr3d_core.inference import Detector, write_random_checkpoint
    from sr3d_ros.conversions import make_pointcloud2, pointcloud2_to_array, transform_points
    from sr3d_ros.detector_node import set_torch_threads
    from sr3d_ros.transforms import to_matrix

    ckpt = cfg.checkpoint or str(write_random_checkpoint(tmp / "random.pt", cfg.model_config))
    frames = rgbd_frames(cfg)
    # camera_optical in base_link: 1 m up, looking along +x (REP 103 optical rotation)
    cam_t, cam_q = np.array([0.0, 0.0, 1.0]), np.array([-0.5, 0.5, -0.5, 0.5])
    msgs = [make_pointcloud2(Header(frame_id="camera_optical"), cfg.height, cfg.width,
                             [("x", xyz[:, 0], 7), ("y", xyz[:, 1], 7), ("z", xyz[:, 2], 7),
                              ("rgb", packed_rgb(rgb), 7)]) for xyz, rgb in frames]

    ns, name = "/bench", "sr3d_detector"
    fqn = f"{ns}/{name}"
    exe = Path(sys.executable).parent / "sr3d_detector_node"
    cmd = [str(exe), "--ros-args", "-r", f"__node:={name}", "-r", f"__ns:={ns}",
           "--params-file", str(REPO / "config" / "node.yaml"), "-p", f"checkpoint:={ckpt}",
           "-p", f"device:={cfg.device}", "-p", "target_frame:=base_link", "-p", f"input_qos:={cfg.input_qos}",
           "-p", f"score_threshold:={cfg.score_threshold}", "-p", f"max_detections:={cfg.max_detections}",
           "-p", f"torch_threads:={cfg.torch_threads}",
           "-r", "~/input/points:=/bench/points"]
    log = open(tmp / "node.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))

    rclpy.init()
    node = Node("sr3d_benchmark")
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    sent: dict[int, float] = {}
    e2e, proc_ms, model_ms, n_dets = [], [], [], []
    ready = threading.Event()
    lock = threading.Lock()

    def on_det(m: Detection3DArray) -> None:
        t = time.time()
        key = m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
        with lock:
            if key in sent:
                e2e.append((t - key * 1e-9) * 1e3)
                n_dets.append(len(m.detections))

    node.create_subscription(Detection3DArray, f"{fqn}/detections", on_det, reliable)
    node.create_subscription(Float64, f"{fqn}/debug/processing_time_ms", lambda m: proc_ms.append(m.data), reliable)
    node.create_subscription(Float64, f"{fqn}/debug/model_time_ms", lambda m: model_ms.append(m.data), reliable)
    node.create_subscription(LabelInfo, f"{fqn}/label_info", lambda m: ready.set(), latched)
    if cfg.markers:
        node.create_subscription(MarkerArray, f"{fqn}/markers", lambda m: None, reliable)
    pub = node.create_publisher(PointCloud2, "/bench/points", reliable)
    tf_pub = node.create_publisher(TFMessage, "/tf_static", latched)
    tf = TransformStamped(header=Header(frame_id="base_link"), child_frame_id="camera_optical")
    tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = cam_t
    r = tf.transform.rotation
    r.x, r.y, r.z, r.w = cam_q
    tf_pub.publish(TFMessage(transforms=[tf]))
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
            e2e.clear(), n_dets.clear()
        proc_ms.clear(), model_ms.clear()
        period, n_sent = 1.0 / cfg.rate_hz, 0
        start = time.monotonic()
        while time.monotonic() - start < cfg.seconds:
            msg = msgs[n_sent % len(msgs)]
            now = time.time_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 10**9)
            with lock:
                sent[now] = now * 1e-9
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

    # the bare library on the same frames with the node's thread count (the node is gone, the input stream too)
    threads = set_torch_threads(cfg.torch_threads)
    det = Detector.from_checkpoint(ckpt, cfg.device if cfg.device != "auto" else "cpu")
    det.score_threshold, det.max_detections = cfg.score_threshold, cfg.max_detections
    m = to_matrix(cam_t, cam_q)
    conv_ms, bare_ms = [], []
    det.detect(transform_points(pointcloud2_to_array(msgs[0])[0], m))  # warm-up
    for k in range(cfg.bare_repeats):
        t1 = time.perf_counter()
        pts = transform_points(pointcloud2_to_array(msgs[k % len(msgs)])[0], m)
        t2 = time.perf_counter()
        det.detect(pts)
        t3 = time.perf_counter()
        conv_ms.append((t2 - t1) * 1e3)
        bare_ms.append((t3 - t2) * 1e3)

    received = len(e2e)
    overhead = [p - q for p, q in zip(proc_ms, model_ms)]
    print(f"\nSR3D node benchmark: {cfg.width}x{cfg.height} organized RGB-D clouds "
          f"({msgs[0].point_step * cfg.width * cfg.height / 1e6:.1f} MB) at {cfg.rate_hz:.0f} Hz for "
          f"{send_s:.1f} s; model {Path(ckpt).name} ({cfg.model_config if not cfg.checkpoint else 'given'}), "
          f"device {cfg.device}, torch threads {threads} (node and bare), "
          f"score_threshold {cfg.score_threshold}, max_detections {cfg.max_detections}, "
          f"markers {'on' if cfg.markers else 'off'}, input QoS {cfg.input_qos}")
    rows = [
        ("frames sent / with detections received", f"{n_sent} / {received}"),
        ("end-to-end latency ms (p50 / p90 / p99 / max)", percentiles(e2e)),
        ("throughput, detections per s", f"{received / send_s:.2f}"),
        ("node processing ms (p50 / p90 / p99 / max)", percentiles(proc_ms)),
        ("  of which model (Detector.detect) ms", percentiles(model_ms)),
        ("  node overhead ms (conversion + TF + messages)", percentiles(overhead)),
        ("  overhead / model time (median)",
         f"{100 * np.median(overhead) / np.median(model_ms):.1f} %" if model_ms else "n/a"),
        ("node: frames received / dropped while busy", f"{diag.get('frames_received', '?')} / "
                                                        f"{diag.get('frames_dropped', '?')}"),
        ("lost in transport (sent - received by node)",  # + 1: the uncounted warm-up frame
         f"{n_sent + 1 - int(diag['frames_received'])}" if "frames_received" in diag else "?"),
        ("drop rate (not inferred / sent)", f"{100 * (1 - received / max(n_sent, 1)):.1f} %"),
        ("mean detections per frame", f"{np.mean(n_dets):.1f}" if n_dets else "n/a"),
        ("bare: conversion + TF ms (p50 / p90 / p99 / max)", percentiles(conv_ms)),
        ("bare: Detector.detect ms (p50 / p90 / p99 / max)", percentiles(bare_ms)),
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
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--frames", type=int, default=4, help="distinct frames cycled through")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--score-threshold", type=float, default=0.3)
    ap.add_argument("--max-detections", type=int, default=100)
    ap.add_argument("--input-qos", default="sensor_data")
    ap.add_argument("--no-markers", action="store_true", help="do not subscribe to ~/markers")
    ap.add_argument("--bare-repeats", type=int, default=10)
    ap.add_argument("--torch-threads", type=int, default=0, help="node parameter torch_threads (0 = auto)")
    a = ap.parse_args()
    run(BenchConfig(a.checkpoint, a.config, a.seconds, a.rate, a.width, a.height, a.frames, a.device,
                    a.score_threshold, a.max_detections, a.input_qos, not a.no_markers, a.bare_repeats,
                    a.torch_threads))


if __name__ == "__main__":
    main()
