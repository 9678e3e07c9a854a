"""Replay: real bag files written by make_bag.py, read back; GT matched by stamp and carried by the bag's TF;
offline and live (the node in its own process over DDS) agree; bad bags get errors that name what is wrong."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros
if importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vision_msgs") is None:
    pytest.skip("rclpy / vision_msgs not installed (scripts/setup.sh)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]

from children import PATIENCE_S  # noqa: E402

from sr3d_core.detections import Detections  # noqa: E402
from sr3d_core.preprocess import InputContract, PrepareStats  # noqa: E402
from sr3d_ros import make_bag as mb  # noqa: E402
from sr3d_ros.replay import (  # noqa: E402
    FrameRecord,
    ReplayBag,
    ReplayConfig,
    bev_frames,
    main,
    map_over_frames,
    replay,
    run_offline,
    summarize,
    write_report,
)

FRAMES = 5
# The live replays' node: as long as it needs to start and to answer on a busy machine (one that exits fails the
# replay at once); only a stuck node reaches these.
PATIENT = dict(startup_timeout_s=PATIENCE_S, answer_timeout_s=PATIENCE_S)


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
    result = map_over_frames(records, rb, SUNRGBD_CLASSES)
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
    assert map_over_frames(records, rb, SUNRGBD_CLASSES).map_at(0.25) < 0.5


def test_offline_and_live_agree(bag, ckpt, tmp_path):
    off = replay(ReplayConfig(bag, ckpt, "offline", out=tmp_path / "off", progress=False))
    live = replay(ReplayConfig(bag, ckpt, "live", out=tmp_path / "live", lockstep=True, progress=False, **PATIENT))
    assert off["frames"] == live["frames"] == FRAMES
    assert live["frames_dropped"] == 0 and live["frames_answered"] == FRAMES, tmp_path / "live" / "node.log"
    assert live["mAP_0.25"] == pytest.approx(off["mAP_0.25"], abs=1e-6)
    assert live["mAP_0.5"] == pytest.approx(off["mAP_0.5"], abs=1e-6)
    assert live["detections_per_frame"] == off["detections_per_frame"] > 0
    for name in ("report.md", "report.json", "latency_hist.png", "bev_0.png"):
        assert (tmp_path / "live" / name).stat().st_size > 100


def run_cli(*args: str, capsys) -> tuple[int, str]:
    code = main([*args, "--no-progress"])
    return code, capsys.readouterr().err


def test_bad_bags_are_named(bag, ckpt, tmp_path, capsys):
    code, err = run_cli(
        str(bag), "--checkpoint", str(ckpt), "--cloud-topic", "/nope", "--out", str(tmp_path), capsys=capsys
    )
    assert code == 2 and "has no topic '/nope'; it has: " in err and "/camera/depth/color/points" in err
    code, err = run_cli(
        str(bag), "--checkpoint", str(ckpt), "--target-frame", "map", "--out", str(tmp_path), capsys=capsys
    )
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
    cloud = make_pointcloud2(
        Header(frame_id="base_link"),
        1,
        500,
        [("x", xyz[:, 0], 7), ("y", xyz[:, 1], 7), ("z", xyz[:, 2], 7), ("rgb", np.zeros(500, np.uint32), 6)],
    )
    path = tmp_path / "cut_cloud"
    writer = BagWriter(path)
    writer.write("/points", cloud, 1_000_000_000)
    writer._writer.write(writer._conns["/points"], 2_000_000_000, serialize_message(cloud)[:-100])
    writer.close()
    code, err = run_cli(
        str(path),
        "--checkpoint",
        str(ckpt),
        "--cloud-topic",
        "/points",
        "--gt-topic",
        "",
        "--target-frame",
        "",
        "--out",
        str(tmp_path / "o"),
        capsys=capsys,
    )
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
    gt = {
        "frame_id": "odom",
        "static": {"objects": [{"class": SUNRGBD_CLASSES[int(c)], "box": b.tolist()} for b, c in zip(boxes, labels)]},
    }
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


# ---------------------------------------------------------------- the evaluator's post-processing


class BagScenes:
    """The bag's clouds as ``sr3d-evaluate`` sees scenes: the points the node's pipeline feeds the network (point
    cap, TF into base_link) and the bag's ground truth carried into base_link."""

    def __init__(self, rb: ReplayBag, detector) -> None:
        from sr3d_core.preprocess import cap_rows
        from sr3d_ros.conversions import pointcloud2_to_array

        self.samples = []
        for m in rb.clouds():
            cloud, stamp = m.msg, int(m.msg.header.stamp.sec) * 10**9 + int(m.msg.header.stamp.nanosec)
            matrix = rb.tf.lookup("base_link", cloud.header.frame_id, stamp)
            rows = cap_rows(int(cloud.width) * int(cloud.height), detector.contract)
            points, _ = pointcloud2_to_array(cloud, want_color=True, rows=rows, transform=matrix)
            boxes, labels = rb.gt_at(stamp, "base_link")
            self.samples.append((points, boxes.astype(np.float32), labels))

    def __len__(self) -> int:
        return len(self.samples)

    def get(self, index: int, rng, train: bool):
        from sr3d_core.data.infos import Sample

        points, boxes, labels = self.samples[index]
        return Sample(points, boxes, labels, index)


