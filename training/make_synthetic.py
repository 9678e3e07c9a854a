"""Write a synthetic data set in the mmdet3d v1.1 format the real loaders read.

Example:
    python training/make_synthetic.py --preset scannet-like --num-scenes 400 --seed 0 --out data/synth_scannet \
        --split train
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per process: we parallelize across scenes

from tqdm import tqdm  # noqa: E402

from sr3d_core.data.synthetic.presets import PRESETS  # noqa: E402
from sr3d_core.data.synthetic.world import WorldConfig  # noqa: E402
from sr3d_core.data.synthetic.writer import write_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the data set, print scenes per second."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--num-scenes", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0, help="dataset seed; use a different one per split")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--split", default="train", help="split name in the info file name")
    ap.add_argument("--workers", type=int, default=2, help="processes (output does not depend on it)")
    ap.add_argument(
        "--world-off",
        default="",
        metavar="FACTOR[,FACTOR]",
        help="switch realism factors of the preset's world off (ablations): " + ", ".join(WorldConfig.factors()),
    )
    a = ap.parse_args(argv)
    if a.num_scenes <= 0:
        ap.error("--num-scenes must be positive")
    preset = PRESETS[a.preset]
    off = [f.strip() for f in a.world_off.split(",") if f.strip()]
    if off:
        try:
            preset = preset.with_world(preset.world.without(*off))
        except ValueError as e:
            ap.error(str(e))
    with tqdm(total=a.num_scenes, unit="scene", desc=a.preset) as bar:
        path, secs = write_dataset(preset, a.num_scenes, a.seed, a.out, a.split, a.workers, bar.update)
    rate = a.num_scenes / secs
    print(
        f"wrote {a.num_scenes} scenes to {path} in {secs:.1f} s: {rate:.2f} scenes/s "
        f"({a.workers} processes); 1000 scenes would take ~{1000 / rate / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
