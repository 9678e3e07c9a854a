"""Side-by-side timing and peak memory of the sparse backends ("torch", and "minkowski" where it imports).

Every measurement runs in its own subprocess, so that peak RSS (resource.getrusage ru_maxrss, minus the RSS just
before the measured work) is clean per measurement; on CUDA, torch.cuda.max_memory_allocated is reported instead.

Workloads:
  conv      50k uniform random points in a 1 m cube at 2 cm (~41k voxels), one 3x3x3 64->64 submanifold conv;
            "cached" = the kernel map exists before the timed call, "+map" = the map is built inside it.
  frame     TR3D backbone (MinkResNet34, channels capped at 128) + TR3D neck on a synthetic 50k-point
            single-view indoor frame, 1 cm voxels, 3 colour channels.
  room      the same network on a synthetic 200k-point room scan, 1 cm voxels.
For the networks every repetition voxelizes afresh, so all kernel maps are built inside the timed call (as per
frame in deployment). fwd = eval mode under no_grad; fwd+bwd = train mode, sum of both neck outputs backpropagated.

Synthetic scenes (`make_indoor`): a box room (floor, ceiling only for the scan, 4 walls) with furniture boxes
(bed, tables, cabinets, chairs as boxes) whose top and side faces are sampled; points are drawn uniformly by area
over the visible faces, with 3 mm Gaussian noise along each axis and random colours per surface. The single-view
frame keeps only the surfaces inside a 3.5 m x 3 m wedge in front of a virtual camera (no occlusion test), which
gives a voxel count typical of one RGB-D view; the scan keeps the whole room.

The arithmetic floor: the torch worker also counts the multiply-adds of the workload's convolutions (2 x pairs x
C_in x C_out per 3x3x3 or generative conv, from its kernel maps; x3 with both gradients), and the parent measures
this CPU's peak float32 rate (a compiled loop of independent 8-wide fused multiply-adds, one copy per thread).
Their quotient is the least time any implementation of the same arithmetic can take here (MinkowskiEngine's
convolutions do the same pairs), and "floor/ME" the least torch/ME time ratio this CPU allows.

Usage:
  OMP_NUM_THREADS=2 python training/benchmark_sparse.py [--threads 2] [--repeats 11] [--only conv|frame|room]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_indoor(n_points: int, kind: str, seed: int = 0):
    """Synthetic indoor point cloud (see the module docstring). Returns xyz (N, 3) metres, rgb (N, 3) in [0, 1]."""
    import torch

    g = torch.Generator().manual_seed(seed)
    room = (6.0, 5.0, 2.7)
    # (x0, y0, z0, dx, dy, dz) boxes: bed, two tables, cabinets, chairs.
    boxes = [
        (0.3, 0.3, 0.0, 2.0, 1.6, 0.55),
        (3.0, 1.0, 0.0, 1.4, 0.8, 0.75),
        (3.2, 3.5, 0.0, 1.0, 1.0, 0.72),
        (5.3, 0.2, 0.0, 0.5, 1.2, 1.9),
        (0.2, 4.3, 0.0, 1.5, 0.5, 1.0),
        (2.6, 1.2, 0.0, 0.45, 0.45, 0.9),
        (4.5, 1.3, 0.0, 0.45, 0.45, 0.9),
        (2.8, 3.6, 0.0, 0.45, 0.45, 0.9),
    ]
    faces = [
        (0, 0, 0, room[0], room[1], 0, "z"),
        (0, 0, 0, room[0], 0, room[2], "y"),
        (0, room[1], 0, room[0], 0, room[2], "y"),
        (0, 0, 0, 0, room[1], room[2], "x"),
        (room[0], 0, 0, 0, room[1], room[2], "x"),
    ]
    if kind == "room":
        faces.append((0, 0, room[2], room[0], room[1], 0, "z"))
    for x0, y0, z0, dx, dy, dz in boxes:
        faces += [
            (x0, y0, z0 + dz, dx, dy, 0, "z"),
            (x0, y0, z0, dx, 0, dz, "y"),
            (x0, y0 + dy, z0, dx, 0, dz, "y"),
            (x0, y0, z0, 0, dy, dz, "x"),
            (x0 + dx, y0, z0, 0, dy, dz, "x"),
        ]
    areas = torch.tensor([max(dx * dy, dx * dz, dy * dz) if n != "z" else dx * dy for _, _, _, dx, dy, dz, n in faces])
    pts, cols = [], []
    oversample = 4 if kind == "frame" else 1
    counts = torch.distributions.Multinomial(int(n_points * oversample), probs=areas / areas.sum()).sample()
    for (x0, y0, z0, dx, dy, dz, _), c in zip(faces, counts.long().tolist()):
        u = torch.rand(c, 3, generator=g)
        p = torch.tensor([x0, y0, z0]) + u * torch.tensor([dx, dy, dz])
        pts.append(p)
        cols.append(torch.rand(1, 3, generator=g).expand(c, 3) * 0.8 + 0.2 * torch.rand(c, 3, generator=g))
    xyz, rgb = torch.cat(pts), torch.cat(cols)
    if kind == "frame":
        # Wedge in front of a camera at (0.5, 2.5, 1.4) looking along +x: x within 3.5 m, |y - 2.5| <= 1.5 m.
        keep = (xyz[:, 0] > 0.5) & (xyz[:, 0] < 4.0) & ((xyz[:, 1] - 2.5).abs() <= 0.43 * (xyz[:, 0] - 0.5) + 0.2)
        xyz, rgb = xyz[keep], rgb[keep]
    idx = torch.randperm(xyz.shape[0], generator=g)[:n_points]
    xyz = xyz[idx] + 0.003 * torch.randn(idx.numel(), 3, generator=g)
    return xyz.float(), rgb[idx].float()


def _private_backbone_neck():
    """BENCHMARK-PRIVATE minimal copy of TR3D backbone + neck, used only if sr3d_core.model does not import."""
    from torch import nn

    from sr3d_core.sparse import (
        SparseBatchNorm,
        SparseConv3d,
        SparseGenerativeConvTranspose3d,
        SparseMaxPool3d,
        SparseReLU,
    )

    def cbr(i, o, k, s, relu=True):
        return nn.Sequential(SparseConv3d(i, o, k, s), SparseBatchNorm(o), *([SparseReLU()] if relu else []))

    class Block(nn.Module):
        def __init__(self, i, o, s):
            super().__init__()
            self.a, self.b = cbr(i, o, 3, s), cbr(o, o, 3, 1, False)
            self.sc = cbr(i, o, 1, s, False) if (s != 1 or i != o) else None
            self.relu = SparseReLU()

        def forward(self, x):
            return self.relu(self.b(self.a(x)) + (x if self.sc is None else self.sc(x)))

    class PrivateTR3DBackboneNeck(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.pool = cbr(3, 64, 3, 2), SparseMaxPool3d()
            cin, stages = 64, []
            for p, d in zip((64, 128, 128, 128), (3, 4, 6, 3)):
                stages.append(nn.Sequential(Block(cin, p, 2), *[Block(p, p, 1) for _ in range(d - 1)]))
                cin = p
            self.stages = nn.ModuleList(stages)
            self.up = nn.ModuleList(
                [
                    nn.Sequential(SparseGenerativeConvTranspose3d(128, 128, 3, 2), SparseBatchNorm(128), SparseReLU())
                    for _ in range(2)
                ]
            )
            self.lat = nn.ModuleList([cbr(128, 128, 3, 1) for _ in range(2)])
            self.out = nn.ModuleList([cbr(128, 128, 3, 1) for _ in range(2)])

        def forward(self, x):
            x = self.pool(self.stem(x))
            feats = []
            for s in self.stages:
                x = s(x)
                feats.append(x)
            x = feats[3]
            outs = []
            for i in (1, 0):
                x = self.lat[i](feats[i + 1] + self.up[i](x))
                outs.append(self.out[i](x))
            return outs[::-1]

    return PrivateTR3DBackboneNeck()


def build_network():
    """Backbone + neck from sr3d_core.model when available, else the benchmark-private copy."""
    from torch import nn

    try:
        from sr3d_core.model.backbone import MinkResNet
        from sr3d_core.model.neck import TR3DNeck
    except Exception as exc:  # noqa: BLE001 (any import failure falls back to the private copy)
        print(f"# sr3d_core.model unavailable ({exc}); using the benchmark-private backbone+neck", file=sys.stderr)
        return _private_backbone_neck(), "private"

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone, self.neck = MinkResNet(), TR3DNeck()

        def forward(self, x):
            return self.neck(self.backbone(x))

    return Net(), "sr3d_core.model"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _conv_gflop(run, backward: bool) -> float:
    """GFLOP of the sparse convolutions in ``run()`` on the torch backend: 2 x pairs x C_in x C_out each (every
    kernel-map pair is one multiply-add per channel pair), x3 with both gradients (input and weight)."""
    import torch

    from sr3d_core.sparse import torch_backend as tb

    flops = [0]
    inner = tb._sparse_conv

    def counting(feats, weight, kmap):
        flops[0] += 2 * sum(kmap.counts()) * weight.shape[1] * weight.shape[2]
        return inner(feats, weight, kmap)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # every conv (generative ones too) then goes through _sparse_conv
    tb._sparse_conv = counting
    try:
        run()
    finally:
        tb._sparse_conv = inner
        torch.set_num_threads(threads)
    return flops[0] * (3 if backward else 1) / 1e9


_PEAK_C = r"""
#include <stdio.h>
#include <time.h>
typedef float v8 __attribute__((vector_size(32)));
#define F(a) a = a * b + c;
int main(void) {
    v8 b = {1, 1, 1, 1, 1, 1, 1, 1}, c = {0}, a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b,
       a8 = b, a9 = b, a10 = b, a11 = b;
    const long n = 100000000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long k = 0; k < n; ++k) {
        F(a0) F(a1) F(a2) F(a3) F(a4) F(a5) F(a6) F(a7) F(a8) F(a9) F(a10) F(a11)
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7),
                         "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11), "+x"(b), "+x"(c));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    v8 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    printf("%f %f\n", n * 12 * 16.0 / ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9) / 1e9, s[0]);
    return 0;
}
"""


def fma_peak_gflops(threads: int) -> float | None:
    """This CPU's float32 multiply-add peak on ``threads`` cores (twelve independent 8-wide FMA chains per
    thread, one process per thread at once, the best of five 0.2 s runs), or None without a C compiler."""
    from sr3d_core.sparse.build_spec import compiler

    cc = compiler()
    if cc is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "peak.c"), os.path.join(tmp, "peak")
        with open(src, "w") as f:
            f.write(_PEAK_C)
        if (
            subprocess.run(
                [cc, "-O2", "-march=native", "-ffp-contract=fast", src, "-o", exe], capture_output=True
            ).returncode
            != 0
        ):
            return None
        best = 0.0
        for _ in range(5):  # a hardware constant: the best of a few short runs, whatever else the machine does
            procs = [subprocess.Popen([exe], stdout=subprocess.PIPE, text=True) for _ in range(threads)]
            best = max(best, sum(float(p.communicate()[0].split()[0]) for p in procs))
        return best


def worker(args) -> None:
    """One measurement in this process; prints a JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    from sr3d_core.sparse import SparseConv3d, voxelize

    dev = torch.device(args.device)
    torch.manual_seed(0)
    if args.case == "conv":
        g = torch.Generator().manual_seed(0)
        xyz = torch.rand(50000, 3, generator=g)
        pts = [(xyz.to(dev), torch.randn(50000, 64, generator=g).to(dev))]
        voxel, net, tag = 0.02, SparseConv3d(64, 64, 3, 1).to(dev), "conv"
    else:
        n = 50000 if args.case == "frame" else 200000
        xyz, rgb = make_indoor(n, args.case)
        pts = [(xyz.to(dev), rgb.to(dev))]
        voxel = 0.01
        net, tag = build_network()
        net = net.to(dev)
    backward = args.mode == "fwdbwd"
    net.train(backward)

    def make_input():
        x, _ = voxelize(pts, voxel, seed=0, backend=args.backend)
        if backward:
            x = x.replace(x.feats.detach().requires_grad_(True))
        return x

    x_cached = make_input()

    def step(x):
        with torch.set_grad_enabled(backward):
            out = net(x)
            outs = out if isinstance(out, list) else [out]
            if backward:
                sum(o.feats.sum() for o in outs).backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return outs

    # Resting memory before any op ran: the peak below then includes the kernel maps and every transient
    # buffer (ru_maxrss is a process-lifetime high-water mark, so the warm-up counts too; it is the same work).
    base_rss = _rss_bytes()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    outs = step(make_input())  # warm-up (also builds the cached map for the "cached" variant below)
    step(x_cached)
    n_vox = len(x_cached)
    gflop = _conv_gflop(lambda: step(make_input()), backward) if args.backend == "torch" else None
    times = []
    for _ in range(args.repeats):
        x = x_cached if args.map == "cached" else make_input()
        t0 = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - t0)
        del x
    peak = (
        torch.cuda.max_memory_allocated()
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss
    )
    print(
        json.dumps(
            {
                "times": times,
                "peak_bytes": peak,
                "voxels": n_vox,
                "net": tag,
                "out_voxels": [len(o) for o in outs],
                "gflop": gflop,
            }
        )
    )


