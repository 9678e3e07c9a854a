"""Train a TR3D / SR3D detector (``sr3d-train``; ``python training/train.py`` runs the same).

Single process:  ``sr3d-train --config synth_sunrgbd_small --work-dir runs/x``
Distributed:     ``torchrun --nproc_per_node 2 training/train.py --config ... --work-dir ...`` (gloo on CPU, nccl
on GPU). ``--resume`` continues from ``work_dir/latest.pt`` (or a given file) to bit-identical weights, under the
config the checkpoint was trained with (``--allow-config-change`` continues under a changed one).

Determinism: every random choice of the data path (order, augmentation, point sampling, in-voxel point choice) is
drawn from generators seeded by (seed, epoch, position in epoch), so the data a step sees does not depend on
what ran before; the global python / numpy / torch RNG states are saved in checkpoints as well.

Errors are one line on stderr: exit status 2 for input refused before training (config, data, device, work
directory, checkpoint to resume), 1 for a run that stopped (Ctrl-C, a failed write).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from sr3d_core.config import Config, ConfigError, config_changes, config_files, load_config
from sr3d_core.engine.distributed import DistContext
from sr3d_core.engine.trainer import Trainer
from sr3d_core.model.checkpoint import CheckpointError, config_of, load_checkpoint
from sr3d_core.runtime import keep_freed_memory

LATEST = "latest.pt"
# Scene counts and seeds of the README's make_synthetic.py commands (each split its own seed).
SYNTHETIC_SPLITS = {"train": (600, 0), "val": (150, 1)}


class Refusal(Exception):
    """What the command reports on one line, with its exit status (2: input refused, 1: the run stopped)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Optional[list[str]] = None) -> int:
    """Parse the command line and train; returns 0, or 2 / 1 with a one-line reason on stderr."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="preset name in config/models or a YAML path")
    ap.add_argument("--work-dir", required=True, type=Path)
    ap.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        help="resume from work_dir/latest.pt (no value) or from the given checkpoint",
    )
    ap.add_argument(
        "--allow-config-change",
        action="store_true",
        help="resume although the config differs from the checkpoint's (the differences are printed)",
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. train.lr=1e-4")
    ap.add_argument(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (under torchrun, cuda is each rank's " "local GPU)"
    )
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this step (simulates a kill)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        res = _run(args, ap.prog)
    except Refusal as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return e.status
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if DistContext.from_env().is_main:
        print({k: round(v, 5) if isinstance(v, float) else v for k, v in res.items()})
    return 0


def _run(args: argparse.Namespace, prog: str) -> dict:
    """Check the input (cheap checks first, nothing written), then train."""
    try:
        cfg = load_config(args.config, args.set)
    except (ConfigError, FileNotFoundError) as e:
        raise Refusal(str(e)) from None
    _check_device(args.device)
    resume = _resume_path(args.resume, args.work_dir)
    if resume is not None:
        _check_resume(resume, cfg, args.allow_config_change, prog)
    _check_data(cfg, args.config)
    _check_work_dir(args.work_dir)
    keep_freed_memory()
    try:
        trainer = Trainer(cfg, args.work_dir, args.device, not args.no_progress)
    except KeyboardInterrupt:
        raise Refusal("interrupted while loading the data, before the first step", 1) from None
    except (FileNotFoundError, ValueError) as e:  # data files that are missing or do not fit the config
        raise Refusal(str(e)) from None
    if resume is not None:
        try:
            trainer.resume(resume)
        except KeyboardInterrupt:
            raise Refusal(f"interrupted while loading {resume}; it is unchanged", 1) from None
        except (RuntimeError, ValueError, KeyError) as e:  # e.g. weights that do not fit an allowed config change
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise Refusal(f"--resume: {resume} does not fit this config: {reason}") from None
    try:
        return trainer.fit(args.stop_after)
    except KeyboardInterrupt:
        raise Refusal(_interrupted(trainer, resume), 1) from None
    except OSError as e:  # a full disk, a folder made read-only mid-run, a data file gone
        raise Refusal(f"training stopped at step {trainer.step}: {e}", 1) from None


def _check_device(requested: str) -> None:
    """Refuse a device name that is none of ``auto``, ``cpu``, ``cuda``, ``cuda:N``, and CUDA where there is none
    (``auto`` falls back to the CPU)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", requested):
        raise Refusal(f"--device {requested}: expected auto, cpu, cuda or cuda:N")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        why = "this PyTorch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise Refusal(
            f"--device {requested}: CUDA is not available ({why}; torch {torch.__version__}); use "
            "--device cpu, or --device auto to take a GPU when there is one"
        )


def _resume_path(resume: Optional[str], work_dir: Path) -> Optional[Path]:
    """The checkpoint ``--resume`` names (None without it); refused when it does not exist."""
    if resume is None:
        return None
    if resume != "latest":
        path = Path(resume)
        if not path.is_file():
            raise Refusal(f"--resume: no such checkpoint: {path}")
        return path
    path = work_dir / LATEST
    if not path.is_file():
        where = f"{work_dir} does not exist" if not work_dir.exists() else f"{work_dir} has no {LATEST}"
        raise Refusal(f"--resume: no checkpoint to resume from ({where}); a fresh run needs no --resume")
    return path


