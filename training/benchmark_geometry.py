"""Time the box geometry kernels: pairwise 3D IoU (rotated and axis-aligned) and BEV NMS.

Usage::

    python training/benchmark_geometry.py [--device cpu|cuda] [--repeats 10] [--threads N]

Prints one table row per case with the median and minimum wall time over the repeats (after one warm-up run).
The scene is indoor-like: centres uniform in a 10 m x 10 m x 3 m room, extents 0.2-2 m, yaw uniform, so most box
pairs are disjoint (as in evaluation). One extra row times the worst case, where every pair overlaps and has to be
clipped. NMS boxes are clustered around 200 objects (as detector output is), with 10 classes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

from sr3d_core.geometry import axis_aligned_iou_3d, nms_bev, rotated_iou_3d


def random_boxes(n: int, generator: torch.Generator, room: float = 10.0) -> torch.Tensor:
    """``(n, 7)`` float32 boxes spread over a ``room x room x 3`` m space."""
    u = torch.rand(n, 7, generator=generator)
    centre = u[:, :3] * torch.tensor([room, room, 3.0])
    size = 0.2 + 1.8 * u[:, 3:6]
    yaw = (u[:, 6:7] * 2 - 1) * torch.pi
    return torch.cat([centre, size, yaw], dim=1)


def clustered_boxes(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detector-like output: ``n`` jittered copies of 200 objects, with scores and 10 class labels."""
    objects = random_boxes(200, generator)
    pick = torch.randint(0, 200, (n,), generator=generator)
    jitter = torch.randn(n, 7, generator=generator) * torch.tensor([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.1])
    boxes = objects[pick] + jitter
    boxes[:, 3:6] = boxes[:, 3:6].clamp(min=0.05)
    scores = torch.rand(n, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return boxes, scores, labels


def time_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, float]:
    """Median and minimum milliseconds of ``fn`` over ``repeats`` runs after one warm-up."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def main() -> None:
    """Parse arguments, run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per case (default: 10)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)

    a, b = random_boxes(1000, g).to(device), random_boxes(100, g).to(device)
    dense_a = random_boxes(1000, g, room=0.3).to(device)  # every pair overlaps
    dense_b = random_boxes(100, g, room=0.3).to(device)
    nb, ns, nl = (x.to(device) for x in clustered_boxes(5000, g))

    cases: list[tuple[str, Callable[[], object]]] = [
        ("rotated 3D IoU, 1000 x 100 pairwise", lambda: rotated_iou_3d(a, b)),
        ("rotated 3D IoU, 1000 x 100, all overlapping", lambda: rotated_iou_3d(dense_a, dense_b)),
        ("axis-aligned 3D IoU, 1000 x 100 pairwise", lambda: axis_aligned_iou_3d(a, b)),
        ("NMS rotated BEV, 5000 boxes, 10 classes", lambda: nms_bev(nb, ns, nl, iou_threshold=0.5)),
        ("NMS axis-aligned BEV, 5000 boxes, 10 classes", lambda: nms_bev(nb, ns, nl, iou_threshold=0.5, rotated=False)),
    ]
    print(f"device: {device}   torch {torch.__version__}   threads: {torch.get_num_threads()}", end="   ")
    print(f"repeats: {args.repeats}")
    print(f"{'case':<48} {'median ms':>10} {'min ms':>10}")
    print("-" * 70)
    with torch.no_grad():
        for name, fn in cases:
            med, best = time_ms(fn, args.repeats, device)
            print(f"{name:<48} {med:>10.2f} {best:>10.2f}")
    kept = nms_bev(nb, ns, nl, iou_threshold=0.5)
    print(f"(NMS rotated keeps {len(kept)} of {len(nb)} boxes)")


if __name__ == "__main__":
    main()
