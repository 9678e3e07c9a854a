"""Replay: real bag files written by make_bag.py, read back; GT matched by stamp and carried by the bag's TF;
offline and live (the node in its own process over DDS) agree; bad bags get errors that name what is wrong."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros
if importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vision_msgs") is None:
    pytest.skip("rclpy / vision_msgs not installed (scripts/setup.sh)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sr3d_core.detections import Detections  # noqa: E402
from sr3d_core.preprocess import InputContract, PrepareStats  # noqa: E402
from sr3d_ros.replay import ReplayBag, ReplayConfig, evaluate, main, replay, run_offline  # noqa: E402
from training import make_bag as mb  # noqa: E402

FRAMES = 5


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bag") / "room"
    info = mb.make_bag(out, frames=FRAMES, rate=10.0, seed=1, progress=False)
    assert info["gt_boxes"] > 0
    return out


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from sr3d_core.inference import write_random_checkpoint

    return write_random_checkpoint(tmp_path_factory.mktemp("ck") / "sun.pt", "synth_sunrgbd_small", seed=4)


class OracleDetector:
    """Returns the bag's GT boxes in base_link, computed from make_bag's own robot pose (not from the bag's TF)."""

    def __init__(self, gt_by_stamp: dict[int, tuple[np.ndarray, np.ndarray]], class_names, seed: int = 1) -> None:
        from sr3d_core.data.synthetic.presets import PRESETS
        from sr3d_core.data.synthetic.scene import build_room

        rng = np.random.default_rng([seed, 7])
        room, _ = build_room(PRESETS["sunrgbd-like"].full_resolution(), rng)
        self.centre = room.random_free_xy(0.8)
        self.gt, self.class_names = gt_by_stamp, tuple(class_names)
        self.contract = InputContract(0.02, True, None, None)
        self.stamps = iter(sorted(gt_by_stamp))
        targets = [o.box[:2] for o in room.objects if o.kind in PRESETS["sunrgbd-like"].class_names]
        far = [t for t in targets if np.hypot(*(t - self.centre)) >= 1.2] or targets
        t = min(far, key=lambda t: np.hypot(*(t - self.centre)))
        self.yaw0 = float(np.arctan2(t[1] - self.centre[1], t[0] - self.centre[0]))

    def network_input(self, points):
        return points, PrepareStats(len(points), 0, 0, 0, False)

    def detect_input(self, points):
        stamp = next(self.stamps)
        boxes, labels = self.gt[stamp]
        pos, yaw = mb.robot_pose((stamp - mb.START_NS) * 1e-9, self.centre, self.yaw0)
        c, s = np.cos(-yaw), np.sin(-yaw)
        local = boxes.copy()
        local[:, :2] = (boxes[:, :2] - pos[:2]) @ np.array([[c, -s], [s, c]]).T
        local[:, 6] = boxes[:, 6] - yaw
        return Detections(local.astype(np.float32), np.ones(len(boxes), np.float32), labels, self.class_names)


def test_offline_oracle_scores_one_and_gt_is_carried_by_tf(bag, ckpt, tmp_path):
    from sr3d_core.data.classes import SUNRGBD_CLASSES

    cfg = ReplayConfig(bag, ckpt, out=tmp_path, progress=False)
    rb = ReplayBag(cfg, SUNRGBD_CLASSES)
    assert rb.gt_frame == "odom" and len(rb.gt) == FRAMES
    records = run_offline(cfg, OracleDetector(rb.gt, SUNRGBD_CLASSES), rb)
    assert [r.frame for r in records] == ["base_link"] * FRAMES
    result = evaluate(records, rb, SUNRGBD_CLASSES)
    assert result.map_at(0.25) == pytest.approx(1.0) and result.map_at(0.5) == pytest.approx(1.0)
    # The same boxes left in odom coordinates do not match: the GT really is carried into base_link.
    untransformed = OracleDetector(rb.gt, SUNRGBD_CLASSES)
    untransformed.centre, untransformed.yaw0 = np.zeros(2), 0.0
    untransformed_pose = mb.robot_pose
    try:
        mb.robot_pose = lambda t, c, y: (np.zeros(3), 0.0)
        records = run_offline(cfg, untransformed, rb)
    finally:
        mb.robot_pose = untransformed_pose
    assert evaluate(records, rb, SUNRGBD_CLASSES).map_at(0.25) < 0.5


def test_offline_and_live_agree(bag, ckpt, tmp_path):
    off = replay(ReplayConfig(bag, ckpt, "offline", out=tmp_path / "off", progress=False))
    live = replay(ReplayConfig(bag, ckpt, "live", out=tmp_path / "live", lockstep=True, progress=False))
    assert off["frames"] == live["frames"] == FRAMES
    assert live["frames_dropped"] == 0 and live["frames_answered"] == FRAMES, (tmp_path / "live" / "node.log")
    assert live["mAP_0.25"] == pytest.approx(off["mAP_0.25"], abs=1e-6)
    assert live["mAP_0.5"] == pytest.approx(off["mAP_0.5"], abs=1e-6)
    assert live["detections_per_frame"] == off["detections_per_frame"] > 0
    for name in ("report.md", "report.json", "latency_hist.png", "bev_0.png"):
        assert (tmp_path / "live" / name).stat().st_size > 100


def run_cli(*args: str, capsys) -> tuple[int, str]:
    code = main([*args, "--no-progress"])
    return code, capsys.readouterr().err


def test_bad_bags_are_named(bag, ckpt, tmp_path, capsys):
    code, err = run_cli(str(bag), "--checkpoint", str(ckpt), "--cloud-topic", "/nope", "--out", str(tmp_path),
                        capsys=capsys)
    assert code == 2 and "has no topic '/nope'; it has: " in err and "/camera/depth/color/points" in err
    code, err = run_cli(str(bag), "--checkpoint", str(ckpt), "--target-frame", "map", "--out", str(tmp_path),
                        capsys=capsys)
    assert code == 2 and "to the target frame 'map'" in err and "camera_color_optical_frame" in err
    code, err = run_cli(str(tmp_path / "missing"), "--checkpoint", str(ckpt), capsys=capsys)
    assert code == 2 and "bag not found" in err
    # A truncated recording (the recorder was killed): named, not a traceback.
    cut = tmp_path / "cut"
    shutil.copytree(bag, cut)
    mcap = next(cut.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 3])
    code, err = run_cli(str(cut), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), capsys=capsys)
    assert code == 2 and str(cut) in err and ("truncated" in err or "cannot open" in err)
    # Ground truth whose classes the model does not know.
    gt = tmp_path / "gt.yaml"
    gt.write_text("frame_id: odom\nstatic:\n  objects:\n    - {class: dragon, box: [0, 0, 0, 1, 1, 1, 0]}\n")
    code, err = run_cli(str(bag), "--checkpoint", str(ckpt), "--gt-file", str(gt), capsys=capsys)
    assert code == 2 and "['dragon'] are not classes of the model" in err


