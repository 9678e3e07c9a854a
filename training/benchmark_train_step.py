"""Training-step time of several configs side by side (e.g. TR3D vs SR3D), on the same batches.

    python training/benchmark_train_step.py --configs synth_scannet_small sr3d_synth_scannet_small --steps 40

Each config gets its own model and optimizer from the same seed; step i of every config sees the same batch, and
the configs take turns step by step, so a busy machine slows them all alike. Printed per config: the median and
p90 of the whole step (forward, assignment + losses, backward, optimizer) and of the criterion alone (assignment
+ losses), after ``--warmup`` steps that are not counted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sr3d_core.config import load_config
from sr3d_core.data.loader import StepDataset
from sr3d_core.data.sources import build_source
from sr3d_core.engine.criterion import Criterion
from sr3d_core.engine.schedule import make_optimizer
from sr3d_core.model.network import build_network
from sr3d_core.runtime import keep_freed_memory


def main(argv: list[str] | None = None) -> int:
    """Time the configs and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", required=True)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides applied to every config")
    a = ap.parse_args(argv)
    if a.steps < 1 or a.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    torch.set_num_threads(a.threads)
    keep_freed_memory()
    runs = []
    for name in a.configs:
        cfg = load_config(name, a.set)
        torch.manual_seed(cfg.train.seed)
        model = build_network(cfg)
        runs.append(
            {
                "name": name,
                "cfg": cfg,
                "model": model,
                "criterion": Criterion(cfg),
                "opt": make_optimizer(model, cfg.train),
                "data": StepDataset.from_config(build_source(cfg, "train"), cfg),
                "step": [],
                "fwd": [],
                "crit": [],
                "bwd": [],
            }
        )
    for i in range(a.warmup + a.steps):
        for r in runs:
            batch = r["data"][i]
            t0 = time.perf_counter()
            out = r["model"](batch.x)
            t1 = time.perf_counter()
            losses = r["criterion"](out, batch.gt_boxes, batch.gt_labels)  # decoding included
            t2 = time.perf_counter()
            r["opt"].zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(r["model"].parameters(), r["cfg"].train.grad_clip)
            r["opt"].step()
            t3 = time.perf_counter()
            if i >= a.warmup:
                r["step"].append(t3 - t0)
                r["fwd"].append(t1 - t0)
                r["crit"].append(t2 - t1)
                r["bwd"].append(t3 - t2)
    base = np.array(runs[0]["step"])
    print(f"{a.steps} steps per config after {a.warmup} warm-up steps, {a.threads} thread(s)")
    print(
        "| config | step median ms | step p90 ms | forward median ms | criterion median ms | backward + optimizer"
        " median ms | vs first: median of per-step ratios |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        s = np.array(r["step"]) * 1e3
        med = {k: np.median(r[k]) * 1e3 for k in ("fwd", "crit", "bwd")}
        # Step i of every config saw the same batch at nearly the same time: the per-step ratio cancels most of a
        # busy machine's drift, the difference of two medians does not.
        ratio = np.median(np.array(r["step"]) / base)
        print(
            f"| {r['name']} | {np.median(s):.0f} | {np.percentile(s, 90):.0f} | {med['fwd']:.0f} | "
            f"{med['crit']:.1f} | {med['bwd']:.0f} | {ratio * 100 - 100:+.1f} % |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
