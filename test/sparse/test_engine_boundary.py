"""The compiled engine's boundary and build: every entry point refuses a bad argument with a clear error, results do
not depend on the thread count or the instruction set's dispatch beyond rounding, and a fresh build is used as is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from sr3d_core.geometry import native as gnative
from sr3d_core.sparse import extension, native
from sr3d_core.sparse.coords import kernel_offsets, offset_key, pack
from sr3d_ros import native_records

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (native.available(torch.zeros(1)) and gnative.available() and native_records.available()),
    reason="compiled engine not built",
)


def _keys(n: int = 3000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(-12, 12, (n, 4), generator=g)
    a[:, 0] = torch.randint(0, 2, (n,), generator=g)
    return torch.unique(pack(a))


DELTAS = [offset_key(*o) for o in kernel_offsets(3, 1)]


def _case() -> dict[str, Any]:
    keys = _keys()
    n = keys.numel()
    pairs = native.kernel_pairs(keys, keys, DELTAS, True)
    return {
        "keys": keys,
        "n": n,
        "pairs": pairs,
        "x": torch.randn(n, 16),
        "w": torch.randn(27, 16, 16),
        "g": torch.randn(n, 16),
        "boxes": torch.rand(6, 7, dtype=torch.float64) + 0.1,
    }


def _noncontiguous(t: torch.Tensor) -> torch.Tensor:
    """The same values, not contiguous (a strided view), or 2-D for a 1-D tensor's column."""
    if t.dim() == 1:
        return torch.stack([t, t], 1)[:, 0]
    return t.t().contiguous().t() if t.shape[0] > 1 and t.shape[-1] > 1 else t[..., None].expand(*t.shape, 2)[..., 0]


# Every entry point of the three libraries (through its binding), with one bad argument each: (name, call, error).
BAD_CALLS: list[tuple[str, Callable[[dict], Any], type]] = [
    ("kernel_pairs", lambda c: native.kernel_pairs(c["keys"].int(), c["keys"], DELTAS, True), TypeError),
    (
        "kernel_pairs_down",
        lambda c: native.kernel_pairs_down(c["keys"], c["keys"][:10], c["keys"][:5], 1, 16),
        ValueError,
    ),
    (
        "kernel_pairs_pack (via kernel_pairs)",
        lambda c: native.kernel_pairs(c["keys"], c["keys"], DELTAS[:26], False),
        ValueError,
    ),
    (
        "pairs_to_table",
        lambda c: native.pairs_to_table((c["pairs"][0], c["pairs"][1].float(), c["pairs"][2]), c["n"], c["n"]),
        TypeError,
    ),
    (
        "transpose_map",
        lambda c: native.transpose_map(_noncontiguous(torch.zeros(27, 4, dtype=torch.long)), 4),
        ValueError,
    ),
    ("pair_list", lambda c: native.pair_list(torch.full((27, 4), 9, dtype=torch.long), 4), ValueError),
    ("unique_pick", lambda c: native.unique_pick(c["keys"], c["keys"][:-1], 16), ValueError),
    ("voxel_keys", lambda c: native.voxel_keys([torch.zeros(4, 3, dtype=torch.float64)], 0.1, 16, 1000), TypeError),
    ("conv_forward", lambda c: native.conv_forward(c["x"][:-1], c["pairs"], c["n"], c["w"]), ValueError),
    ("conv_forward (device)", lambda c: native.conv_forward(c["x"].to("meta"), c["pairs"], c["n"], c["w"]), ValueError),
    ("conv_input_grad", lambda c: native.conv_input_grad(c["g"], c["pairs"], c["n"], c["w"].double()), TypeError),
    ("conv_weight_grad", lambda c: native.conv_weight_grad(_noncontiguous(c["x"]), c["pairs"], c["g"]), ValueError),
    (
        "conv_weight_grad (rows)",
        lambda c: native.conv_weight_grad(c["x"], (c["pairs"][0], c["pairs"][1] + c["n"], c["pairs"][2]), c["g"]),
        ValueError,
    ),
    ("max_pool", lambda c: native.max_pool(c["x"], torch.full((c["n"],), c["n"], dtype=torch.long), 3), ValueError),
    ("max_pool_grad", lambda c: native.max_pool_grad(c["g"], torch.zeros(c["n"], 16, dtype=torch.int64), 4), TypeError),
    ("rotated_iou_bev", lambda c: gnative.rotated_iou_bev(c["boxes"], c["boxes"][:, :6]), ValueError),
    ("nms_rotated_bev", lambda c: gnative.nms_rotated_bev(c["boxes"], torch.zeros(6), 0.5), TypeError),
    ("convex_clip", lambda c: gnative.convex_clip(torch.zeros(3, 9, 2), torch.zeros(3, 4, 2), 1e-7), ValueError),
    (
        "decode_records",
        lambda c: native_records.decode_records(
            np.zeros(64, np.uint8), 4, 16, 64, np.array([0, 7]), 2, (0, 4, 8), -1, (2, 1, 0), 1 / 255, None
        ),
        ValueError,
    ),
    (
        "decode_records (dtype)",
        lambda c: native_records.decode_records(
            np.zeros(64, np.float32), 4, 16, 64, None, 2, (0, 4, 8), -1, (2, 1, 0), 1 / 255, None
        ),
        TypeError,
    ),
]