def test_replay_and_the_evaluator_agree_by_default(bag, ckpt, tmp_path):
    """Same frames, same numbers: the replay keeps the checkpoint's post-processing (no cap of 100 boxes a frame),
    which is what sr3d-evaluate runs."""
    from sr3d_core.config import DEPLOY_SCORE_THRESHOLD
    from sr3d_core.evaluation.detector_pass import evaluate_detector
    from sr3d_core.evaluation.protocol import EvaluationProtocol
    from sr3d_core.inference import Detector

    off = replay(ReplayConfig(bag, ckpt, "offline", out=tmp_path / "off", progress=False))
    detector = Detector.from_checkpoint(ckpt, "cpu")
    assert detector.max_detections is None and off["max_detections"] is None
    assert off["score_threshold"] == detector.score_threshold and off["nms_iou"] == detector.nms_iou
    assert off["detections_per_frame"] > 100  # a cap of 100 would have changed the numbers
    rb = ReplayBag(ReplayConfig(bag, ckpt, progress=False), detector.class_names)
    full = evaluate_detector(detector, BagScenes(rb, detector))  # the default protocol, as the replay's
    assert off["protocol"] == full.protocol.to_dict() == EvaluationProtocol().to_dict()
    ev = full.metrics()
    assert off["mAP_0.25"] == pytest.approx(ev["mAP_0.25"], abs=1e-9)
    assert off["mAP_0.5"] == pytest.approx(ev["mAP_0.5"], abs=1e-9)
    # the user's view (boxes at the node's default threshold) counts as sr3d-evaluate's precision / recall
    want = full.precision_recall.rows(0.25)["all classes"]
    got = off["user_view"]
    assert got["score_threshold"] == DEPLOY_SCORE_THRESHOLD
    assert (got["tp"], got["fp"], got["fn"]) == (want["tp"], want["fp"], want["fn"])
    assert "precision" in (tmp_path / "off" / "report.md").read_text()
    capped = replay(
        ReplayConfig(
            bag,
            ckpt,
            "offline",
            out=tmp_path / "cap",
            protocol=EvaluationProtocol(max_detections=100, nms_iou=0.1),
            progress=False,
        )
    )
    assert capped["protocol"]["max_detections"] == 100 and capped["protocol"]["nms_iou"] == 0.1
    assert capped["max_detections"] == 100 and capped["detections_per_frame"] <= 100 < off["detections_per_frame"]
    assert capped["nms_iou"] == 0.1 != off["nms_iou"]


def test_live_replay_asks_the_node_for_the_checkpoints_post_processing():
    from sr3d_core.config import PostprocessConfig
    from sr3d_ros.replay import node_postprocess_params

    post = PostprocessConfig(nms_pre=1000, score_threshold=0.05, nms_iou=0.4, max_detections=None)
    # No cap: a cap at the most the post-processing can return (every pre-filtered anchor under every class).
    assert node_postprocess_params(post, 10) == {"score_threshold": 0.05, "nms_iou": 0.4, "max_detections": 10000}
    capped = PostprocessConfig(max_detections=7)
    assert node_postprocess_params(capped, 10)["max_detections"] == 7


