"""Loader throughput: samples per second through the training data path (scene source + augmentation + sparse
collate, in DataLoader workers).

Example:
    python -m sr3d_core.data.bench --data-root data/synth_scannet --info scannet_infos_train.pkl \
        --augment scannet --workers 2 --batch-size 8 --voxel-size 0.01
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from sr3d_core.data.augment import AUGMENTS
from sr3d_core.data.info_scenes import DatasetConfig, InfoScenes
from sr3d_core.data.infos import load_infos
from sr3d_core.data.loader import StepDataset, step_loader
from sr3d_core.preprocess import InputContract


def measure(data: StepDataset, workers: int, epochs: int) -> float:
    """Samples per second over `epochs` epochs (the first batch, i.e. worker start-up, is excluded)."""
    n, t0 = 0, None
    for batch in step_loader(data, 0, epochs * data.iters_per_epoch, workers):
        if t0 is None:  # start the clock once the workers are up
            t0 = time.perf_counter()
            continue
        n += len(batch.gt_boxes)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and print samples/s."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--info", required=True)
    ap.add_argument("--augment", default="none", choices=sorted(AUGMENTS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--voxel-size", type=float, default=0.01)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args(argv)
    # One thread in this process and in the loader workers it starts (they read OpenMP's setting at start-up):
    # set here, when the benchmark runs, not when the library is imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    names = load_infos(f"{a.data_root}/{a.info}").class_names
    source = InfoScenes(DatasetConfig(a.data_root, a.info, names), AUGMENTS[a.augment])
    data = StepDataset(source, InputContract(a.voxel_size, True), a.batch_size, seed=0)
    rate = measure(data, a.workers, a.epochs)
    print(
        f"{rate:.1f} samples/s ({a.workers} workers, batch {a.batch_size}, voxel {a.voxel_size}, "
        f"augment {a.augment}, {len(source)} samples x {a.epochs} epochs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
