"""Loader throughput: samples per second through Dataset + augmentation + sparse collate.

Example:
    python -m sr3d_core.data.bench --data-root data/synth_scannet --info scannet_infos_train.pkl \
        --augment scannet --workers 2 --batch-size 8 --voxel-size 0.01
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from sr3d_core.data.dataset import DatasetConfig, InfoDataset, SparseCollate  # noqa: E402
from sr3d_core.data.infos import load_infos  # noqa: E402
from sr3d_core.preprocess import InputContract  # noqa: E402


def measure(ds: InfoDataset, collate: SparseCollate, workers: int, batch_size: int, epochs: int) -> float:
    """Samples per second over `epochs` passes (the first batch, i.e. worker start-up, is excluded)."""
    dl = DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate, shuffle=False,
                    persistent_workers=workers > 0)
    n, t0 = 0, None
    for _ in range(epochs):
        for batch in dl:
            if t0 is None:  # start the clock once the workers are up
                t0 = time.perf_counter()
                continue
            n += len(batch["gt_boxes"])
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and print samples/s."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--info", required=True)
    ap.add_argument("--augment", default="none")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--voxel-size", type=float, default=0.01)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    meta = load_infos(f"{a.data_root}/{a.info}")["metainfo"]
    names = tuple(sorted(meta["categories"], key=meta["categories"].get))
    c = InputContract(a.voxel_size, True)
    ds = InfoDataset(DatasetConfig(a.data_root, a.info, names, augment=a.augment), c)
    rate = measure(ds, SparseCollate(c, seed=0), a.workers, a.batch_size, a.epochs)
    print(f"{rate:.1f} samples/s ({a.workers} workers, batch {a.batch_size}, voxel {a.voxel_size}, "
          f"augment {a.augment}, {len(ds)} samples x {a.epochs} epochs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
