"""sr3d_ros.pipeline.FramePipeline: one cloud message in, the detections ``Detector.detect`` gives on its points out
(transformed, capped, colour filled in or refused, classes filtered), and each notice once."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("sensor_msgs") is None or importlib.util.find_spec("std_msgs") is None:
    pytest.skip("ROS 2 message packages not installed (scripts/setup.sh)", allow_module_level=True)

from builtin_interfaces.msg import Time  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from sr3d_core.detections import Detections  # noqa: E402
from sr3d_core.inference import Detector, write_random_checkpoint  # noqa: E402
from sr3d_core.preprocess import NEUTRAL_COLOR  # noqa: E402
from sr3d_ros.conversions import MalformedCloudError, make_pointcloud2  # noqa: E402
from sr3d_ros.pipeline import FramePipeline, PreparedFrame  # noqa: E402
from sr3d_ros.tf_lookup import TransformUnavailable  # noqa: E402

F32, U32 = 7, 6


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    det = Detector.from_checkpoint(
        write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", "toy_tiny"), "cpu"
    )
    det.set_postprocess(score_threshold=0.0, max_detections=20)
    return det


def points(n: int = 3000, seed: int = 0) -> np.ndarray:
    """xyz in a 2 x 2 x 1 m box and colours that are exact in uint8 (so the message carries them losslessly)."""
    rng = np.random.default_rng(seed)
    xyz = rng.uniform([-1, -1, 0], [1, 1, 1], (n, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (n, 3)).astype(np.float32) / 255
    return np.concatenate([xyz, rgb], axis=1).astype(np.float32)


def cloud(pts: np.ndarray, color: bool = True, frame: str = "base_link", sec: int = 3, nanosec: int = 5):
    x, y, z = pts[:, :3].T
    columns = [("x", x, F32), ("y", y, F32), ("z", z, F32)]
    if color:
        rgb = np.round(pts[:, 3:6] * 255).astype(np.uint32)
        columns.append(("rgb", (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2], U32))
    return make_pointcloud2(Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame), 1, len(pts), columns)


def same(a: Detections, b: Detections) -> bool:
    """Equal detections (up to float rounding: the message's colours decode as uint8 / 255 in its own order)."""
    return (
        a.boxes.shape == b.boxes.shape
        and np.allclose(a.boxes, b.boxes, atol=1e-5)
        and np.allclose(a.scores, b.scores, atol=1e-5)
        and np.array_equal(a.labels, b.labels)
    )


class Shift:
    """A TF look-up that moves points by ``offset`` (and records its calls), or has no transform."""

    def __init__(self, offset: tuple[float, float, float] | None) -> None:
        self.offset, self.calls = offset, []

    def lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> np.ndarray:
        self.calls.append((target, source, stamp_ns, timeout_s))
        if self.offset is None:
            raise TransformUnavailable(f"{source} -> {target}")
        m = np.eye(4)
        m[:3, 3] = self.offset
        return m


def test_process_is_detect_on_the_clouds_points(detector: Detector) -> None:
    pts = points()
    res = FramePipeline(detector).process(cloud(pts))
    assert same(res.detections, detector.detect(pts)) and len(res.detections) > 0
    assert (res.frame, res.stamp_ns) == ("base_link", 3_000_000_005)
    assert res.notices == [] and res.prep is not None and res.model_ms >= 0


def test_prepare_then_infer_is_process(detector: Detector) -> None:
    pipeline, msg = FramePipeline(detector), cloud(points())
    prepared = pipeline.prepare(msg)
    assert isinstance(prepared, PreparedFrame) and prepared.batch is not None
    assert prepared.header_stamp == msg.header.stamp
    assert same(pipeline.infer(prepared).detections, pipeline.process(msg).detections)


def test_target_frame_transforms_the_points_at_the_stamp(detector: Detector) -> None:
    pts = points()
    tf = Shift((0.5, -0.25, 0.1))
    res = FramePipeline(detector, "odom", tf, tf_timeout_s=0.3).process(cloud(pts, frame="camera"))
    moved = pts.copy()
    moved[:, :3] += np.float32([0.5, -0.25, 0.1])
    assert tf.calls == [("odom", "camera", 3_000_000_005, 0.3)] and res.frame == "odom"
    assert same(res.detections, detector.detect(moved))
    # the target frame is the cloud's own: no look-up
    assert FramePipeline(detector, "/camera", tf).process(cloud(pts, frame="camera")).frame == "camera"
    assert len(tf.calls) == 1
    with pytest.raises(TransformUnavailable):
        FramePipeline(detector, "odom", Shift(None)).process(cloud(pts, frame="camera"))
    with pytest.raises(ValueError, match="TF look-up"):
        FramePipeline(detector, "odom").process(cloud(pts, frame="camera"))


def test_missing_colour_is_refused_or_neutral(detector: Detector) -> None:
    pts = points()
    with pytest.raises(MalformedCloudError):
        FramePipeline(detector).process(cloud(pts, color=False))
    pipeline = FramePipeline(detector, missing_color="neutral")
    res = pipeline.process(cloud(pts, color=False))
    grey = pts.copy()
    grey[:, 3:6] = NEUTRAL_COLOR
    assert same(res.detections, detector.detect(grey))
    assert [n[:2] for n in res.notices] == [("neutral_color", "warn")]
    assert pipeline.process(cloud(pts, color=False)).notices == []  # once per pipeline
    with pytest.raises(ValueError, match="missing_color"):
        FramePipeline(detector, missing_color="grey")


def test_class_filter(detector: Detector) -> None:
    pts = points()
    full = detector.detect(pts)
    res = FramePipeline(detector, classes=("large",)).process(cloud(pts))
    keep = full.labels == detector.class_names.index("large")
    assert same(res.detections, Detections(full.boxes[keep], full.scores[keep], full.labels[keep], full.class_names))


def test_notices_for_stamp_frame_and_cap(detector: Detector) -> None:
    pipeline = FramePipeline(detector)
    kinds = [n[0] for n in pipeline.process(cloud(points(), frame="", sec=0, nanosec=0)).notices]
    assert kinds == ["zero_stamp", "empty_frame_id"]
    optical = pipeline.process(cloud(points(), frame="camera_optical_frame")).notices
    assert [n[0] for n in optical] == ["optical_frame"]
    if detector.contract.max_points:  # the capped rows are never decoded: the same as detect's own cap
        n = detector.contract.max_points * 2
        res = FramePipeline(detector).process(cloud(points(n)))
        assert "capped" in [k for k, _, _ in res.notices]
        assert same(res.detections, detector.detect(points(n)))


def test_an_empty_cloud_has_no_detections(detector: Detector) -> None:
    res = FramePipeline(detector).process(cloud(points(0)))
    assert len(res.detections) == 0 and res.prep is None


def test_the_detector_is_typed() -> None:
    import typing

    from sr3d_ros import pipeline

    hints = typing.get_type_hints(FramePipeline.__init__, vars(pipeline) | {"Detector": Detector})
    assert hints["detector"] is Detector
    assert Path(pipeline.__file__).name == "pipeline.py"
