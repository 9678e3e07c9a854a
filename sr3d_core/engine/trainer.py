"""The training loop: one process or several under ``torchrun``, resumable to bit-identical weights.

A run writes into its work directory ``latest.pt`` (every ``train.ckpt_interval`` steps and at the end: weights,
optimizer, scheduler, step and every rank's RNG state), ``final.pt`` (weights only), ``train_log.csv`` (step,
epoch, lr, every term the criterion returns, seconds), ``val_log.csv`` and ``curves.png``; with several ranks also
``ddp_check.json``.

Determinism: the data of a step comes from ``sr3d_core.data.loader.StepDataset``, whose draws depend only on
(seed, epoch, position), and the global python / numpy / torch RNG states are saved in checkpoints as well, so a
resumed run continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional

import torch

from sr3d_core.config import Config
from sr3d_core.data.loader import StepDataset, step_loader
from sr3d_core.data.sources import SceneSource, build_source
from sr3d_core.engine.criterion import Criterion
from sr3d_core.engine.csvlog import CsvLog, plot_curves
from sr3d_core.engine.distributed import DistContext, parameter_digest
from sr3d_core.engine.rng import rng_state, seed_everything, set_rng_state
from sr3d_core.engine.schedule import make_optimizer, make_scheduler
from sr3d_core.model.checkpoint import load_checkpoint, make_checkpoint, save_atomic
from sr3d_core.model.network import build_network
from sr3d_core.preprocess import sparse_to

TRAIN_LOG = "train_log.csv"
VAL_LOG = "val_log.csv"


class Trainer:
    """Trains one experiment in a work directory.

    Building a trainer seeds the process and builds data, model, criterion, optimizer and schedule in a fixed
    order (the model's initial weights depend on it); ``resume`` then restores a checkpoint, ``fit`` runs.

    Args:
        cfg: The experiment.
        work_dir: Output directory (see the module docstring).
        device: ``auto``, ``cpu`` or ``cuda`` (under torchrun: each rank's local GPU).
        show_progress: tqdm bar on rank 0.
        dist: The process's place in a multi-process run (default: from torchrun's environment).

    Raises:
        ValueError: ``train.batch_size`` is not divisible by the number of processes.
        RuntimeError: Another process is training in ``work_dir`` (two would write the same checkpoints and logs).
    """

    def __init__(
        self,
        cfg: Config,
        work_dir: Path,
        device: str = "auto",
        show_progress: bool = True,
        dist: Optional[DistContext] = None,
    ) -> None:
        self.cfg = cfg
        self.work_dir = Path(work_dir)
        self.dist = dist or DistContext.from_env()
        self.device = self.dist.device(device)
        self.dist.init(self.device)
        if cfg.train.batch_size % self.dist.world:
            raise ValueError(
                f"train.batch_size {cfg.train.batch_size} is not divisible by the world size " f"{self.dist.world}"
            )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_work_dir(self.work_dir) if self.dist.is_main else None
        self.show_progress = show_progress
        self.train_log = CsvLog(self.work_dir / TRAIN_LOG)
        self.val_log = CsvLog(self.work_dir / VAL_LOG)

        seed_everything(cfg.train.seed)
        self.data = StepDataset.from_config(build_source(cfg, "train"), cfg, self.dist.rank, self.dist.world)
        ipe = self.data.iters_per_epoch
        self.total = cfg.train.max_iters if cfg.train.max_iters is not None else cfg.train.epochs * ipe
        self.model = build_network(cfg).to(self.device)
        self.criterion = Criterion(cfg)
        self.opt = make_optimizer(self.model, cfg.train)
        self.sched = make_scheduler(self.opt, cfg.train, ipe)
        self.step = 0
        # Training wall time before this process (from the checkpoint), so a resumed run logs its total time.
        self.seconds_before = 0.0
        self._fit_start: Optional[float] = None
        self._val_source: Optional[SceneSource] = None

    @property
    def iters_per_epoch(self) -> int:
        """Steps per epoch."""
        return self.data.iters_per_epoch

    def resume(self, path: Path) -> None:
        """Continue from a ``latest.pt``: weights, optimizer, schedule, step and this rank's RNG state.

        Log rows written after the checkpoint's step are dropped: the resumed run writes them again.
        """
        ckpt = load_checkpoint(path)
        self.model.load_state_dict(ckpt["model"])
        ts = ckpt["train_state"]
        self.opt.load_state_dict(ts["optimizer"])
        self.sched.load_state_dict(ts["scheduler"])
        self.step = int(ts["step"])
        self.seconds_before = float(ts.get("seconds", 0.0))  # absent in checkpoints of older versions
        states = ts["rng"]
        rank = self.dist.rank
        # A run resumed on fewer or more ranks than it was saved with starts the extra ranks from rank 0's state.
        set_rng_state(states[rank] if isinstance(states, list) and rank < len(states) else states[0])
        if self.dist.is_main:
            self.train_log.truncate(self.step)
            self.val_log.truncate(self.step)

    def save_checkpoint(self, path: Path) -> None:
        """Write the resume state to ``path`` (a collective call: every rank contributes its RNG state)."""
        states = self.dist.gather(rng_state())
        if self.dist.is_main:
            ts = {
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "step": self.step,
                "rng": states,
                "world_size": self.dist.world,
                "seconds": self.elapsed(),
            }
            save_atomic(make_checkpoint(self.cfg, self.model, ts), path)

    def elapsed(self) -> float:
        """Training wall time so far in seconds, over every process that worked on this run."""
        running = time.time() - self._fit_start if self._fit_start is not None else 0.0
        return self.seconds_before + running

    def fit(self, stop_after: Optional[int] = None, validate_at_end: bool = True) -> dict[str, Any]:
        """Train from the current step to the end of the schedule.

        Args:
            stop_after: Exit after this global step as if killed (for resume tests); the schedule is unchanged.
            validate_at_end: Run the validation pass after the last step (a caller that evaluates the final
                checkpoint itself, like the experiment grid, skips it).

        Returns:
            ``step``, the last step's loss terms and, after a final validation, ``mAP_0.25`` / ``mAP_0.5``.
        """
        cfg, dev, rank0 = self.cfg, self.device, self.dist.is_main
        net = self.dist.wrap(self.model, dev)  # after resume: DDP broadcasts rank 0's weights
        loader = step_loader(self.data, self.step, self.total, cfg.train.num_workers)
        bar = None
        if rank0 and self.show_progress:
            from tqdm import tqdm

            bar = tqdm(total=self.total, initial=self.step, desc="train", dynamic_ncols=True)
        self._fit_start = time.time()
        self.model.train()
        try:
            last = self._steps(net, loader, bar, stop_after)
        finally:  # also on Ctrl-C: the caller's message goes on a line of its own
            if bar is not None:
                bar.close()
        if self.step >= self.total:
            self.save_checkpoint(self.work_dir / "latest.pt")
            if rank0:
                save_atomic(make_checkpoint(cfg, self.model), self.work_dir / "final.pt")
            if validate_at_end:
                last.update(self.validate() or {})
        if self.dist.world > 1:
            self._check_ranks_agree()
        return {"step": self.step, **last}

    def _steps(self, net: torch.nn.Module, loader: Any, bar: Any, stop_after: Optional[int]) -> dict[str, Any]:
        """The optimizer steps of ``fit``; returns the last step's loss terms."""
        cfg, dev, rank0 = self.cfg, self.device, self.dist.is_main
        use_amp = cfg.train.amp and dev.type == "cuda"
        last: dict[str, Any] = {}
        for batch in loader:
            x = sparse_to(batch.x, dev)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
                out = net(x)
            losses = self.criterion(out, batch.gt_boxes, batch.gt_labels)
            self.opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if cfg.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip)
            self.opt.step()
            self.sched.step()
            self.step += 1
            step = self.step
            last = {k: float(v.detach()) for k, v in losses.items()}
            if bar is not None:
                bar.update(1)
                postfix = {"loss": f"{last['loss']:.3f}"}
                if "num_pos" in last:  # the criterion's positive count, when it reports one
                    postfix["pos"] = int(last["num_pos"])
                bar.set_postfix(postfix)
            if rank0 and (step % max(cfg.train.log_interval, 1) == 0 or step == self.total):
                self._log(last, self.elapsed())
            if cfg.train.val_interval and step % cfg.train.val_interval == 0 and step != self.total:
                self.validate()
            if cfg.train.ckpt_interval and step % cfg.train.ckpt_interval == 0:
                self.save_checkpoint(self.work_dir / "latest.pt")
            if stop_after is not None and step >= stop_after:
                self.save_checkpoint(self.work_dir / "latest.pt")
                break
        return last

    def _log(self, terms: dict[str, float], seconds: float) -> None:
        """One training-log row: whatever terms the criterion returned, in name order."""
        row = {"step": self.step, "epoch": self.step // self.iters_per_epoch, "lr": self.opt.param_groups[0]["lr"]}
        row.update((k, terms[k]) for k in sorted(terms))
        row["seconds"] = round(seconds, 2)
        self.train_log.append(row)

    def validate(self) -> Optional[dict[str, float]]:
        """Validation mAP on rank 0 (the others wait); appends to ``val_log.csv`` and redraws ``curves.png``.

        Returns:
            ``mAP_0.25`` and ``mAP_0.5`` on rank 0, None on the others.
        """
        metrics = None
        if self.dist.is_main:
            from sr3d_core.evaluation.detector_pass import evaluate_detector
            from sr3d_core.inference import Detector

            if self._val_source is None:
                self._val_source = build_source(self.cfg, "val")
            res = evaluate_detector(Detector(self.model, self.cfg, self.device), self._val_source)
            self.model.train()
            metrics = {k: v for k, v in res.metrics().items() if k in ("mAP_0.25", "mAP_0.5")}
            self.val_log.append({"step": self.step, **metrics})
            plot_curves(self.work_dir, TRAIN_LOG, VAL_LOG)
        self.dist.barrier()
        return metrics

    def _check_ranks_agree(self) -> None:
        """DDP must leave identical parameters on every rank; rank 0 records the digests in ``ddp_check.json``."""
        digests = self.dist.gather(parameter_digest(self.model))
        if self.dist.is_main:
            (self.work_dir / "ddp_check.json").write_text(json.dumps({"param_digests": digests}))
        if len(set(digests)) != 1:
            raise RuntimeError(f"DDP ranks diverged: parameter digests {digests}")
        self.dist.barrier()


LOCK_FILE = ".train.lock"


def _lock_work_dir(work_dir: Path) -> Any:
    """Hold an exclusive lock on ``work_dir`` for this process's life (the open file; closing it releases it).

    A second trainer on the same folder (a run started twice, a runner restarted while its old job still runs)
    would interleave checkpoints and log rows; it is refused instead.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): unguarded
        return None
    f = open(work_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise RuntimeError(
            f"another process (pid {holder}) is training in {work_dir}; stop it first (it resumes from latest.pt) "
            "or pick another work directory"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def work_dir_holder(work_dir: Path) -> Optional[int]:
    """The pid of the process training in ``work_dir`` now, or None when none is (or locks are unavailable)."""
    try:
        import fcntl
    except ImportError:
        return None
    path = Path(work_dir) / LOCK_FILE
    if not path.is_file():
        return None
    with open(path) as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = f.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return None


def train(
    cfg: Config,
    work_dir: Path,
    resume: Optional[Path] = None,
    device: str = "auto",
    stop_after: Optional[int] = None,
    show_progress: bool = True,
    validate_at_end: bool = True,
) -> dict[str, Any]:
    """Train an experiment (see ``Trainer``); return the final step and last metrics.

    Args:
        cfg: The experiment.
        work_dir: Output directory.
        resume: Checkpoint to resume from.
        device: ``auto``, ``cpu``, ``cuda``.
        stop_after: Exit after this global step as if killed; the schedule is unchanged.
        show_progress: tqdm bar on rank 0.
        validate_at_end: Run the validation pass after the last step.
    """
    trainer = Trainer(cfg, work_dir, device, show_progress)
    if resume is not None:
        trainer.resume(resume)
    return trainer.fit(stop_after, validate_at_end)


__all__ = ["Trainer", "train"]
