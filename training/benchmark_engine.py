"""The sparse engine of this tree against the same code at another git revision, side by side in one run.

    python training/benchmark_engine.py --ref 2ef1b20                 # every workload, one thread
    python training/benchmark_engine.py --ref 2ef1b20 --workloads train_small detect --threads 1 2

Each side runs in its own process with its own checkout first on ``PYTHONPATH`` (the revision is exported to a temporary
folder with ``git archive``); the parent alternates them, one iteration of A then one of B, so a busy machine slows
both alike. Both sides see the same inputs (same seeds, same data).

Workloads:
  train_small  one training step (forward, assignment + losses, backward, AdamW) of ``--small-config``
               (default synth_sunrgbd_small, batch 4), on the training split's batches; each step wraps its
               batch's voxels in a new sparse tensor, so its kernel maps are built in the step (as in training)
  train_full   the same for the full TR3D ScanNet model (``--full-config``, tr3d_scannet) on scannet-like scenes,
               ``--full-batch`` scenes per step (default 2)
  detect       ``Detector.detect`` of ``--checkpoint`` on the stored 50k-point frames at score threshold 0.3
               (the node's default), eval mode

``--clock cpu`` times each iteration by the process's CPU time instead of the wall clock: on a shared virtual
machine the wall clock also counts the time the process waits for its core (which swings one-thread times by
±20 % here), CPU time does not. It is only meaningful at one thread (at several it sums the threads' time).

Printed per workload and thread count: the median and p90 ms of each side, the speed-up of the medians and the
median of the per-iteration ratios (with its quartiles: iterations are paired, A then B); then, from
``torch.profiler`` over a few iterations of each side, the share of the time spent in GEMMs (aten::mm / addmm and
the compiled fused convolution): the closer to 100 %, the closer the engine is to this CPU's arithmetic limit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# GEMM arithmetic: torch's matrix products, plus the compiled fused convolution's profiler events where the
# checkout has them (sr3d_core.sparse.native.CONV_GEMM_EVENTS).
GEMM_OPS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm")


# ----------------------------------------------------------------------------------------------- worker side
def _step_batches(cfg, count: int) -> list:
    """The first ``count`` training batches of a config."""
    from sr3d_core.data.loader import StepDataset
    from sr3d_core.data.sources import build_source

    data = StepDataset.from_config(build_source(cfg, "train"), cfg)
    return [data[i] for i in range(count)]


def _train_iteration(config: str, data_root: str | None, batch_size: int | None = None):
    """One training step per call, cycling over a fixed set of batches."""
    import torch

    from sr3d_core.config import load_config
    from sr3d_core.engine.criterion import Criterion
    from sr3d_core.engine.schedule import make_optimizer
    from sr3d_core.model.network import build_network
    from sr3d_core.sparse import from_coords

    overrides = [f"data.root={data_root}"] if data_root else []
    overrides += [f"train.batch_size={batch_size}"] if batch_size else []
    cfg = load_config(config, overrides)
    torch.manual_seed(0)
    model = build_network(cfg).train()
    criterion = Criterion(cfg)
    opt = make_optimizer(model, cfg.train)  # the optimizer training uses
    batches = _step_batches(cfg, 8)
    state = {"i": 0}

    def run() -> None:
        b = batches[state["i"] % len(batches)]
        state["i"] += 1
        # A new tensor (new coordinate manager) every step: kernel maps are built inside the step, as in training,
        # instead of being served from the cache of the batch's previous visit.
        x, _ = from_coords(b.x.coords, b.x.feats, batch_size=b.x.batch_size)
        out = model(x)
        losses = criterion(out, b.gt_boxes, b.gt_labels)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()

    return run


def _detect_iteration(checkpoint: str, points_dir: str):
    """One ``Detector.detect`` per call, cycling over stored frames."""
    from sr3d_core.inference import Detector

    det = Detector.from_checkpoint(checkpoint, "cpu")
    det.score_threshold = 0.3
    files = sorted(Path(points_dir).glob("*.bin"))[:10]
    frames = [np.fromfile(f, np.float32).reshape(-1, 6) for f in files]
    state = {"i": 0}

    def run() -> None:
        det.detect(frames[state["i"] % len(frames)])
        state["i"] += 1

    return run


def worker(a: argparse.Namespace) -> None:
    """Prepare one workload, then time one iteration per ``go`` line on stdin; ``profile`` reports GEMM share."""
    # The side's checkout is first on PYTHONPATH (Side sets it), so its sr3d_core is the one imported here.
    os.chdir(REPO)  # configs' relative data roots resolve against the working tree's data
    import torch

    torch.set_num_threads(a.threads)
    if a.workload == "detect":
        run = _detect_iteration(a.checkpoint, a.points_dir)
        ctx = torch.no_grad
    else:
        small = a.workload == "train_small"
        run = _train_iteration(
            a.small_config if small else a.full_config, None if small else a.data_root, None if small else a.full_batch
        )
        ctx = torch.enable_grad
    with ctx():
        for _ in range(a.warmup):
            run()
        clock = time.process_time if a.clock == "cpu" else time.perf_counter
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "go":
                t = clock()
                run()
                print(f"{(clock() - t) * 1e3:.3f}", flush=True)
            elif line.strip() == "profile":
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CPU]) as p:
                    for _ in range(3):
                        run()
                from sr3d_core.sparse.native import CONV_GEMM_EVENTS

                gemm_ops = GEMM_OPS + tuple(CONV_GEMM_EVENTS)
                events = p.key_averages()
                total = sum(e.self_cpu_time_total for e in events)
                gemm = sum(e.self_cpu_time_total for e in events if e.key in gemm_ops)
                print(json.dumps({"gemm_share": gemm / max(total, 1)}), flush=True)
            else:
                break


# ----------------------------------------------------------------------------------------------- parent side
def export_ref(ref: str, dest: Path) -> Path:
    """Write the tree of ``ref`` into ``dest`` (git archive) and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    if (dest / "sr3d_core" / "sparse" / "build_spec.py").is_file():
        # A tree whose compiled libraries are built at install: build them, or it would time its PyTorch fallback.
        print(f"building {ref}'s compiled libraries ...", flush=True)
        built = subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=dest, capture_output=True, text=True
        )
        # setup.py only warns when a library does not build (the package still installs): check it is there.
        if built.returncode or not any((dest / "sr3d_core" / "sparse").glob("libsr3d_sparse*")):
            raise SystemExit(f"could not build {ref}'s compiled libraries:\n{built.stdout}{built.stderr}")
    return dest