def test_unreadable_cloud_is_named(ckpt, tmp_path, capsys):
    # A PointCloud2 topic whose second message ends inside its data (cut short): named with its time, no traceback.
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from sr3d_ros.bags import BagWriter
    from sr3d_ros.conversions import make_pointcloud2

    xyz = np.random.default_rng(0).uniform(-1, 1, (500, 3)).astype(np.float32)
    cloud = make_pointcloud2(Header(frame_id="base_link"), 1, 500,
                             [("x", xyz[:, 0], 7), ("y", xyz[:, 1], 7), ("z", xyz[:, 2], 7),
                              ("rgb", np.zeros(500, np.uint32), 6)])
    path = tmp_path / "cut_cloud"
    writer = BagWriter(path)
    writer.write("/points", cloud, 1_000_000_000)
    writer._writer.write(writer._conns["/points"], 2_000_000_000, serialize_message(cloud)[:-100])
    writer.close()
    code, err = run_cli(str(path), "--checkpoint", str(ckpt), "--cloud-topic", "/points", "--gt-topic", "",
                        "--target-frame", "", "--out", str(tmp_path / "o"), capsys=capsys)
    assert code == 2 and str(path) in err and "on /points at 2.000 s is not a readable PointCloud2" in err, err


def test_type_without_definition_is_named(bag):
    from sr3d_ros.bags import BagError, BagReader

    r = BagReader(bag)
    with pytest.raises(BagError, match="is sensor_msgs/msg/PointCloud2, expected vision_msgs"):
        r.require("/camera/depth/color/points", ("vision_msgs/msg/Detection3DArray",))
    del r.store.fielddefs["vision_msgs/msg/Detection3DArray"]
    with pytest.raises(BagError, match="carries no definition"):
        r.require("/ground_truth/detections", ("vision_msgs/msg/Detection3DArray",))


def test_sidecar_gt_file_static(bag, ckpt, tmp_path):
    """A static sidecar GT in odom (the world does not move) gives the same mAP as the bag's GT topic when every
    frame sees the same objects; here: the GT of frame 0 for every frame vs the topic."""
    import yaml

    from sr3d_core.data.classes import SUNRGBD_CLASSES

    rb = ReplayBag(ReplayConfig(bag, ckpt, progress=False), SUNRGBD_CLASSES)
    boxes, labels = rb.gt[min(rb.gt)]
    gt = {"frame_id": "odom", "static": {"objects": [{"class": SUNRGBD_CLASSES[int(c)], "box": b.tolist()}
                                                      for b, c in zip(boxes, labels)]}}
    path = tmp_path / "gt.yaml"
    path.write_text(yaml.safe_dump(gt))
    rb2 = ReplayBag(ReplayConfig(bag, ckpt, gt_file=path, progress=False), SUNRGBD_CLASSES)
    for stamp in rb.gt:
        b2, l2 = rb2.gt_at(stamp, "base_link")
        b1, l1 = rb.gt_at(min(rb.gt), "base_link") if stamp == min(rb.gt) else (None, None)
        if b1 is not None:
            np.testing.assert_allclose(b2, b1, atol=1e-9)
            assert (l2 == l1).all()


def test_sqlite3_bag_reads_the_same(bag, ckpt, tmp_path):
    """The same recording written as sqlite3 replays to the same numbers as the mcap one."""
    sq = tmp_path / "room_sqlite"
    mb.make_bag(sq, frames=2, rate=10.0, seed=1, storage="sqlite3", progress=False)
    assert any(p.suffix == ".db3" for p in sq.iterdir())
    a = replay(ReplayConfig(sq, ckpt, out=tmp_path / "a", progress=False))
    b = replay(ReplayConfig(bag, ckpt, out=tmp_path / "b", max_frames=2, progress=False))
    assert a["frames"] == b["frames"] == 2
    assert a["detections_per_frame"] == b["detections_per_frame"] and a["mAP_0.25"] == b["mAP_0.25"]
