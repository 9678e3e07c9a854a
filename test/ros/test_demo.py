"""`make demo`, shortened: a synthetic bag replayed live through the node with the shipped model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros
if importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vision_msgs") is None:
    pytest.skip("rclpy / vision_msgs not installed (scripts/setup.sh)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]


def test_short_demo(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "sr3d_ros.demo", "--out", str(out), "--frames", "6"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "live" and report["frames"] == 6
    assert report["frames_answered"] + report["frames_dropped"] == 6 and report["frames_answered"] >= 1
    assert 0.0 <= report["mAP_0.25"] <= 1.0 and report["latency_ms"]["p50"] > 0
    # the node ran at its default threshold, and the report counts what it published
    assert report["score_threshold"] == 0.3 and report["user_view"]["score_threshold"] == 0.3
    assert report["user_view"]["tp"] + report["user_view"]["fn"] > 0
    for name in ("report.md", "latency_hist.png", "bev_0.png", "node.log", "bag/metadata.yaml"):
        assert (out / name).stat().st_size > 100, name
    assert "mAP@0.25" in r.stdout and "[demo] done" in r.stdout
    # A second run reuses the bag.
    r = subprocess.run(
        [sys.executable, "-m", "sr3d_ros.demo", "--out", str(out), "--frames", "6"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0 and "reusing the bag" in r.stdout