def _check_resume(path: Path, cfg: Config, allow_change: bool, prog: str) -> None:
    """Refuse a checkpoint that cannot be resumed, or one trained under another config unless allowed."""
    try:
        ckpt = load_checkpoint(path)
        old = config_of(ckpt, source=f"{path}:config")
    except (CheckpointError, ConfigError) as e:
        raise Refusal(f"--resume: {e}") from None
    if "train_state" not in ckpt:
        raise Refusal(
            f"--resume: {path} holds weights only, no training state (a final.pt?); resume from the " f"run's {LATEST}"
        )
    changes = config_changes(old, cfg)
    if changes and not allow_change:
        raise Refusal(
            f"--resume: the config differs from the one {path} was trained with: {'; '.join(changes)}. "
            "Resume with that config (the same --config and --set), or add --allow-config-change to "
            "continue under the new one"
        )
    if changes and DistContext.from_env().is_main:
        print(f"{prog}: warning: resuming {path} under a changed config: {'; '.join(changes)}", file=sys.stderr)


def info_path(cfg: Config, split: str) -> Path:
    """The info file of a split, as the data loader resolves it (relative names live in ``data.root``)."""
    info = Path(cfg.data.train_info if split == "train" else cfg.data.val_info)
    return info if info.is_absolute() else Path(cfg.data.root) / info


def _check_data(cfg: Config, config_arg: str) -> None:
    """Refuse a run whose training or validation info file is missing, saying how to make or point to it."""
    if cfg.data.format == "toy":
        return
    missing = [(split, info_path(cfg, split)) for split in ("train", "val") if not info_path(cfg, split).is_file()]
    if not missing:
        return
    splits = " and ".join(split for split, _ in missing)
    files = ("info files " if len(missing) > 1 else "info file ") + " and ".join(str(p) for _, p in missing)
    preset = synthetic_preset(cfg, config_arg)
    if preset is not None:
        commands = "; ".join(
            f"python training/make_synthetic.py --preset {preset} --num-scenes {SYNTHETIC_SPLITS[split][0]} "
            f"--seed {SYNTHETIC_SPLITS[split][1]} --out {cfg.data.root} --split {split}"
            for split, _ in missing
        )
        raise Refusal(
            f"no {splits} data: {files} not found. This config trains on synthetic scenes; make them "
            f"with: {commands}"
        )
    raise Refusal(
        f"no {splits} data: {files} not found (data.root is {cfg.data.root!r}). Write the "
        f"{cfg.data.format} info files there (mmdet3d v1.1 format), or point the run at them with --set "
        "data.root=DIR"
    )


def synthetic_preset(cfg: Config, config_arg: str) -> Optional[str]:
    """The ``make_synthetic.py`` preset that writes a config's data, or None for real data.

    The config files name their preset in a comment (``make_synthetic.py --preset sunrgbd-like``); the nearest
    file of the ``base`` chain that does wins. A data folder named ``synth...`` without one takes the data set's
    ``-like`` preset.
    """
    from sr3d_core.data.synthetic.presets import PRESETS  # only when data is missing

    try:
        files = config_files(config_arg)
    except (ConfigError, OSError):
        files = []
    for f in files:
        for name in re.findall(r"--preset\s+([\w-]+)", f.read_text()):
            if name in PRESETS and PRESETS[name].dataset == cfg.data.format:
                return name
    like = f"{cfg.data.format}-like"
    return like if Path(cfg.data.root).name.startswith("synth") and like in PRESETS else None


def _check_work_dir(work_dir: Path) -> None:
    """Create the work directory and make sure files can be written in it."""
    if work_dir.exists() and not work_dir.is_dir():
        raise Refusal(f"--work-dir {work_dir} exists and is not a folder")
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=work_dir):
            pass
    except OSError as e:
        raise Refusal(f"cannot write to --work-dir {work_dir}: {e.strerror or e}") from None


def _interrupted(trainer: Trainer, resumed_from: Optional[Path]) -> str:
    """The Ctrl-C message: where training stopped, and where ``--resume`` would continue from."""
    where = f"interrupted: stopped at step {trainer.step} of {trainer.total}"
    latest = trainer.work_dir / LATEST
    try:  # memory-mapped: only the step is read, however large the weights
        saved = int(torch.load(latest, map_location="cpu", weights_only=True, mmap=True)["train_state"]["step"])
    except Exception:  # noqa: BLE001 (no checkpoint, or none this message can read: say nothing about it)
        saved = None
    if saved is not None:
        return f"{where}; resume with --resume (continues from {latest}, step {saved})"
    if resumed_from is not None:
        return f"{where}, before its first checkpoint; resume with --resume {resumed_from} again"
    return (
        f"{where}, before the first checkpoint (train.ckpt_interval {trainer.cfg.train.ckpt_interval}): nothing "
        "to resume; run it again without --resume"
    )


if __name__ == "__main__":
    raise SystemExit(main())
