"""The compiled kernel-map builder: identical to a brute-force table, cached builds, and the fallback without a
compiler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sr3d_core.sparse import native
from sr3d_core.sparse.coords import COORD_LIMIT, kernel_offsets, offset_key, pack

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not native.available(torch.zeros(1)), reason="no C compiler: pure-PyTorch path only")


def brute_force(src: torch.Tensor, dst: torch.Tensor, deltas: list[int]) -> torch.Tensor:
    """A dict of every input key: the definition of the table, one query at a time."""
    row = {int(k): i for i, k in enumerate(src.tolist())}
    return torch.tensor([[row.get(int(q) + d, len(src)) for q in dst.tolist()] for d in deltas],
                        dtype=torch.long).reshape(len(deltas), len(dst))


def keys_of(coords: torch.Tensor) -> torch.Tensor:
    return torch.unique(pack(coords))


@pytest.mark.parametrize("case", ["dense", "sparse_out", "sparse_in", "far_scenes", "edge_of_range"])
def test_matches_brute_force(case):
    g = torch.Generator().manual_seed(len(case))
    if case == "far_scenes":
        # Scenes 0 and 7 only: the merge jumps over whole empty scenes (the galloping search).
        a = torch.randint(-6, 6, (400, 4), generator=g)
        a[:, 0] = torch.where(torch.rand(400, generator=g) < 0.5, 0, 7)
        src = dst = keys_of(a)
    elif case == "edge_of_range":
        a = torch.randint(COORD_LIMIT - 8, COORD_LIMIT + 1, (300, 4), generator=g)
        a[:, 0] = torch.randint(0, 2, (300,), generator=g)
        a[::2, 1:] *= -1
        src = dst = keys_of(a)
    else:
        a = torch.randint(-10, 10, (3000, 4), generator=g)
        a[:, 0] = torch.randint(0, 3, (3000,), generator=g)
        src = dst = keys_of(a)
        if case == "sparse_out":
            dst = src[torch.randperm(len(src), generator=g)[:40]].sort().values
        elif case == "sparse_in":
            src = src[torch.randperm(len(src), generator=g)[:40]].sort().values
    for ks, stride in ((3, 1), (2, 2), (5, 1)):
        deltas = [offset_key(*o) for o in kernel_offsets(ks, stride)]
        got = native.kernel_map(src, dst, deltas)
        assert torch.equal(got, brute_force(src, dst, deltas)), (case, ks)
    assert (got < len(src)).any()


def test_empty_sets_and_transpose():
    keys = keys_of(torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0], [0, 3, 0, 0]]))
    deltas = [offset_key(dx, 0, 0) for dx in (-1, 0, 1)]
    assert native.kernel_map(keys[:0], keys, deltas).tolist() == [[0, 0, 0]] * 3  # every site missing: N_in = 0
    assert native.kernel_map(keys, keys[:0], deltas).shape == (3, 0)
    cols = native.kernel_map(keys, keys, deltas)
    # Hand-worked: x = 0, 1, 3; offset -1 finds x-1, offset +1 finds x+1.
    assert cols.tolist() == [[3, 0, 3], [0, 1, 2], [1, 3, 3]]
    # Input i feeds output o under k where cols[k, o] == i; N_out (3) elsewhere.
    assert native.transpose_map(cols, 3).tolist() == [[1, 3, 3], [0, 1, 2], [3, 0, 3]]


def test_build_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SR3D_CACHE_DIR", str(tmp_path))
    first = native.build()
    stamp = first.stat().st_mtime_ns
    assert first.parent == tmp_path / "native" and first == native.build() and first.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temporary file left behind


def test_falls_back_without_a_compiler(tmp_path):
    # No compiler on PATH and an empty cache: one warning, then the pure-PyTorch tables, identical.
    code = (
        "import torch, logging; logging.basicConfig()\n"
        "from sr3d_core.sparse import native, kernel_map as km\n"
        "from sr3d_core.sparse.coords import CoordSet, pack, unpack\n"
        "torch.manual_seed(5); c = torch.randint(-5, 5, (200, 4)); c[:, 0] = 0\n"
        "k = torch.unique(pack(c)); s = CoordSet(unpack(k), k, 1)\n"
        "m = km.build_kernel_map(s, s, 3)\n"
        "print(native.available(k), int((m.cols < m.n_in).sum()))\n"
        "torch.save(m.cols, 'cols.pt')\n"
    )
    env = dict(os.environ, PATH=str(tmp_path), SR3D_CACHE_DIR=str(tmp_path / "cache"), CC="", PYTHONPATH=str(ROOT))
    env.pop("SR3D_NATIVE", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "False"
    assert "compiled sparse helpers unavailable" in proc.stderr and "no C compiler" in proc.stderr
    torch.manual_seed(5)
    c = torch.randint(-5, 5, (200, 4))
    c[:, 0] = 0
    keys = keys_of(c)
    deltas = [offset_key(*o) for o in kernel_offsets(3, 1)]
    assert torch.equal(torch.load(tmp_path / "cols.pt"), native.kernel_map(keys, keys, deltas))
    assert int(proc.stdout.split()[1]) > 0


def test_unique_pick_matches_torch():
    g = torch.Generator().manual_seed(4)
    keys = torch.randint(-50, 50, (5000,), generator=g) * 7919 + (1 << 40)
    keys[:100] = -(1 << 62)  # negative keys sort first (the sign flip of the radix sort)
    prio = torch.randperm(5000, generator=g)
    ukeys, inverse, pick = native.unique_pick(keys, prio)
    want_keys, want_inverse = torch.unique(keys, sorted=True, return_inverse=True)
    assert torch.equal(ukeys, want_keys) and torch.equal(inverse, want_inverse)
    # The pick of every voxel is its point of highest priority (brute force).
    best = {}
    for i, (v, p) in enumerate(zip(inverse.tolist(), prio.tolist())):
        if v not in best or p > prio[best[v]]:
            best[v] = i
    assert pick.tolist() == [best[v] for v in range(len(ukeys))]
    assert all(torch.equal(a, b) for a, b in zip(native.unique(keys), (want_keys, want_inverse)))


def test_derived_sets_match_torch_path(monkeypatch):
    """Downsampling, generative upsampling and unions use the compiled sort-unique: same sets, same rows."""
    from sr3d_core.sparse import kernel_map as km
    from sr3d_core.sparse.coords import CoordSet, unpack
    g = torch.Generator().manual_seed(2)
    c = torch.randint(-20, 20, (3000, 4), generator=g)
    c[:, 0] = torch.randint(0, 2, (3000,), generator=g)
    keys = keys_of(c * torch.tensor([1, 2, 2, 2]))
    src = CoordSet(unpack(keys), keys, 2)
    out = {}
    for enabled in (False, True):
        monkeypatch.setattr(native, "_enabled", enabled)
        down, parent = km.downsample(src, 2)
        up, child = km.generative_upsample(down, 3, 2)
        both, ra, rb = km.union(src, up)
        out[enabled] = (down.keys, parent, up.keys, child, both.keys, ra, rb)
    assert len(out[True][0]) < len(src.keys) < len(out[True][4])
    assert all(torch.equal(a, b) for a, b in zip(out[True], out[False]))


@pytest.mark.parametrize("scenes", [1, 3])
def test_voxelize_matches_torch_path(monkeypatch, scenes):
    from sr3d_core.sparse.voxelize import voxelize_coords
    g = torch.Generator().manual_seed(scenes)
    items = []
    for b in range(scenes):
        xyz = (torch.rand(4000, 3, generator=g) * 6 - 3).float()
        xyz[:500] = torch.randint(-150, 150, (500, 3), generator=g) * 0.02  # on voxel boundaries, both signs
        items.append((xyz, torch.rand(4000, 3, generator=g)))
    items.append((torch.zeros(0, 3), torch.zeros(0, 3)))  # an empty scene keeps its batch slot
    monkeypatch.setattr(native, "_enabled", False)
    want = voxelize_coords(items, 0.02, "random", seed=9)
    monkeypatch.setattr(native, "_enabled", True)
    got = voxelize_coords(items, 0.02, "random", seed=9)
    assert len(want[1]) < sum(len(x) for x, _ in items)  # voxels do merge points
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bad,message", [(float("nan"), "NaN or inf"), (1e6, "out of range")])
def test_voxelize_errors_name_the_problem(bad, message):
    from sr3d_core.sparse.voxelize import voxelize_coords
    xyz = torch.zeros(10, 3)
    xyz[4, 1] = bad
    with pytest.raises(ValueError, match=message):
        voxelize_coords([(torch.zeros(3, 3), torch.zeros(3, 1)), (xyz, torch.zeros(10, 1))], 0.02, "random")
