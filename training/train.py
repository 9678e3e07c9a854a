"""Train a TR3D / SR3D detector.

Single process:  ``python training/train.py --config synth_sunrgbd_small --work-dir runs/x``
Distributed:     ``torchrun --nproc_per_node 2 training/train.py --config ... --work-dir ...`` (gloo on CPU, nccl
on GPU). ``--resume`` continues from ``work_dir/latest.pt`` (or a given file) to bit-identical weights.

Determinism: every random choice of the data path (order, augmentation, point sampling, in-voxel point choice) is
drawn from generators seeded by (seed, epoch, position in epoch), so the data a step sees does not depend on
what ran before; the global python / numpy / torch RNG states are saved in checkpoints as well.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sr3d_core.config import Config, load_config  # noqa: E402
from sr3d_core.data.loader import StepDataset, step_loader  # noqa: E402
from sr3d_core.data.sources import build_source  # noqa: E402
from sr3d_core.model.checkpoint import load_checkpoint, make_checkpoint, save_atomic  # noqa: E402
from sr3d_core.model.criterion import Criterion  # noqa: E402
from sr3d_core.model.detector import build_detector, sparse_to  # noqa: E402


# --------------------------------------------------------------------------------------------- schedule
def lr_factor(step: int, cfg: Config, iters_per_epoch: int) -> float:
    """Linear warm-up from ``warmup_ratio``, then ×``lr_decay`` after each epoch in ``lr_decay_epochs``."""
    t = cfg.train
    f = 1.0
    if t.warmup_iters > 0 and step < t.warmup_iters:
        f = t.warmup_ratio + (1 - t.warmup_ratio) * step / t.warmup_iters
    epoch = step // iters_per_epoch
    return f * t.lr_decay ** sum(epoch >= e for e in t.lr_decay_epochs)


# --------------------------------------------------------------------------------------------- helpers
def rng_state() -> dict[str, Any]:
    """Global RNG states (python, numpy, torch, cuda), as tensors and plain types (checkpoints hold nothing else)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    s = {"python": random.getstate(), "torch": torch.get_rng_state(),
         "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)}}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict[str, Any]) -> None:
    """Restore ``rng_state()``."""
    random.setstate(s["python"])
    n = s["numpy"]
    if isinstance(n, dict):
        n = (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(n)
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def truncate_csv(path: Path, max_step: int) -> None:
    """Drop rows logged after ``max_step`` (they are re-done after a resume)."""
    if not path.exists():
        return
    with open(path) as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= max_step]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(kept)


def append_csv(path: Path, header: list[str], row: list[Any]) -> None:
    """Append a row, writing the header first if the file is new."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(header)
        w.writerow(row)


def plot_logs(work_dir: Path) -> None:
    """PNG of the training loss and the validation mAP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name, a, cols in (("train_log.csv", ax[0], ("loss", "loss_cls", "loss_box")),
                          ("val_log.csv", ax[1], ("mAP_0.25", "mAP_0.5"))):
        p = work_dir / name
        if not p.exists():
            continue
        with open(p) as f:
            rows = list(csv.DictReader(f))
        steps = [int(r["step"]) for r in rows]
        for c in cols:
            a.plot(steps, [float(r[c]) for r in rows], label=c)
        a.set_xlabel("step")
        a.legend()
    ax[0].set_yscale("log")
    fig.tight_layout()
    tmp = work_dir / ".curves.png.tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, work_dir / "curves.png")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


# --------------------------------------------------------------------------------------------- main loop
def train(
    cfg: Config,
    work_dir: Path,
    resume: Optional[Path] = None,
    device: str = "auto",
    stop_after: Optional[int] = None,
    show_progress: bool = True,
    validate_at_end: bool = True,
) -> dict[str, Any]:
    """Train; return the final step and last metrics.

    Args:
        cfg: the experiment.
        work_dir: output directory (``latest.pt``, ``final.pt``, CSV logs, ``curves.png``).
        resume: checkpoint to resume from.
        device: ``auto``, ``cpu``, ``cuda``.
        stop_after: exit after this global step as if killed (for resume tests); the schedule is unchanged.
        show_progress: tqdm bar on rank 0.
        validate_at_end: run the validation pass after the last step (a caller that evaluates the final
            checkpoint itself, like the experiment grid, skips it).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(f"cuda:{local_rank}" if device == "cuda" else device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if cfg.train.batch_size % world:
        raise ValueError(f"train.batch_size {cfg.train.batch_size} is not divisible by the world size {world}")
    work_dir.mkdir(parents=True, exist_ok=True)

    seed_everything(cfg.train.seed)
    data = StepDataset.from_config(build_source(cfg, "train"), cfg, rank, world)
    iters_per_epoch = data.iters_per_epoch
    total = cfg.train.max_iters if cfg.train.max_iters is not None else cfg.train.epochs * iters_per_epoch

    model = build_detector(cfg).to(dev)
    criterion = Criterion(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg, iters_per_epoch))
    step = 0
    if resume is not None:
        ckpt = load_checkpoint(resume)
        model.load_state_dict(ckpt["model"])
        ts = ckpt["train_state"]
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        step = int(ts["step"])
        set_rng_state(ts["rng"][rank] if isinstance(ts["rng"], list) and rank < len(ts["rng"]) else ts["rng"][0])
        if rank == 0:
            truncate_csv(work_dir / "train_log.csv", step)
            truncate_csv(work_dir / "val_log.csv", step)
    ddp = model
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    loader = step_loader(data, step, total, cfg.train.num_workers)
    use_amp = cfg.train.amp and dev.type == "cuda"
    bar = None
    if rank == 0 and show_progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc="train", dynamic_ncols=True)

    def checkpoint(path: Path) -> None:
        states = [rng_state()]
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, states[0])
            states = gathered
        if rank == 0:
            ts = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step, "rng": states,
                  "world_size": world}
            save_atomic(make_checkpoint(cfg, model, ts), path)

    last: dict[str, Any] = {}
    t0 = time.time()
    model.train()
    for batch in loader:
        x = sparse_to(batch.x, dev)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            out = ddp(x)
            pred = unwrap(ddp).decode(out)
        losses = criterion(out, pred.float(), batch.gt_boxes, batch.gt_labels)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        sched.step()
        step += 1
        last = {k: float(v.detach()) for k, v in losses.items()}
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{last['loss']:.3f}", pos=int(last["num_pos"]))
        if rank == 0 and (step % max(cfg.train.log_interval, 1) == 0 or step == total):
            terms = sorted(last)  # whatever the criterion returns (a new loss term needs no logger change)
            append_csv(work_dir / "train_log.csv", ["step", "epoch", "lr", *terms, "seconds"],
                       [step, step // iters_per_epoch, opt.param_groups[0]["lr"], *(last[k] for k in terms),
                        round(time.time() - t0, 2)])
        if cfg.train.val_interval and step % cfg.train.val_interval == 0 and step != total:
            _validate(cfg, model, dev, work_dir, step, rank, world)
        if cfg.train.ckpt_interval and step % cfg.train.ckpt_interval == 0:
            checkpoint(work_dir / "latest.pt")
        if stop_after is not None and step >= stop_after:
            checkpoint(work_dir / "latest.pt")
            break
    if bar is not None:
        bar.close()
    if step >= total:
        checkpoint(work_dir / "latest.pt")
        if rank == 0:
            save_atomic(make_checkpoint(cfg, model), work_dir / "final.pt")
        if validate_at_end:
            last.update(_validate(cfg, model, dev, work_dir, step, rank, world) or {})
    if world > 1:
        # Sanity check: DDP must leave identical parameters on every rank.
        digest = float(sum(p.detach().double().sum() * (i + 1) for i, p in enumerate(model.parameters())))
        digests: list[Any] = [None] * world
        dist.all_gather_object(digests, digest)
        if rank == 0:
            (work_dir / "ddp_check.json").write_text(json.dumps({"param_digests": digests}))
        if len(set(digests)) != 1:
            raise RuntimeError(f"DDP ranks diverged: parameter digests {digests}")
        dist.barrier()
    return {"step": step, **last}


def _validate(cfg: Config, model: torch.nn.Module, dev: torch.device, work_dir: Path, step: int, rank: int,
              world: int) -> Optional[dict[str, float]]:
    """Validation mAP on rank 0 (others wait); appends to ``val_log.csv`` and redraws ``curves.png``."""
    metrics = None
    if rank == 0:
        from sr3d_core.evaluation.evaluate import evaluate_detector
        from sr3d_core.inference import Detector

        res = evaluate_detector(Detector(model, cfg, dev), build_source(cfg, "val"))
        model.train()
        metrics = {k: v for k, v in res.metrics().items() if k in ("mAP_0.25", "mAP_0.5")}
        append_csv(work_dir / "val_log.csv", ["step", "mAP_0.25", "mAP_0.5"],
                   [step, metrics["mAP_0.25"], metrics["mAP_0.5"]])
        plot_logs(work_dir)
    if world > 1:
        dist.barrier()
    return metrics


def main(argv: Optional[list[str]] = None) -> int:
    """CLI entry point."""
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
    resume = None
    if args.resume is not None:
        resume = args.work_dir / "latest.pt" if args.resume == "latest" else Path(args.resume)
    res = train(cfg, args.work_dir, resume, args.device, args.stop_after, not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print({k: round(v, 5) if isinstance(v, float) else v for k, v in res.items()})
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