@pytest.mark.parametrize("name,call,error", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_every_entry_point_refuses_a_bad_argument(name, call, error):
    with pytest.raises(error, match=r"\w+: "):
        call(_case())


def _corners(n: int, g: torch.Generator) -> torch.Tensor:
    """``(n, 4, 2)`` float64 counter-clockwise corners of random rotated rectangles."""
    centre = torch.rand(n, 1, 2, generator=g, dtype=torch.float64)
    half = 0.05 + 0.5 * torch.rand(n, 1, 2, generator=g, dtype=torch.float64)
    theta = 3.2 * torch.rand(n, generator=g, dtype=torch.float64)
    unit = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    local = unit * half
    cos, sin = theta.cos()[:, None], theta.sin()[:, None]
    x, y = local[..., 0], local[..., 1]
    return centre + torch.stack([cos * x - sin * y, sin * x + cos * y], -1)


def test_inconsistent_inputs_are_refused_before_memory_is_touched():
    """Arguments of the right types whose contents do not fit together: each is refused with an error that names
    the function, where unchecked they would read or write past a buffer (or shift by 64 bits or more)."""
    from sr3d_core.sparse.coords import AXIS_BITS, COORD_LIMIT

    c = _case()
    starts, rows_in, rows_out = (t.clone() for t in c["pairs"])
    n = c["n"]
    far = starts.clone()
    far[-1] += 50  # the last offset's pairs would run 50 rows past the lists
    with pytest.raises(ValueError, match="pairs_to_table: .*starts"):
        native.pairs_to_table((far, rows_in, rows_out), n, n)
    bad_in = rows_in.clone()
    bad_in[3] = n  # a table entry no input row has
    with pytest.raises(ValueError, match="pairs_to_table: .*row"):
        native.pairs_to_table((starts, bad_in, rows_out), n, n)

    # 200 inputs that all claim the first child position of one parent: one offset would get 200 pairs from a
    # range of one parent (a 27-slot scratch segment at one parent).
    parent_key = c["keys"][:1]
    children = torch.arange(200, dtype=torch.int64) << (3 * AXIS_BITS + 2)  # distinct, ascending, position 0
    for threads in (1, 2):
        was = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with extension.parallel_thresholds(0.0):
                with pytest.raises(ValueError, match="kernel_pairs_down: .*children"):
                    native.kernel_pairs_down(children, parent_key, torch.zeros(200, dtype=torch.int64), 1, AXIS_BITS)
        finally:
            torch.set_num_threads(was)

    cloud = torch.zeros(2, 6)
    with pytest.raises(ValueError, match="voxel_keys: .*adjacent"):
        native.voxel_keys([cloud[:1, ::2]], 0.1, AXIS_BITS, COORD_LIMIT)  # a 1-row view whose columns skip
    for bits, limit in ((0, 10), (AXIS_BITS, 1 << AXIS_BITS), (64, 10)):
        with pytest.raises(ValueError, match="voxel_keys: "):
            native.voxel_keys([cloud[:, :3]], 0.1, bits, limit)
    for bits in (0, 22, 70):
        with pytest.raises(ValueError, match="unique_pick: .*axis_bits"):
            native.unique_pick(c["keys"], c["keys"], bits)
    with pytest.raises(ValueError, match="kernel_pairs_down: .*stride"):
        native.kernel_pairs_down(c["keys"], c["keys"], torch.zeros(n, dtype=torch.int64), 1 << 20, AXIS_BITS)


def test_voxelize_reads_a_cloud_whose_xyz_columns_are_not_adjacent():
    """The compiled quantization reads x, y, z side by side; a cloud whose xyz columns skip gets the same voxels
    (copied first) as its contiguous copy."""
    from sr3d_core.sparse.voxelize import voxelize_coords

    g = torch.Generator().manual_seed(3)
    wide = torch.rand(500, 6, generator=g) * 4
    skipping = wide[:, ::2]  # x, y, z at columns 0, 2, 4
    feats = torch.ones(500, 1)
    got = voxelize_coords([(skipping, feats)], 0.1)
    want = voxelize_coords([(skipping.contiguous(), feats)], 0.1)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_an_unknown_isa_choice_warns_and_runs_the_best_kernels(tmp_path):
    """SR3D_ISA set to a value that names no kernels (a typo, an instruction set without kernels): one warning that
    names the variable and the choices, then the kernels auto would pick."""
    code = (
        "import warnings, torch\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from sr3d_core.sparse import native\n"
        "    native.available(torch.zeros(1))\n"
        "isa = native.LIBRARY.status().isa\n"
        "print(isa); print([str(w.message) for w in caught])\n"
    )
    picked = {}
    for value in ("avx512", "auto"):
        proc = _run(code, dict(os.environ, SR3D_ISA=value, PYTHONPATH=str(ROOT)), tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        isa, messages = proc.stdout.strip().splitlines()
        picked[value] = (isa, messages)
    assert picked["avx512"][0] == picked["auto"][0] and picked["auto"][1] == "[]"
    assert "SR3D_ISA=avx512 is not one of auto, avx2, base, baseline" in picked["avx512"][1]


def test_a_corrupt_pair_list_is_caught_in_c():
    """Starts that do not end at the number of pairs: the C side refuses before reading a row."""
    c = _case()
    starts = c["pairs"][0].clone()
    starts[-1] += 5
    with pytest.raises(ValueError, match="starts"):
        native.conv_forward(c["x"], (starts, c["pairs"][1], c["pairs"][2]), c["n"], c["w"])


@pytest.mark.parametrize("scale", [0.0, 1.0], ids=["every-call-splits", "built-in-thresholds"])
@pytest.mark.parametrize("c_in,c_out", [(3, 16), (16, 32), (40, 24)])
def test_results_do_not_depend_on_the_thread_count(c_in, c_out, scale):
    """Kernel maps and their tables, voxelization's keys and sort, the convolution, both gradients, the max pool
    and the box geometry (IoU, NMS, the polygon clip and its gradient): 1, 2 and 3 threads give the same bits,
    whether every call splits over the threads or only those above the work thresholds do."""
    from sr3d_core.sparse import kernel_map as km
    from sr3d_core.sparse.coords import AXIS_BITS, COORD_LIMIT, CoordSet

    keys = _keys(20000, seed=c_in)
    n = keys.numel()
    g = torch.Generator().manual_seed(c_out)
    x, w = torch.randn(n, c_in, generator=g), torch.randn(27, c_in, c_out, generator=g)
    grad = torch.randn(n, c_out, generator=g)
    boxes = torch.rand(2000, 7, generator=g, dtype=torch.float64) + 0.1
    labels = torch.randint(0, 5, (2000,), generator=g)
    raw = torch.randint(-(1 << 20), 1 << 20, (30000,), generator=g) * 3  # voxel-key-like, with repeats
    raw = torch.cat([raw, raw[:5000]])
    prio = torch.randperm(raw.numel(), generator=g)
    poly1, poly2 = _corners(3000, g), _corners(3000, g)
    cloud = torch.randn(30000, 6, generator=g) * 3  # two scenes: one strided view, one smaller
    holed = cloud[:, :3].clone()
    holed[25000, 1] = float("nan")  # in the last thread's share: the whole call still answers None
    clip_grad = torch.randn(3000, generator=g, dtype=torch.float64)
    src = CoordSet(None, keys, 1)
    dst, parent = km.downsample(src, 2)
    was = torch.get_num_threads()
    results = []
    try:
        with extension.parallel_thresholds(scale):
            for threads in (1, 2, 3):
                torch.set_num_threads(threads)
                pairs = native.kernel_pairs(keys, keys, DELTAS, True)
                plain = native.kernel_pairs(keys, keys, DELTAS, False)
                pooled, arg = native.max_pool(x, parent, len(dst.keys))
                out = [
                    *pairs,
                    *plain,
                    *native.kernel_pairs_down(keys, dst.keys, parent, 1, AXIS_BITS),
                    *native.unique_pick(raw, prio, AXIS_BITS),
                    native.voxel_keys([cloud[:, :3], cloud[:700, 3:]], 0.05, AXIS_BITS, COORD_LIMIT),
                    native.conv_forward(x, pairs, n, w),
                    native.conv_weight_grad(x, pairs, grad),
                    native.pairs_to_table(pairs, n, n),
                    pooled,
                    arg,
                    native.max_pool_grad(pooled, arg, n),
                    gnative.rotated_iou_bev(boxes, boxes.flip(0)),
                    gnative.nms_rotated_bev(boxes, labels, 0.2),
                    native.transpose_map(native.pairs_to_table(plain, n, n), n),
                    *gnative.convex_clip(poly1, poly2, 1e-15, clip_grad),
                ]
                if c_in % 8 == 0:
                    out.append(native.conv_input_grad(grad, pairs, n, w))
                assert native.voxel_keys([holed], 0.05, AXIS_BITS, COORD_LIMIT) is None
                results.append(out)
    finally:
        torch.set_num_threads(was)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


def _run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_baseline_kernels_agree_with_the_dispatched_ones(tmp_path):
    """SR3D_ISA=baseline (what a CPU without AVX2/FMA runs): the same convolution up to float rounding."""
    c = _case()
    torch.save((c["x"], c["pairs"][0], c["pairs"][1], c["pairs"][2], c["w"]), tmp_path / "case.pt")
    code = (
        "import torch; from sr3d_core.sparse import native\n"
        "x, s, i, o, w = torch.load('case.pt')\n"
        "torch.save(native.conv_forward(x, (s, i, o), x.shape[0], w), 'out.pt')\n"
        "print(native.LIBRARY.status().isa)\n"
    )
    env = dict(os.environ, SR3D_ISA="baseline", PYTHONPATH=str(ROOT))
    proc = _run(code, env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "baseline"
    torch.testing.assert_close(
        torch.load(tmp_path / "out.pt"), native.conv_forward(c["x"], c["pairs"], c["n"], c["w"]), rtol=1e-5, atol=1e-4
    )


def _fresh_copy(repo: Path) -> None:
    """The tracked and untracked (not ignored) sources a build needs, without any built library, into ``repo``."""
    files = subprocess.run(
        [
            "git",
            "ls-files",
            "-co",
            "--exclude-standard",
            "sr3d_core",
            "sr3d_ros",
            "setup.py",
            "setup.cfg",
            "package.xml",
            "resource",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file() and not rel.endswith(".so"):
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)


def _check_used_without_compiler(site: Path, tmp_path: Path) -> None:
    """A process with ``site`` on its path and no compiler anywhere loads the three libraries found there, without
    a warning, runs a convolution, and the doctor reports every path active."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), PATH=str(bin_dir), CC="/nonexistent-cc")
    env.pop("SR3D_NATIVE", None)
    env.pop("SR3D_ISA", None)
    code = (
        "import sys, warnings; warnings.simplefilter('error')\n"
        "import torch; from sr3d_core.sparse import native, doctor\n"
        "assert native.__file__.startswith(%r), native.__file__\n"
        "x = torch.randn(3, 8); s = torch.tensor([0, 3]); r = torch.arange(3)\n"
        "print(native.conv_forward(x, (s, r, r), 3, torch.randn(1, 8, 8)).shape)\n"
        "sys.exit(doctor.main([]))\n"
    ) % str(site)
    proc = _run(code, env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert (
        proc.stdout.count(" active ") == 3 and str(site / "sr3d_core" / "sparse" / "libsr3d_sparse.so") in proc.stdout
    )


def test_a_portable_build_has_no_x86_variants_and_agrees(tmp_path, monkeypatch):
    """The build other architectures (AArch64) get, made on this machine with -DSR3D_PORTABLE: it compiles without
    a warning, holds no AVX2 variant, loads as the baseline, and its convolution and rotated IoU agree with the
    dispatched ones up to float rounding."""
    from sr3d_core.sparse import build_spec

    cc = build_spec.compiler()
    built = {}
    for name, binding in (("sparse", native), ("geometry", gnative)):
        target = tmp_path / build_spec.LIBRARIES[name].filename
        build_spec.build(build_spec.LIBRARIES[name], ROOT, target, tmp_path / "obj", cc=f"{cc} -DSR3D_PORTABLE -Werror")
        symbols = subprocess.run(["nm", str(target)], capture_output=True, text=True, check=True).stdout
        assert "sr3d_conv_pairs" in symbols or "sr3d_rotated_iou_bev" in symbols
        assert "avx2" not in symbols and "resolver" not in symbols
        lib = extension.CompiledLibrary(name, binding.LIBRARY.signatures)
        lib.path = target
        assert lib.status().state == "active" and lib.status().isa == "baseline"
        built[name] = lib.get()
    c = _case()
    boxes = torch.rand(300, 7, dtype=torch.float64) + 0.1
    want = (native.conv_forward(c["x"], c["pairs"], c["n"], c["w"]), gnative.rotated_iou_bev(boxes, boxes.flip(0)))
    monkeypatch.setattr(native.LIBRARY, "_lib", built["sparse"])
    monkeypatch.setattr(gnative.LIBRARY, "_lib", built["geometry"])
    got = (native.conv_forward(c["x"], c["pairs"], c["n"], c["w"]), gnative.rotated_iou_bev(boxes, boxes.flip(0)))
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got[1], want[1], rtol=1e-9, atol=1e-12)


def test_a_fresh_setup_build_is_used_without_compiling_at_run_time(tmp_path):
    """The build step of `make setup` (setup.py build_ext --inplace) on a fresh copy of the sources leaves libraries
    that a process without any compiler on its PATH loads and uses: every path active, a convolution runs."""
    repo = tmp_path / "repo"
    _fresh_copy(repo)
    build = subprocess.run(
        ["nice", "-n", "15", sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    _check_used_without_compiler(repo, tmp_path)


def test_pip_install_builds_the_libraries_into_the_installed_package(tmp_path):
    """`pip install` of a fresh copy (through a wheel, as pip builds one) installs the three compiled libraries
    next to their bindings, and the installed package uses them without a compiler."""
    repo, site = tmp_path / "repo", tmp_path / "site"
    _fresh_copy(repo)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]

    def run_pip(*args: str) -> None:
        step = subprocess.run([*pip, *args], cwd=repo, capture_output=True, text=True, timeout=600)
        assert step.returncode == 0, step.stdout[-2000:] + step.stderr[-3000:]

    run_pip("wheel", "--no-deps", "--no-build-isolation", ".", "-w", str(tmp_path / "dist"))
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    run_pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    _check_used_without_compiler(site, tmp_path)