# ---------------------------------------------------------------- what used to pass in silence


def _small_bag(path: Path, clouds: list, gt: list = ()) -> Path:
    """A bag of (stamp_sec, PointCloud2) on /points and (stamp_sec, Detection3DArray) on the default GT topic."""
    from sr3d_ros.bags import BagWriter

    writer = BagWriter(path)
    for sec, msg in clouds:
        writer.write("/points", msg, sec * 10**9)
    for sec, msg in gt:
        writer.write("/ground_truth/detections", msg, sec * 10**9)
    writer.close()
    return path


def _cloud(sec: int, frame: str = "base_link", fields: str = "xyz"):
    from std_msgs.msg import Header

    from sr3d_ros.conversions import make_pointcloud2

    xyz = np.random.default_rng(sec).uniform(-1, 1, (500, 3)).astype(np.float32)
    cols = [(name, xyz[:, "xyz".index(name)], 7) for name in fields] + [("rgb", np.zeros(500, np.uint32), 6)]
    msg = make_pointcloud2(Header(frame_id=frame), 1, 500, cols)
    msg.header.stamp.sec = sec
    return msg


def _gt(sec: int, class_id: str):
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

    det = Detection3D()
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id, hyp.hypothesis.score = class_id, 1.0
    det.results = [hyp]
    det.bbox.size.x = det.bbox.size.y = det.bbox.size.z = 1.0
    det.bbox.center.orientation.w = 1.0
    msg = Detection3DArray(header=Header(frame_id="base_link"), detections=[det])
    msg.header.stamp.sec = sec
    return msg


def test_unknown_gt_class_on_the_topic_names_bag_and_topic(ckpt, tmp_path, capsys):
    path = _small_bag(tmp_path / "dragon", [(1, _cloud(1))], [(1, _gt(1, "dragon"))])
    code, err = run_cli(
        str(path),
        "--checkpoint",
        str(ckpt),
        "--cloud-topic",
        "/points",
        "--target-frame",
        "",
        "--out",
        str(tmp_path / "o"),
        capsys=capsys,
    )
    assert code == 2 and "Traceback" not in err, err
    assert f"bag {path}: the ground truth on /ground_truth/detections at 1.000 s cannot be read" in err, err
    assert "class_id 'dragon'" in err, err


def test_an_explicit_gt_topic_the_bag_lacks_is_an_error(bag, ckpt, tmp_path, capsys):
    code, err = run_cli(
        str(bag), "--checkpoint", str(ckpt), "--gt-topic", "/labels", "--out", str(tmp_path), capsys=capsys
    )
    assert code == 2 and "has no topic '/labels'; it has: " in err and "/ground_truth/detections" in err, err
    # The default topic stays optional; '' asks for none.
    path = _small_bag(tmp_path / "no_gt", [(1, _cloud(1))])
    code, err = run_cli(
        str(path),
        "--checkpoint",
        str(ckpt),
        "--cloud-topic",
        "/points",
        "--target-frame",
        "",
        "--out",
        str(tmp_path / "o"),
        capsys=capsys,
    )
    assert code == 0, err


def test_gt_stamps_that_match_no_cloud_are_an_error(ckpt, tmp_path, capsys):
    path = _small_bag(tmp_path / "late_gt", [(1, _cloud(1)), (2, _cloud(2))], [(5, _gt(5, "chair"))])
    code, err = run_cli(
        str(path),
        "--checkpoint",
        str(ckpt),
        "--cloud-topic",
        "/points",
        "--target-frame",
        "",
        "--out",
        str(tmp_path / "o"),
        capsys=capsys,
    )
    assert code == 2, err
    assert (
        f"bag {path}: none of the 1 ground-truth stamps of topic /ground_truth/detections (5.000 to 5.000 s) is "
        "the header stamp of one of the 2 clouds replayed from /points (1.000 to 2.000 s)"
    ) in err, err
    sidecar = tmp_path / "gt.yaml"
    sidecar.write_text("frame_id: base_link\nframes:\n  - stamp_ns: 7\n    objects: []\n")
    code, err = run_cli(
        str(path),
        "--checkpoint",
        str(ckpt),
        "--cloud-topic",
        "/points",
        "--target-frame",
        "",
        "--gt-file",
        str(sidecar),
        "--out",
        str(tmp_path / "o"),
        capsys=capsys,
    )
    assert code == 2 and f"ground-truth stamps of {sidecar}" in err, err


