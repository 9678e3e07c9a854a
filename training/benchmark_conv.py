"""One sparse convolution, forward + backward, under each way the torch backend can run it, side by side.

    python training/benchmark_conv.py                      # one thread, every width, two voxel sizes
    python training/benchmark_conv.py --channels 32 64 --voxel 0.02 --repeats 9

The input is the synthetic 50k-point indoor frame of ``benchmark_sparse.py``, voxelized at ``--voxel`` (so the
neighbour tables have the fill and locality of a real frame); every row is one 3x3x3 submanifold convolution
C -> C on it, its kernel map built beforehand (a network builds each map once and shares it). The algorithms
(``torch_backend.set_conv_algorithm``) take turns repetition by repetition, so a busy machine slows them alike:

  gather   all 27 neighbours of every row gathered into one block, one GEMM
  offsets  one GEMM per kernel offset (dense or by pairs)
  native   the compiled fused gather-GEMM (float32 CPU, single-threaded)

Printed: the median ms of forward + input and weight gradients, and the arithmetic rate over the existing pairs
(3 x 2 x pairs x C^2 flops per repetition); ``auto`` picks, at one thread, ``native`` up to 256 channels.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from benchmark_sparse import make_indoor  # a sibling script: python puts this script's folder first

from sr3d_core.sparse import SparseConv3d, native, voxelize
from sr3d_core.sparse import torch_backend as tb

ALGORITHMS = ("gather", "offsets", "native")


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--voxel", type=float, nargs="+", default=[0.02, 0.04], help="voxel sizes in metres")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    algorithms = [n for n in ALGORITHMS if n != "native" or native.available(torch.zeros(1))]
    xyz, rgb = make_indoor(50_000, "frame")
    print(
        f"{a.threads} thread(s), {a.repeats} repetitions, median ms of forward + backward "
        f"(GFLOP/s over the existing pairs)"
    )
    print("| voxels | fill | channels | " + " | ".join(algorithms) + " |")
    print("|---|---|---|" + "---|" * len(algorithms))
    for voxel in a.voxel:
        x, _ = voxelize([(xyz, rgb)], voxel, seed=0)
        for c in a.channels:
            torch.manual_seed(0)
            conv = SparseConv3d(c, c, 3, 1)
            feats = torch.randn(len(x), c, requires_grad=True)
            xin = x.replace(feats)
            conv(xin)  # builds and caches the kernel map
            kmap = next(iter(xin.manager._maps.values()))
            pairs = sum(kmap.counts())
            grad = torch.randn(len(x), c)
            times: dict[str, list[float]] = {n: [] for n in algorithms}
            for _ in range(a.repeats):
                for name in algorithms:
                    tb.set_conv_algorithm(name)
                    t = time.perf_counter()
                    conv(xin).feats.backward(grad)
                    times[name].append(time.perf_counter() - t)
            tb.set_conv_algorithm("auto")
            flops = 3 * 2 * pairs * c * c
            cells = [
                f"{statistics.median(times[n]) * 1e3:.1f} ({flops / statistics.median(times[n]) / 1e9:.0f})"
                for n in algorithms
            ]
            print(f"| {len(x)} | {pairs / (27 * len(x)):.2f} | {c} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
