"""Per-frame latency of ``Detector.detect`` (preprocess + network + postprocess) on stored frames.

``python training/benchmark_detect.py --checkpoint runs/x/final.pt --points-dir data/synth_sunrgbd/points``

Prints one table row per (torch threads, score threshold, sparse backend): the evaluation protocol's 0.01
threshold makes NMS see every candidate, the node's default 0.3 shows what a robot pays per frame.
``--backends torch minkowski`` times the same weights on this package's engine and on MinkowskiEngine (built with
``scripts/build_minkowski.sh``), in turn for each thread count and threshold; "vs first" is the median time over
the first backend's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from sr3d_core.inference import Detector
from sr3d_core.runtime import keep_freed_memory
from sr3d_core.sparse import available_backends, set_backend


def load_frames(points_dir: Path, count: int, num_feats: int) -> list[np.ndarray]:
    """The first ``count`` ``.bin`` files of a points directory (mmdet3d layout: float32 rows)."""
    files = sorted(points_dir.glob("*.bin"))[:count]
    if not files:
        raise SystemExit(f"no .bin files in {points_dir}")
    return [np.fromfile(f, np.float32).reshape(-1, num_feats) for f in files]


def time_detect(det: Detector, frames: list[np.ndarray], warmup: int) -> np.ndarray:
    """Milliseconds per frame, after ``warmup`` untimed frames."""
    for f in frames[:warmup]:
        det.detect(f)
    out = []
    for f in frames:
        t = time.perf_counter()
        det.detect(f)
        out.append((time.perf_counter() - t) * 1e3)
    return np.asarray(out)


def main() -> None:
    """Parse arguments and print the latency table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--points-dir", required=True, type=Path)
    ap.add_argument("--num-feats", type=int, default=6, help="columns per stored point")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--score-thresholds", type=float, nargs="+", default=[0.01, 0.3])
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--backends", nargs="+", default=["torch"], help="sparse backends to time in turn (torch, minkowski)"
    )
    a = ap.parse_args()
    missing = sorted(set(a.backends) - set(available_backends()))
    if missing:
        ap.error(f"backends {missing} are not available here (have {available_backends()})")

    det = Detector.from_checkpoint(a.checkpoint, a.device)
    keep_freed_memory()
    frames = load_frames(a.points_dir, a.frames, a.num_feats)
    print(
        f"Detector.detect on {len(frames)} frames of {a.points_dir} ({np.mean([len(f) for f in frames]):.0f} "
        f"points on average), checkpoint {a.checkpoint}, device {a.device}"
    )
    print(
        "| torch threads | score threshold | backend | median ms | p90 ms | min ms | vs first |\n"
        "|---|---|---|---|---|---|---|"
    )
    for threads in a.threads:
        torch.set_num_threads(threads)
        for thr in a.score_thresholds:
            det.score_threshold = thr
            first = None
            for backend in a.backends:
                set_backend(backend)
                ms = time_detect(det, frames, a.warmup)
                first = np.median(ms) if first is None else first
                print(
                    f"| {threads} | {thr:g} | {backend} | {np.median(ms):.1f} | {np.percentile(ms, 90):.1f} | "
                    f"{ms.min():.1f} | {np.median(ms) / first:.2f}x |"
                )
    set_backend("torch")


if __name__ == "__main__":
    main()