def test_offline_in_an_optical_frame_warns_as_the_node_does(bag, ckpt, tmp_path, capsys):
    code, err = run_cli(
        str(bag),
        "--checkpoint",
        str(ckpt),
        "--target-frame",
        "",
        "--max-frames",
        "2",
        "--gt-topic",
        "",
        "--out",
        str(tmp_path),
        capsys=capsys,
    )
    assert code == 0, err
    assert err.count("sr3d-replay: warning: inferring in 'camera_color_optical_frame', an optical frame") == 1, err


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for text in (
        "(default: /camera/depth/color/points)",
        "(default: /ground_truth/detections when the bag has it)",
        "(default: base_link)",
        "(default: the checkpoint's",
        "(default: offline)",
        "(default: 1.0)",
    ):
        assert text in " ".join(out.split()), out


def test_live_missing_transform_is_an_error_before_the_node_starts(bag, ckpt, tmp_path, capsys):
    code, err = run_cli(
        str(bag),
        "--checkpoint",
        str(ckpt),
        "--mode",
        "live",
        "--lockstep",
        "--target-frame",
        "map",
        "--out",
        str(tmp_path),
        capsys=capsys,
    )
    assert code == 2 and "to the target frame 'map'" in err and "camera_color_optical_frame" in err, err
    assert str(bag) in err and not (tmp_path / "node.log").exists()  # the node never started (no wall-clock bound)


def test_live_lockstep_marks_a_frame_the_node_skips_without_waiting(ckpt, tmp_path):
    """A cloud without z: offline marks it malformed; live, the node skips it and counts it, and the lockstep
    replay marks it so at once instead of waiting for an answer that never comes (a wait that ran out would count
    it as dropped instead: no wall-clock bound needed, however slow the machine)."""
    path = _small_bag(tmp_path / "holes", [(1, _cloud(1)), (2, _cloud(2, fields="xy")), (3, _cloud(3))])
    off = replay(
        ReplayConfig(
            path, ckpt, "offline", cloud_topic="/points", target_frame="", out=tmp_path / "off", progress=False
        )
    )
    assert off["frames_malformed"] == 1 and off["frames_answered"] == 2
    live = replay(
        ReplayConfig(
            path,
            ckpt,
            "live",
            cloud_topic="/points",
            target_frame="",
            lockstep=True,
            out=tmp_path / "live",
            progress=False,
            **PATIENT,
        )
    )
    assert live["frames_malformed"] == 1 and live["frames_answered"] == 2 and live["frames_dropped"] == 0, (
        tmp_path / "live" / "node.log"
    ).read_text()


# ---------------------------------------------------------------- the report's rate and pictures


def test_rate_is_the_answered_frames_own_span():
    """rate_hz counts the answered frames over their own span (first publication to last answer), not over the
    whole replay, whose first seconds are the node's start-up."""
    names = ("chair", "table")
    det = Detections.empty(names)
    records = [
        FrameRecord(1, "base_link", det, 200.0, t_sent=100.0, t_answered=100.2),
        FrameRecord(2, "base_link", det, 200.0, t_sent=100.5, t_answered=100.7),
        FrameRecord(3, error="dropped (no detections received for this stamp)", t_sent=101.0),
        FrameRecord(4, "base_link", det, 500.0, t_sent=101.5, t_answered=102.0),
    ]
    cfg = ReplayConfig(Path("bag"), Path("model.pt"), "live")
    s = summarize(cfg, records, None, wall_s=30.0)  # 28 s of it before the first cloud
    assert s["frames_answered"] == 3 and s["wall_s"] == 30.0
    assert s["rate_span_s"] == pytest.approx(2.0) and s["rate_hz"] == pytest.approx(1.5)
    # a dropped first frame does not stretch the span
    s = summarize(cfg, [FrameRecord(0, error="dropped", t_sent=90.0), *records], None, wall_s=30.0)
    assert s["rate_hz"] == pytest.approx(1.5)
    # nothing answered: no rate
    s = summarize(cfg, [records[2]], None, wall_s=30.0)
    assert s["rate_hz"] is None and s["rate_span_s"] is None


