"""Train a TR3D / SR3D detector (``sr3d-train``; ``python training/train.py`` runs the same).

Single process:  ``sr3d-train --config synth_sunrgbd_small --work-dir runs/x``
Distributed:     ``torchrun --nproc_per_node 2 training/train.py --config ... --work-dir ...`` (gloo on CPU, nccl
on GPU). ``--resume`` continues from ``work_dir/latest.pt`` (or a given file) to bit-identical weights.

Determinism: every random choice of the data path (order, augmentation, point sampling, in-voxel point choice) is
drawn from generators seeded by (seed, epoch, position in epoch), so the data a step sees does not depend on
what ran before; the global python / numpy / torch RNG states are saved in checkpoints as well.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

import torch.distributed as dist

from sr3d_core.config import load_config
from sr3d_core.engine.distributed import DistContext
from sr3d_core.engine.trainer import train
from sr3d_core.runtime import keep_freed_memory


def main(argv: Optional[list[str]] = None) -> int:
    """Parse the command line and train."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="preset name in config/models or a YAML path")
    ap.add_argument("--work-dir", required=True, type=Path)
    ap.add_argument("--resume", nargs="?", const="latest", default=None,
                    help="resume from work_dir/latest.pt (no value) or from the given checkpoint")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. train.lr=1e-4")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this step (simulates a kill)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.set)
    keep_freed_memory()
    resume = None
    if args.resume is not None:
        resume = args.work_dir / "latest.pt" if args.resume == "latest" else Path(args.resume)
    res = train(cfg, args.work_dir, resume, args.device, args.stop_after, not args.no_progress)
    if DistContext.from_env().is_main:
        print({k: round(v, 5) if isinstance(v, float) else v for k, v in res.items()})
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
