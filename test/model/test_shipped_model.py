"""The shipped model: it loads, its size and contract are what the card says, and it scores the card's mAP on
fixed synthetic frames (rendered here, not read from files)."""

import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "sr3d_synth_sunrgbd_real.pt"
PRESET = "sunrgbd-real"  # the world it was trained in, without the factors below
WORLD_OFF = ("lighting",)
CARD = REPO / "docs" / "MODELS.md"


def card_check() -> tuple[int, int, float, float]:
    m = re.search(
        r"fixed-frame check.*?val scenes 0–(\d+) of seed (\d+).*?mAP@0\.25 ([0-9.]+), mAP@0\.5 ([0-9.]+)",
        CARD.read_text(),
        re.IGNORECASE,
    )
    assert m, "docs/MODELS.md lacks the fixed-frame check row"
    return int(m.group(1)) + 1, int(m.group(2)), float(m.group(3)), float(m.group(4))


def test_shipped_model_matches_its_card():
    from sr3d_core.data.synthetic.presets import PRESETS
    from sr3d_core.data.synthetic.scene import generate_scene
    from sr3d_core.evaluation.indoor_map import IndoorMapEvaluator, SceneGroundTruth
    from sr3d_core.inference import Detector

    assert MODEL.stat().st_size < 20e6
    det = Detector.from_checkpoint(MODEL)
    assert det.class_names == PRESETS[PRESET].class_names
    assert det.contract.voxel_size == 0.02 and det.contract.max_points == 50_000 and det.contract.use_color
    det.set_postprocess(score_threshold=0.01)
    n, seed, want25, want50 = card_check()
    ev = IndoorMapEvaluator(det.class_names, skip_classes_without_gt=True)
    preset = PRESETS[PRESET].with_world(PRESETS[PRESET].world.without(*WORLD_OFF))
    for i in range(n):
        s = generate_scene(preset, seed, i)
        ev.add(SceneGroundTruth(s.boxes, s.labels), det.detect(s.points))
    res = ev.compute()
    assert res.map_at(0.25) == pytest.approx(want25, abs=0.02)
    assert res.map_at(0.5) == pytest.approx(want50, abs=0.02)
    assert np.isfinite(res.map_at(0.25)) and res.map_at(0.25) > 0.3