def run_one(backend, case, mode, map_kind, args) -> dict | None:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--backend",
        backend,
        "--case",
        case,
        "--mode",
        mode,
        "--map",
        map_kind,
        "--repeats",
        str(args.repeats if case == "conv" else args.net_repeats),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if r.returncode != 0:
        print(f"# {backend} {case} {mode} {map_kind} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backend", default="torch")
    p.add_argument("--case", default="conv", choices=["conv", "frame", "room"])
    p.add_argument("--mode", default="fwd", choices=["fwd", "fwdbwd"])
    p.add_argument("--map", default="cached", choices=["cached", "build"])
    p.add_argument("--repeats", type=int, default=11, help="repetitions of the single-conv workload")
    p.add_argument("--net-repeats", type=int, default=5, help="repetitions of the network workloads")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", default=None, choices=["conv", "frame", "room"])
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    from sr3d_core.sparse import available_backends

    backends = available_backends()
    peak = fma_peak_gflops(args.threads) if args.device == "cpu" else None
    print(
        f"# backends: {backends}; threads {args.threads}; device {args.device}; float32 FMA peak "
        + (f"{peak:.1f} GFLOP/s" if peak else "not measured")
    )
    rows = []
    cases = [("conv", m, k) for m in ("fwd", "fwdbwd") for k in ("cached", "build")]
    cases += [(c, m, "build") for c in ("frame", "room") for m in ("fwd", "fwdbwd")]
    if args.only:
        cases = [c for c in cases if c[0] == args.only]
    header = (
        "| workload | mode | map | voxels | "
        + " | ".join(f"{b} median (min) ms | {b} peak MB" for b in backends)
        + (" | torch/ME time | torch/ME mem" if len(backends) > 1 else "")
    )
    header += " | conv GFLOP | floor ms at peak" + (" | floor/ME |" if len(backends) > 1 else " |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for case, mode, map_kind in cases:
        res = {b: run_one(b, case, mode, map_kind, args) for b in backends}
        cells, vox = [], ""
        for b in backends:
            r = res[b]
            if r is None:
                cells += ["failed", "-"]
                continue
            vox = str(r["voxels"])
            cells += [
                f"{statistics.median(r['times']) * 1e3:.1f} ({min(r['times']) * 1e3:.1f})",
                f"{r['peak_bytes'] / 2**20:.0f}",
            ]
        line = f"| {case} | {mode} | {'cached' if map_kind == 'cached' else '+map'} | {vox} | " + " | ".join(cells)
        both = len(backends) > 1 and all(res[b] for b in backends)
        if both:
            t, m = res["torch"], res["minkowski"]
            line += (
                f" | {statistics.median(t['times']) / statistics.median(m['times']):.2f} | "
                f"{t['peak_bytes'] / max(m['peak_bytes'], 1):.2f}"
            )
        elif len(backends) > 1:
            line += " | - | -"
        gflop = (res.get("torch") or {}).get("gflop")
        floor_ms = gflop / peak * 1e3 if gflop and peak else None
        line += f" | {gflop:.2f}" if gflop else " | -"
        line += f" | {floor_ms:.1f}" if floor_ms else " | -"
        if len(backends) > 1:
            line += (
                f" | {floor_ms / (statistics.median(res['minkowski']['times']) * 1e3):.2f}"
                if floor_ms and res.get("minkowski")
                else " | -"
            )
        print(line + " |", flush=True)
        rows.append((case, mode, map_kind, res))


if __name__ == "__main__":
    main()
