"""The demo: a synthetic RGB-D robot bag replayed live through the detector node with the shipped model.

    make demo                       # = python -m sr3d_ros.demo --out demo_output
    python -m sr3d_ros.demo --out demo_output --frames 50 --model models/sr3d_synth_sunrgbd_real.pt

Steps: write the bag (50 frames at 10 Hz of a robot turning in a furnished room, ground truth included) unless
``--out`` already holds one of the same length; start the node (its console script, its own process) with the
shipped model; play the bag to it at the recorded rate; print the report (mAP against the bag's ground truth,
latency, dropped frames). Everything lands in ``--out``: the bag, ``report.md``, ``report.json``, the node's log,
``latency_hist.png`` and bird's-eye views ``bev_<i>.png``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the checkout (make setup installs sr3d_ros from it in place)
SHIPPED = REPO / "models" / "sr3d_synth_sunrgbd_real.pt"
BAG_PRESET = "sunrgbd-real"  # the world the shipped model was trained in, seen by a RealSense D435


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit status 0 when every step worked."""
    from sr3d_core.config import DEPLOY_SCORE_THRESHOLD
    from sr3d_core.evaluation.protocol import EvaluationProtocol
    from sr3d_ros.make_bag import make_bag
    from sr3d_ros.replay import ReplayConfig, replay

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("demo_output"))
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--model", type=Path, default=SHIPPED)
    ap.add_argument("--seed", type=int, default=1, help="the bag's room")
    a = ap.parse_args(argv)
    if a.frames < 1:
        ap.error("--frames must be >= 1")
    if not a.model.is_file():
        ap.error(f"model not found: {a.model}")
    t0 = time.monotonic()
    a.out.mkdir(parents=True, exist_ok=True)
    bag = a.out / "bag"
    stamp = a.out / "bag.json"
    want = {"frames": a.frames, "seed": a.seed, "preset": BAG_PRESET}
    if not (bag.is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == want):
        shutil.rmtree(bag, ignore_errors=True)
        print(f"[demo] writing a {a.frames}-frame synthetic RGB-D bag to {bag}", flush=True)
        info = make_bag(bag, frames=a.frames, rate=10.0, seed=a.seed, preset_name=BAG_PRESET)
        stamp.write_text(json.dumps(want))
        print(f"[demo] {info['frames']} frames, {info['gt_boxes']} GT boxes, {info['bytes'] / 1e6:.0f} MB", flush=True)
    else:
        print(f"[demo] reusing the bag in {bag}", flush=True)
    print(f"[demo] replaying it live at 10 Hz through the node with {a.model}", flush=True)
    # The node as a user runs it: its default score threshold, so the report shows what a robot would see
    # (mAP over those boxes only, and the precision / recall of them).
    s = replay(
        ReplayConfig(
            bag,
            a.model,
            "live",
            target_frame="base_link",
            out=a.out,
            protocol=EvaluationProtocol(score_threshold=DEPLOY_SCORE_THRESHOLD),
        )
    )
    print("\n".join(line for line in (a.out / "report.md").read_text().splitlines() if line.startswith("- ")))
    print(
        f"[demo] done in {time.monotonic() - t0:.0f} s; report: {a.out / 'report.md'}, pictures: "
        + ", ".join(sorted(p.name for p in a.out.glob("*.png")))
    )
    return 0 if s["frames_answered"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
