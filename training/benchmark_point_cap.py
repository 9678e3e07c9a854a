"""Accuracy and latency of one checkpoint on full-resolution camera frames, per input point cap.

A 640x480 depth frame holds ~300k valid points; the SUN RGB-D infos (and our sunrgbd-like synthetic data) store
50k random points per frame, so a model trained on them has never seen the full density. This script renders
the synthetic scenes of a split at full resolution (no subsampling), runs ``Detector.detect`` with the input
contract's ``max_points`` set to each value given, and prints mAP@0.25 / 0.5 (the indoor protocol, score
threshold 0.01) and the per-frame latency at the node's default threshold 0.3: the evidence for the cap a
checkpoint ships with.

Example:
    OMP_NUM_THREADS=1 python training/benchmark_point_cap.py --checkpoint runs/x/final.pt \\
        --preset sunrgbd-like --seed 1 --scenes 50 --caps 0 100000 50000 30000
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from sr3d_core.data.synthetic.presets import PRESETS
from sr3d_core.data.synthetic.scene import generate_scene
from sr3d_core.evaluation.indoor_map import IndoorMapEvaluator, SceneGroundTruth
from sr3d_core.inference import Detector


def with_cap(det: Detector, cap: int | None) -> Detector:
    """A detector sharing ``det``'s weights whose input contract has ``max_points = cap``."""
    cfg = det.config
    contract = dataclasses.replace(cfg.contract, max_points=cap)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, contract=contract))
    return Detector(det.model, cfg, det.device)


def main() -> None:
    """Parse arguments, render the frames, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--preset", default="sunrgbd-like", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=1, help="dataset seed of the split to render (val: 1)")
    ap.add_argument("--scenes", type=int, default=50)
    ap.add_argument(
        "--caps", type=int, nargs="+", default=[0, 100_000, 50_000, 30_000], help="values of max_points; 0 = no cap"
    )
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    base = Detector.from_checkpoint(a.checkpoint, "cpu")
    preset = PRESETS[a.preset].full_resolution()
    scenes = [generate_scene(preset, a.seed, i) for i in range(a.scenes)]
    n_pts = np.array([len(s.points) for s in scenes])
    print(
        f"{a.scenes} full-resolution {a.preset} frames (seed {a.seed}), {n_pts.mean():.0f} points on average "
        f"(min {n_pts.min()}, max {n_pts.max()}); checkpoint {a.checkpoint} (its own cap: "
        f"{base.contract.max_points}); {a.threads} torch thread(s)"
    )
    print("| max_points | mAP@0.25 | mAP@0.5 | detect ms at 0.3 (median / p90) |\n|---|---|---|---|")
    for cap in a.caps:
        det = with_cap(base, cap or None)
        det.score_threshold = 0.01
        ev = IndoorMapEvaluator(det.class_names, skip_classes_without_gt=True)
        for s in scenes:
            ev.add(SceneGroundTruth(s.boxes, s.labels), det.detect(s.points))
        res = ev.compute()
        det.score_threshold = 0.3
        det.detect(scenes[0].points)  # warm-up
        ms = []
        for s in scenes:
            t = time.perf_counter()
            det.detect(s.points)
            ms.append((time.perf_counter() - t) * 1e3)
        print(
            f"| {cap or 'none'} | {res.map_at(0.25):.3f} | {res.map_at(0.5):.3f} | "
            f"{np.median(ms):.1f} / {np.percentile(ms, 90):.1f} |"
        )


if __name__ == "__main__":
    main()
