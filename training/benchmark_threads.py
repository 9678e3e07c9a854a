"""One thread against several, side by side: ``detect`` of a checkpoint, a training step, and a TR3D-size sparse
convolution layer (forward + backward), each timed at every thread count in turn, repetition after repetition, so
a busy machine slows every column alike.

    python training/benchmark_threads.py --frames 6 --steps 10 --reps 20
    python training/benchmark_threads.py --tr3d-checkpoint work_dirs/tr3d_sunrgbd.pt --points-dir data/.../points

Prints one table: per workload, the median milliseconds at each thread count and the median of the per-repetition
speed-ups over the first count; then, per workload, the share of its one-thread time spent inside the compiled
libraries' calls and the speed-up the thread counts could give at most if those calls scaled perfectly and
nothing else did (Amdahl's law: ``1 / ((1 - share) + share / threads)``), the ceiling set by the PyTorch and
Python work around the engine. ``sr3d-doctor`` says whether the compiled engine (which these numbers are about)
is active; ``SR3D_NATIVE=0`` times the pure-PyTorch paths instead. Set ``OMP_WAIT_POLICY=PASSIVE`` on a machine
where other processes hold the cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sr3d_core.runtime import keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]


def synthetic_frames(count: int, points: int, seed: int = 0) -> list[np.ndarray]:
    """Room-like clouds (floor, walls, a few boxes) of ``points`` float32 rows ``x, y, z, r, g, b``."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        n_floor, n_wall = points // 3, points // 3
        floor = np.c_[rng.uniform(0, 6, n_floor), rng.uniform(0, 5, n_floor), rng.normal(0, 0.005, n_floor)]
        wall = np.c_[rng.uniform(0, 6, n_wall), np.full(n_wall, 5.0), rng.uniform(0, 2.8, n_wall)]
        n_obj = points - n_floor - n_wall
        centres = rng.uniform([0.5, 0.5, 0.2], [5.5, 4.5, 1.0], (8, 3))
        objs = centres[rng.integers(0, 8, n_obj)] + rng.uniform(-0.4, 0.4, (n_obj, 3))
        xyz = np.concatenate([floor, wall, objs]).astype(np.float32)
        frames.append(np.c_[xyz, rng.uniform(0, 1, (points, 3)).astype(np.float32)])
    return frames


def load_frames(points_dir: Path, count: int, num_feats: int) -> list[np.ndarray]:
    """The first ``count`` ``.bin`` files of a points directory (float32 rows of ``num_feats``)."""
    files = sorted(points_dir.glob("*.bin"))[:count]
    if not files:
        raise SystemExit(f"no .bin files in {points_dir}")
    return [np.fromfile(f, np.float32).reshape(-1, num_feats) for f in files]


def detect_workload(
    checkpoint: Path, frames: list[np.ndarray], score_threshold: float | None = None
) -> Callable[[], None]:
    """One call: ``detect`` of every frame (at ``score_threshold``, or the checkpoint's own when None)."""
    from sr3d_core.inference import Detector

    det = Detector.from_checkpoint(str(checkpoint))
    if score_threshold is not None:
        det.score_threshold = score_threshold

    def run() -> None:
        for f in frames:
            det.detect(f)

    return run


def train_workload(config: str, steps: int) -> Callable[[], None]:
    """One call: ``steps`` training steps (forward, losses, backward, optimizer) of a config's model."""
    from sr3d_core.config import load_config
    from sr3d_core.data.loader import StepDataset
    from sr3d_core.data.sources import build_source
    from sr3d_core.engine.criterion import Criterion
    from sr3d_core.engine.schedule import make_optimizer
    from sr3d_core.model.network import build_network

    cfg = load_config(config, [])
    torch.manual_seed(cfg.train.seed)
    model, criterion = build_network(cfg), Criterion(cfg)
    opt = make_optimizer(model, cfg.train)
    data = StepDataset.from_config(build_source(cfg, "train"), cfg)
    batches = [data[i] for i in range(steps)]

    def run() -> None:
        for batch in batches:
            out = model(batch.x)
            losses = criterion(out, batch.gt_boxes, batch.gt_labels)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()

    return run


def layer_workload(frame: np.ndarray, voxel: float, channels: int) -> Callable[[], None]:
    """One call: a 3 x 3 x 3 submanifold convolution of ``channels`` in and out at ``voxel`` metres over a frame,
    forward and backward (the kernel map cached, as in a network)."""
    from sr3d_core.sparse import SparseConv3d, from_coords
    from sr3d_core.sparse.voxelize import voxelize_coords

    c = voxelize_coords([(torch.from_numpy(frame[:, :3]), torch.from_numpy(frame[:, 3:]))], voxel)[0]
    g = torch.Generator().manual_seed(0)
    x = from_coords(c, torch.randn(c.shape[0], channels, generator=g))[0]
    conv = SparseConv3d(channels, channels, 3, 1)
    x.feats.requires_grad_(True)

    def run() -> None:
        out = conv(x)
        out.feats.sum().backward()

    return run