class Side:
    """One worker process (a checkout, a workload, a thread count)."""

    def __init__(self, name: str, root: Path, workload: str, threads: int, a: argparse.Namespace) -> None:
        self.name = name
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--root",
            str(root),
            "--workload",
            workload,
            "--threads",
            str(threads),
            "--warmup",
            str(a.warmup),
            "--small-config",
            a.small_config,
            "--full-config",
            a.full_config,
            "--full-batch",
            str(a.full_batch),
            "--checkpoint",
            a.checkpoint,
            "--points-dir",
            a.points_dir,
            "--clock",
            a.clock,
        ]
        if a.data_root:
            cmd += ["--data-root", a.data_root]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(root))
        if a.malloc == "keep":  # what sr3d_core.runtime.keep_freed_memory() sets, for both sides alike
            env.update(
                MALLOC_MMAP_THRESHOLD_=str(32 << 20), MALLOC_TRIM_THRESHOLD_=str(1 << 30), MALLOC_TOP_PAD_=str(64 << 20)
            )
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.times: list[float] = []

    def wait_ready(self) -> None:
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"{self.name}: worker failed to start (got {line!r})")

    def ask(self, what: str) -> str:
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: worker died")
        return line.strip()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="git revision to compare against (required unless --worker)")
    ap.add_argument(
        "--workloads",
        nargs="+",
        default=["train_small", "detect", "train_full"],
        choices=["train_small", "train_full", "detect"],
    )
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--small-config", default="synth_sunrgbd_small")
    ap.add_argument("--full-config", default="tr3d_scannet")
    ap.add_argument("--data-root", default="data/synth_scannet", help="data root of the full config's scenes")
    ap.add_argument("--full-batch", type=int, default=2, help="batch size of the full model's steps")
    ap.add_argument("--checkpoint", default="models/sr3d_synth_sunrgbd_real.pt")
    ap.add_argument("--points-dir", default="data/synth_sunrgbd/points")
    ap.add_argument("--no-profile", action="store_true", help="skip the GEMM-share measurement")
    ap.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="wall clock, or process CPU time (one thread only)"
    )
    ap.add_argument(
        "--malloc",
        choices=["default", "keep"],
        default="default",
        help="glibc allocator settings of both sides: as is, or keeping freed memory",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        a.threads = a.threads[0]
        worker(a)
        return 0
    if not a.ref:
        ap.error("--ref is required")
    if a.clock == "cpu" and any(t != 1 for t in a.threads):
        ap.error("--clock cpu measures one thread only (at several it sums the threads' time)")
    with tempfile.TemporaryDirectory() as tmp:
        old_root = export_ref(a.ref, Path(tmp) / "ref")
        print(
            f"this tree ({REPO}) vs {a.ref}; {a.iterations} iterations each after {a.warmup} warm-up, "
            f"alternating; allocator: {a.malloc}; clock: {a.clock}; {time.strftime('%Y-%m-%d')}"
        )
        print(
            "| workload | threads | ref median ms | ref p90 | this median ms | this p90 | speed-up | "
            "paired ref / this (quartiles) | GEMM share ref → this |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for workload in a.workloads:
            for threads in a.threads:
                sides = [Side(a.ref, old_root, workload, threads, a), Side("this", REPO, workload, threads, a)]
                for s in sides:
                    s.wait_ready()
                for _ in range(a.iterations):
                    for s in sides:
                        s.times.append(float(s.ask("go")))
                shares = ["–", "–"]
                if not a.no_profile:
                    shares = [f"{100 * json.loads(s.ask('profile'))['gemm_share']:.0f} %" for s in sides]
                for s in sides:
                    s.close()
                (ref_t, new_t) = (np.asarray(s.times) for s in sides)
                q1, q2, q3 = np.percentile(ref_t / new_t, [25, 50, 75])
                print(
                    f"| {workload} | {threads} | {np.median(ref_t):.1f} | {np.percentile(ref_t, 90):.1f} | "
                    f"{np.median(new_t):.1f} | {np.percentile(new_t, 90):.1f} | "
                    f"{np.median(ref_t) / np.median(new_t):.2f}x | {q2:.3f} ({q1:.3f}–{q3:.3f}) | "
                    f"{shares[0]} → {shares[1]} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
