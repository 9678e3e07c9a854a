"""Record a synthetic RGB-D robot bag: a camera on a moving robot in a furnished room, with ground truth.

    python -m sr3d_ros.make_bag --out bags/synth_room --frames 50 --rate 10

What a real RGB-D robot records, as a rosbag2 (mcap by default, ``--storage sqlite3`` on request) that
``ros2 bag info`` / ``ros2 bag play`` accept (message definitions and type hashes included):

- ``/camera/depth/color/points``: organized 640x480 ``sensor_msgs/PointCloud2`` in
  ``camera_color_optical_frame`` (x, y, z float32 + packed rgb, 16 B/point, NaN where the sensor saw nothing);
- ``/tf_static``: ``base_link → camera_link`` (1.1 m up, pitched down) and ``camera_link →
  camera_color_optical_frame``; ``/tf``: ``odom → base_link`` at every frame (the robot drives a slow circle
  while turning);
- ``/ground_truth/detections``: ``vision_msgs/Detection3DArray`` in ``odom`` with the frame's stamp, the boxes
  of the objects the camera sees in that frame (the synthetic data set's visibility rule), class names as
  ``class_id`` and score 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

CLOUD_TOPIC = "/camera/depth/color/points"
GT_TOPIC = "/ground_truth/detections"
WORLD, BASE, CAMERA, OPTICAL = "odom", "base_link", "camera_link", "camera_color_optical_frame"
CAMERA_XYZ = np.array([0.1, 0.0, 1.1])  # camera_link in base_link
CAMERA_PITCH = 0.3  # rad, looking down
START_NS = 1_700_000_000 * 10**9
# camera_link (x forward, z up) -> optical frame (z forward, x right, y down): columns are the optical axes.
LINK_TO_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def robot_pose(t: float, centre: np.ndarray, yaw0: float) -> tuple[np.ndarray, float]:
    """Base position (z = 0) and yaw at time ``t``: a 0.3 m circle at 0.4 rad/s while turning at 0.4 rad/s."""
    a = 0.4 * t
    return np.array([centre[0] + 0.3 * np.cos(a), centre[1] + 0.3 * np.sin(a), 0.0]), yaw0 + a


def transform_msg(parent: str, child: str, stamp_ns: int, rotation: np.ndarray, translation: np.ndarray):
    from geometry_msgs.msg import TransformStamped

    from sr3d_ros.tf_lookup import matrix_to_quaternion

    m = TransformStamped()
    m.header.frame_id, m.child_frame_id = parent, child
    m.header.stamp.sec, m.header.stamp.nanosec = divmod(int(stamp_ns), 10**9)
    m.transform.translation.x, m.transform.translation.y, m.transform.translation.z = map(float, translation)
    q = matrix_to_quaternion(rotation)
    m.transform.rotation.x, m.transform.rotation.y, m.transform.rotation.z, m.transform.rotation.w = map(float, q)
    return m


ROBOT_SENSOR = "realsense_d435"  # the camera of bags from a world with real sensor models


def make_bag(
    out: Path,
    frames: int = 50,
    rate: float = 10.0,
    seed: int = 0,
    storage: str = "mcap",
    preset_name: str = "sunrgbd-like",
    progress: bool = True,
) -> dict:
    """Render and write the bag; returns a summary (frames, GT boxes, bytes)."""
    from std_msgs.msg import Header
    from tf2_msgs.msg import TFMessage

    from sr3d_core.data.synthetic.presets import PRESETS
    from sr3d_core.data.synthetic.scene import build_room, labelled_boxes
    from sr3d_core.data.synthetic.sensor import SENSORS, Lighting, organize
    from sr3d_core.detections import Detections
    from sr3d_ros.bags import BagWriter
    from sr3d_ros.conversions import detections_to_msg, make_pointcloud2

    if frames < 1 or rate <= 0:
        raise ValueError("frames must be >= 1 and rate > 0")
    preset = PRESETS[preset_name].full_resolution()
    # A robot carries one camera: a RealSense D435 where the world models real sensors.
    cam = SENSORS[ROBOT_SENSOR] if preset.world.sensor else preset.camera
    rng = np.random.default_rng([seed, 7])
    room, caster = build_room(preset, rng)
    lighting = None
    if preset.world.lighting:
        lighting = Lighting.draw(rng, np.r_[room.polygon.mean(0), room.height - 0.1])
    centre = room.random_free_xy(0.8)
    if centre is None:
        centre = room.polygon.mean(0)
    # Start facing the nearest labelled piece of furniture at least 1.2 m away, so the first frames have objects.
    targets = [o.box[:2] for o in room.objects if o.kind in preset.class_names]
    far = [t for t in targets if np.hypot(*(t - centre)) >= 1.2] or targets
    if far:
        t = min(far, key=lambda t: np.hypot(*(t - centre)))
        yaw0 = float(np.arctan2(t[1] - centre[1], t[0] - centre[0]))
    else:
        yaw0 = float(rng.uniform(-np.pi, np.pi))
    # The camera's pose on the robot: base -> camera_link (pitched down), camera_link -> optical.
    r_base_link = rot_y(CAMERA_PITCH)
    r_base_opt = r_base_link @ LINK_TO_OPTICAL
    writer = BagWriter(out, storage)
    n_boxes = 0
    try:
        writer.write(
            "/tf_static",
            TFMessage(
                transforms=[
                    transform_msg(BASE, CAMERA, START_NS, r_base_link, CAMERA_XYZ),
                    transform_msg(CAMERA, OPTICAL, START_NS, LINK_TO_OPTICAL, np.zeros(3)),
                ]
            ),
            START_NS,
            latched=True,
        )
        it = range(frames)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="rendering", unit="frame")
        for k in it:
            stamp = START_NS + int(round(k * 1e9 / rate))
            base_xyz, yaw = robot_pose(k / rate, centre, yaw0)
            r_world_base = rot_z(yaw)
            cam_pos = base_xyz + r_world_base @ CAMERA_XYZ
            r_world_opt = r_world_base @ r_base_opt
            shot = caster.capture(cam, cam_pos, r_world_opt, rng, 1, lighting)
            xyz, rgb = organize(cam, shot["points_cam"], shot["colors"])
            world_pts = shot["points_cam"] @ r_world_opt.T + cam_pos
            boxes, labels = labelled_boxes(room, world_pts, shot["object_id"], preset)
            n_boxes += len(boxes)
            writer.write(
                "/tf", TFMessage(transforms=[transform_msg(WORLD, BASE, stamp, r_world_base, base_xyz)]), stamp
            )
            c = rgb.astype(np.uint32)
            packed = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
            header = Header(frame_id=OPTICAL)
            header.stamp.sec, header.stamp.nanosec = divmod(stamp, 10**9)
            cloud = make_pointcloud2(
                header,
                cam.height,
                cam.width,
                [("x", xyz[:, 0], 7), ("y", xyz[:, 1], 7), ("z", xyz[:, 2], 7), ("rgb", packed, 7)],
            )
            writer.write(CLOUD_TOPIC, cloud, stamp)
            gt = Detections(boxes.astype(np.float32), np.ones(len(boxes), np.float32), labels, preset.class_names)
            writer.write(GT_TOPIC, detections_to_msg(gt, Header(stamp=header.stamp, frame_id=WORLD)), stamp)
    finally:
        writer.close()
    size = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file())
    return {"frames": frames, "gt_boxes": n_boxes, "bytes": size, "room": room.room_type}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="bag folder to create")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--rate", type=float, default=10.0, help="frames per second (10 or 30)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    ap.add_argument("--preset", default="sunrgbd-like", help="synthetic preset: class list and visibility rule")
    a = ap.parse_args(argv)
    if a.frames < 1 or a.rate <= 0:
        ap.error("--frames must be >= 1 and --rate > 0")
    if a.out.exists():
        ap.error(f"{a.out} exists; choose a new folder")
    info = make_bag(a.out, a.frames, a.rate, a.seed, a.storage, a.preset)
    print(
        f"wrote {a.out}: {info['frames']} frames at {a.rate:g} Hz, {info['gt_boxes']} GT boxes in all "
        f"({info['room']}), {info['bytes'] / 1e6:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