class ScriptedDetector:
    """Answers the clouds, in order, with the given detections (the pipeline's detector interface)."""

    def __init__(self, answers: list, class_names) -> None:
        self.answers, self.class_names = iter(answers), tuple(class_names)
        self.contract = InputContract(0.02, True, None, None)

    def network_input(self, points):
        return points, PrepareStats(len(points), 0, 0, 0, False)

    def detect_input(self, points):
        return next(self.answers)


def _dets(scores: list[float], names) -> Detections:
    boxes = np.tile(np.array([[1.0, 0.0, 0.5, 0.6, 0.6, 1.0, 0.0]], np.float32), (len(scores), 1))
    return Detections(boxes.reshape(-1, 7), np.array(scores, np.float32), np.zeros(len(scores), np.int64), tuple(names))


def test_birds_eye_views_show_frames_with_something_to_draw(ckpt, tmp_path):
    """Frames with neither ground truth nor a box at the node's default threshold are not drawn; a report with
    no such frame has no picture, and none left over from an earlier report in the folder."""
    from sr3d_core.data.classes import SUNRGBD_CLASSES

    path = _small_bag(tmp_path / "bag", [(s, _cloud(s)) for s in (1, 2, 3, 4)], [(4, _gt(4, "chair"))])
    out = tmp_path / "report"
    cfg = ReplayConfig(path, ckpt, cloud_topic="/points", target_frame="", out=out, progress=False)
    rb = ReplayBag(cfg, SUNRGBD_CLASSES)
    # 1: nothing; 2: a box below 0.3 (not published by default); 3: a box at 0.9; 4: ground truth only
    answers = [
        _dets([], SUNRGBD_CLASSES),
        _dets([0.1], SUNRGBD_CLASSES),
        _dets([0.9], SUNRGBD_CLASSES),
        _dets([], SUNRGBD_CLASSES),
    ]
    records = run_offline(cfg, ScriptedDetector(answers, SUNRGBD_CLASSES), rb)
    assert [r.stamp_ns for r in bev_frames(records, rb, 4)] == [3 * 10**9, 4 * 10**9]
    assert [r.stamp_ns for r in bev_frames(records, rb, 1)] == [3 * 10**9]
    write_report(cfg, summarize(cfg, records, None, 1.0), records, rb, None)
    assert sorted(p.name for p in out.glob("bev_*.png")) == ["bev_0.png", "bev_1.png"]
    report = (out / "report.md").read_text()
    assert "![bev_1.png](bev_1.png)" in report and "bird's-eye views: 2 of the answered frames" in report
    assert "answered frames per second (4 frames over" in report and "loading the model is not in it" in report
    # No ground truth and no box at 0.3 anywhere: no picture (the earlier ones are removed too).
    cfg = ReplayConfig(path, ckpt, cloud_topic="/points", gt_topic="", target_frame="", out=out, progress=False)
    rb = ReplayBag(cfg, SUNRGBD_CLASSES)
    records = run_offline(cfg, ScriptedDetector([_dets([0.2], SUNRGBD_CLASSES)] * 4, SUNRGBD_CLASSES), rb)
    assert bev_frames(records, rb, 4) == []
    write_report(cfg, summarize(cfg, records, None, 1.0), records, rb, None)
    assert list(out.glob("bev_*.png")) == []
    report = (out / "report.md").read_text()
    assert "no bird's-eye view: no answered frame has ground truth or a box scored >= 0.3" in report
    assert "bev_" not in report