class _TimedLibrary:
    """A compiled library whose function calls add their wall time to ``spent[0]`` (ctypes calls are opaque to
    Python's profilers, so the engine's share is measured at its boundary)."""

    def __init__(self, lib: object, spent: list[float]) -> None:
        self._lib, self._spent = lib, spent

    def __getattr__(self, name: str) -> object:
        fn = getattr(self._lib, name)
        if not callable(fn):
            return fn

        def timed(*args: object) -> object:
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self._spent[0] += time.perf_counter() - t0

        return timed


def engine_share(run: Callable[[], None], reps: int) -> float:
    """The share of ``run``'s one-thread wall time spent inside the compiled libraries' calls (median of ``reps``)."""
    from sr3d_core.geometry import native as geometry_native
    from sr3d_core.sparse import native as sparse_native

    libraries = [m.LIBRARY for m in (sparse_native, geometry_native) if m.LIBRARY.get() is not None]
    if not libraries:
        return float("nan")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    spent = [0.0]
    originals = [lib._lib for lib in libraries]
    shares = []
    try:
        for lib, orig in zip(libraries, originals):
            lib._lib = _TimedLibrary(orig, spent)
        for _ in range(reps):
            spent[0] = 0.0
            t0 = time.perf_counter()
            run()
            shares.append(spent[0] / (time.perf_counter() - t0))
    finally:
        for lib, orig in zip(libraries, originals):
            lib._lib = orig
        torch.set_num_threads(threads)
    return float(np.median(shares))


def main(argv: list[str] | None = None) -> int:
    """Time the workloads and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--checkpoint",
        type=Path,
        default=ROOT / "models" / "sr3d_synth_sunrgbd_real.pt",
        help="the model whose detect is timed (default: the shipped model)",
    )
    ap.add_argument(
        "--tr3d-checkpoint",
        type=Path,
        help="an imported TR3D checkpoint (sr3d-import-tr3d): its " "detect is timed too",
    )
    ap.add_argument(
        "--score-threshold",
        type=float,
        help="detect at this score threshold (the node's default: 0.3); default: the checkpoint's own (0.01 for "
        "evaluation, which leaves more boxes to NMS)",
    )
    ap.add_argument("--points-dir", type=Path, help="frames (.bin); default: synthetic room-like clouds")
    ap.add_argument("--num-feats", type=int, default=6)
    ap.add_argument("--points", type=int, default=50000, help="points per synthetic frame")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--config", default="sr3d_synth_scannet_small", help="the training step's config")
    ap.add_argument("--steps", type=int, default=5, help="training steps per repetition (0: none)")
    ap.add_argument("--layer-voxel", type=float, default=0.01, help="voxel size of the TR3D-size layer")
    ap.add_argument("--layer-channels", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args(argv)
    keep_freed_memory()
    frames = load_frames(a.points_dir, a.frames, a.num_feats) if a.points_dir else synthetic_frames(a.frames, a.points)
    workloads: dict[str, Callable[[], None]] = {}
    at = "" if a.score_threshold is None else f", threshold {a.score_threshold:g}"
    workloads[f"detect, {a.frames} frames ({a.checkpoint.name}{at})"] = detect_workload(
        a.checkpoint, frames, a.score_threshold
    )
    if a.tr3d_checkpoint:
        workloads[f"detect, {a.frames} frames (imported TR3D{at})"] = detect_workload(
            a.tr3d_checkpoint, frames, a.score_threshold
        )
    if a.steps:
        workloads[f"training step x{a.steps} ({a.config})"] = train_workload(a.config, a.steps)
    workloads[f"conv layer {a.layer_channels}->{a.layer_channels}, {a.layer_voxel * 100:g} cm, fwd+bwd"] = (
        layer_workload(frames[0], a.layer_voxel, a.layer_channels)
    )
    times = {(w, t): [] for w in workloads for t in a.threads}
    for rep in range(a.warmup + a.reps):
        for name, run in workloads.items():
            for t in a.threads:  # thread counts in turn, for every workload and repetition
                torch.set_num_threads(t)
                t0 = time.perf_counter()
                run()
                if rep >= a.warmup:
                    times[(name, t)].append((time.perf_counter() - t0) * 1e3)
    head = " | ".join(f"{t} thread{'s' * (t > 1)} ms" for t in a.threads)
    speed = " | ".join(f"x{t} vs {a.threads[0]}" for t in a.threads[1:])
    print(f"{a.reps} repetitions after {a.warmup} warm-up, thread counts alternating; medians")
    print(f"| workload | {head} | {speed} |")
    print("|---|" + "---|" * (2 * len(a.threads) - 1))
    for name in workloads:
        base = np.array(times[(name, a.threads[0])])
        cells = " | ".join(f"{np.median(times[(name, t)]):.1f}" for t in a.threads)
        ratios = " | ".join(f"{np.median(base / np.array(times[(name, t)])):.2f}x" for t in a.threads[1:])
        print(f"| {name} | {cells} | {ratios} |")
    bounds = " | ".join(f"at most, {t} threads" for t in a.threads[1:])
    print(f"\nThe engine's share of the one-thread time (median of {a.reps}) and the speed-up it allows")
    print(f"| workload | in compiled calls | {bounds} |")
    print("|---|---|" + "---|" * (len(a.threads) - 1))
    for name, run in workloads.items():
        p = engine_share(run, a.reps)
        cells = " | ".join(f"{1 / ((1 - p) + p / t):.2f}x" for t in a.threads[1:])
        print(f"| {name} | {100 * p:.0f} % | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
