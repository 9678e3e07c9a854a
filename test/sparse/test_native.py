"""The compiled kernel-map builder: identical to a brute-force table, cached builds, and the fallback without a
compiler."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr3d_core.sparse import native
from sr3d_core.sparse.coords import AXIS_BITS, COORD_LIMIT, KernelMap, kernel_offsets, offset_key, pack

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not native.available(torch.zeros(1)), reason="no C compiler: pure-PyTorch path only")


def brute_force(src: torch.Tensor, dst: torch.Tensor, deltas: list[int]) -> torch.Tensor:
    """A dict of every input key: the definition of the table, one query at a time."""
    row = {int(k): i for i, k in enumerate(src.tolist())}
    return torch.tensor(
        [[row.get(int(q) + d, len(src)) for q in dst.tolist()] for d in deltas], dtype=torch.long
    ).reshape(len(deltas), len(dst))


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
        expected = brute_force(src, dst, deltas)
        # The pair list straight from the keys (the mirrored half too, for an odd kernel on one set) is the list of
        # the brute-force table's existing sites, in the order the convolution kernels read.
        k, o = (expected < len(src)).nonzero(as_tuple=True)
        assert len(k) > 0
        for symmetric in (False, True) if src is dst and ks % 2 == 1 else (False,):
            starts, rows_in, rows_out = native.kernel_pairs(src, dst, deltas, symmetric)
            assert torch.equal(rows_out, o) and torch.equal(rows_in, expected[k, o]), (case, ks, symmetric)
            assert starts.tolist() == [0] + torch.bincount(k, minlength=len(deltas)).cumsum(0).tolist()
        # And back to the table, compiled and in PyTorch (a map built as a pair list derives it when asked).
        assert torch.equal(native.pairs_to_table((starts, rows_in, rows_out), len(src), len(dst)), expected)
        native.set_enabled(False)
        try:
            assert torch.equal(KernelMap(None, len(src), len(dst), False, (starts, rows_in, rows_out)).cols, expected)
        finally:
            native.set_enabled(True)


@pytest.mark.parametrize("stride", [1, 2, 8])
@pytest.mark.parametrize("case", ["dense", "sparse", "far_scenes", "edge_of_range"])
def test_strided_map_from_the_parents_matches_brute_force(stride, case):
    """A 3 x 3 x 3 stride-2 map onto the parents, built from the parent map: the brute-force table's pairs in the
    convolution's order, equal to the searched pair list."""
    from sr3d_core.sparse import kernel_map as km
    from sr3d_core.sparse.coords import AXIS_BITS, CoordSet

    g = torch.Generator().manual_seed(stride * 10 + len(case))
    n = {"dense": 3000, "sparse": 300, "far_scenes": 500, "edge_of_range": 300}[case]
    a = torch.randint(-10, 10, (n, 4), generator=g)
    a[:, 0] = torch.randint(0, 3, (n,), generator=g)
    if case == "far_scenes":
        a[:, 0] = torch.where(torch.rand(n, generator=g) < 0.5, 0, 7)
    elif case == "edge_of_range":
        a[:, 1:] += (COORD_LIMIT // stride - 12) * torch.where(torch.rand(n, 3, generator=g) < 0.5, 1, -1)
    a[:, 1:] *= stride
    src = CoordSet(None, keys_of(a), stride)
    dst, parent = km.downsample(src, 2)
    deltas = [offset_key(*o) for o in kernel_offsets(3, stride)]
    expected = brute_force(src.keys, dst.keys, deltas)
    k, o = (expected < len(src.keys)).nonzero(as_tuple=True)
    starts, rows_in, rows_out = native.kernel_pairs_down(src.keys, dst.keys, parent, stride, AXIS_BITS)
    assert torch.equal(rows_out, o) and torch.equal(rows_in, expected[k, o])
    assert starts.tolist() == [0] + torch.bincount(k, minlength=27).cumsum(0).tolist()
    assert (starts[1:] - starts[:-1]).min() >= 0 and len(rows_in) > len(src.keys)  # off-parent pairs exist
    searched = native.kernel_pairs(src.keys, dst.keys, deltas, False)
    assert all(torch.equal(x, y) for x, y in zip(searched, (starts, rows_in, rows_out)))
    # The convolution builds its stride-2 maps this way: the same map; and a 1 x 1 x 1 kernel's from the parents.
    built = km.build_kernel_map(src, dst, 3, parent)
    assert all(torch.equal(x, y) for x, y in zip(built.pair_list(), searched))
    one = [offset_key(*o) for o in kernel_offsets(1, stride)]
    pointwise = km.build_kernel_map(src, dst, 1, parent).pair_list()
    assert all(torch.equal(x, y) for x, y in zip(pointwise, native.kernel_pairs(src.keys, dst.keys, one, False)))
    assert 0 < len(pointwise[1]) < len(src.keys)


@pytest.mark.parametrize("n", [1, 5, 3000])
def test_strided_map_split_over_threads_matches_brute_force(n):
    # Every call split (parallel_thresholds(0)) into one range of parents per thread, 1 to 5 threads, down to more
    # threads than parents: the brute-force pair list every time, bit for bit.
    from sr3d_core.sparse import extension
    from sr3d_core.sparse import kernel_map as km
    from sr3d_core.sparse.coords import AXIS_BITS, CoordSet

    g = torch.Generator().manual_seed(n)
    a = torch.randint(-12, 12, (n, 4), generator=g)
    a[:, 0] = torch.randint(0, 2, (n,), generator=g)
    src = CoordSet(None, keys_of(a), 1)
    dst, parent = km.downsample(src, 2)
    deltas = [offset_key(*o) for o in kernel_offsets(3, 1)]
    expected = brute_force(src.keys, dst.keys, deltas)
    k, o = (expected < len(src.keys)).nonzero(as_tuple=True)
    was = torch.get_num_threads()
    try:
        with extension.parallel_thresholds(0.0):
            for threads in (1, 2, 3, 5):
                torch.set_num_threads(threads)
                starts, rows_in, rows_out = native.kernel_pairs_down(src.keys, dst.keys, parent, 1, AXIS_BITS)
                assert torch.equal(rows_out, o) and torch.equal(rows_in, expected[k, o]), threads
                assert starts.tolist() == [0] + torch.bincount(k, minlength=27).cumsum(0).tolist(), threads
    finally:
        torch.set_num_threads(was)


def test_strided_map_by_hand():
    """Two voxels at stride 1 in one parent cell's neighbourhood: (1, 0, 0) has parent (0, 0, 0) and, with an odd x,
    also feeds the output at (2, 0, 0) if it exists; (2, 0, 0) is its own parent."""
    from sr3d_core.sparse import kernel_map as km
    from sr3d_core.sparse.coords import AXIS_BITS, CoordSet

    src = CoordSet(None, keys_of(torch.tensor([[0, 1, 0, 0], [0, 2, 0, 0]])), 1)
    dst, parent = km.downsample(src, 2)  # parents (0, 0, 0) and (2, 0, 0)
    assert parent.tolist() == [0, 1]
    starts, rows_in, rows_out = native.kernel_pairs_down(src.keys, dst.keys, parent, 1, AXIS_BITS)
    # k = (dx + 1) + 3 (dy + 1) + 9 (dz + 1) with input = output + d: (1,0,0) = (0,0,0) + (1,0,0) -> k 14;
    # (1,0,0) = (2,0,0) + (-1,0,0) -> k 12; (2,0,0) = (2,0,0) + 0 -> k 13.
    pairs = sorted(
        (k, i, o)
        for k in range(27)
        for i, o in zip(rows_in[starts[k] : starts[k + 1]].tolist(), rows_out[starts[k] : starts[k + 1]].tolist())
    )
    assert pairs == [(12, 0, 1), (13, 1, 1), (14, 0, 0)]


def test_empty_sets_and_transpose():
    # Hand-worked table on x = 0, 1, 3: offset -1 finds x-1, offset +1 finds x+1, N_in (3) where none.
    cols = torch.tensor([[3, 0, 3], [0, 1, 2], [1, 3, 3]])
    # Input i feeds output o under k where cols[k, o] == i; N_out (3) elsewhere.
    assert native.transpose_map(cols, 3).tolist() == [[1, 3, 3], [0, 1, 2], [3, 0, 3]]
    # A 3x3x3 kernel's pair list on z = 0, 1, 3 (one column): only the centre column's offsets have pairs,
    # dz = -1 (k = 4): (0, 1); dz = 0 (k = 13): every row; dz = +1 (k = 22): (1, 0). Searched in full and mirrored.
    keys = keys_of(torch.tensor([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 3]]))
    deltas = [offset_key(*o) for o in kernel_offsets(3, 1)]
    for symmetric in (False, True):
        starts, rows_in, rows_out = native.kernel_pairs(keys, keys, deltas, symmetric)
        assert starts.tolist() == [0] * 5 + [1] * 9 + [4] * 9 + [5] * 5
        assert rows_in.tolist() == [0, 0, 1, 2, 1] and rows_out.tolist() == [1, 0, 1, 2, 0]
    for n_in, n_out in ((0, 3), (3, 0)):
        starts, rows_in, _ = native.kernel_pairs(keys[:n_in], keys[:n_out], deltas, False)
        assert starts.tolist() == [0] * 28 and rows_in.numel() == 0


def test_missing_library_warns_once_and_falls_back(tmp_path, monkeypatch):
    """No library file: one warning that names the fix, then None (the PyTorch path); nothing is compiled."""
    from sr3d_core.sparse import extension

    lib = extension.CompiledLibrary("sparse", {})
    lib.path = tmp_path / "libsr3d_sparse.so"
    monkeypatch.setattr(extension.build_spec, "build", lambda *a, **k: pytest.fail("compiled at run time"))
    with pytest.warns(extension.CompiledEngineWarning, match=r"missing .*make setup"):
        assert lib.get() is None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lib.get() is None  # once only
    assert lib.status().state == "missing"


def test_several_unusable_libraries_give_one_warning(tmp_path, monkeypatch):
    """Two libraries missing at once: the first use warns once, naming both and the fix; the second is silent."""
    from sr3d_core.sparse import extension

    first, second = extension.CompiledLibrary("sparse", {}), extension.CompiledLibrary("geometry", {})
    first.path, second.path = tmp_path / "libsr3d_sparse.so", tmp_path / "libsr3d_geometry.so"
    with pytest.warns(extension.CompiledEngineWarning) as caught:
        assert first.get() is None
        assert second.get() is None
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "sparse library is missing" in message and "geometry library is missing" in message
    assert "paths are used" in message and "make setup" in message


@pytest.mark.parametrize("problem", ["stale", "incompatible"])
def test_stale_or_incompatible_library_is_refused(monkeypatch, problem):
    """A build from other sources, or for another ABI, is not used: the bindings could pass it wrong arguments."""
    from sr3d_core.sparse import extension

    if problem == "stale":
        monkeypatch.setattr(extension.build_spec, "source_digest", lambda *a: "0000000000000000")
    else:
        monkeypatch.setattr(extension, "ABI_VERSION", extension.ABI_VERSION + 1)
    lib = extension.CompiledLibrary("sparse", {})
    with pytest.warns(extension.CompiledEngineWarning, match=problem):
        assert lib.get() is None
    assert lib.status().state == problem


def test_library_reports_its_build():
    from sr3d_core.sparse import extension

    st = native.LIBRARY.status()
    assert st.state == "active" and st.path == ROOT / "sr3d_core" / "sparse" / "libsr3d_sparse.so"
    assert st.isa in ("baseline", "avx2+fma") and st.openmp > 0
    lib = native.LIBRARY.get()
    assert lib.sr3d_abi_version() == extension.ABI_VERSION


def test_unique_pick_matches_torch():
    g = torch.Generator().manual_seed(4)
    keys = torch.randint(-50, 50, (5000,), generator=g) * 7919 + (1 << 40)
    keys[:100] = -(1 << 62)  # negative keys sort first (the sign flip of the radix sort)
    prio = torch.randperm(5000, generator=g)
    ukeys, inverse, pick = native.unique_pick(keys, prio, AXIS_BITS)
    want_keys, want_inverse = torch.unique(keys, sorted=True, return_inverse=True)
    assert torch.equal(ukeys, want_keys) and torch.equal(inverse, want_inverse)
    # The pick of every voxel is its point of highest priority (brute force).
    best = {}
    for i, (v, p) in enumerate(zip(inverse.tolist(), prio.tolist())):
        if v not in best or p > prio[best[v]]:
            best[v] = i
    assert pick.tolist() == [best[v] for v in range(len(ukeys))]
    assert all(torch.equal(a, b) for a, b in zip(native.unique(keys, AXIS_BITS), (want_keys, want_inverse)))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 5000])
def test_unique_pick_split_over_more_threads_than_points(n):
    # Every call split (parallel_thresholds(0)) over 1-4 threads, down to chunks of no point and voxels that span a
    # chunk's edge: torch.unique's result and the one-thread pick every time.
    from sr3d_core.sparse import extension

    g = torch.Generator().manual_seed(n)
    keys = torch.randint(0, 3, (n,), generator=g) * 1000 + torch.randint(0, 2, (n,), generator=g)
    prio = torch.randperm(n, generator=g)
    want_keys, want_inverse = torch.unique(keys, sorted=True, return_inverse=True)
    was = torch.get_num_threads()
    picks = []
    try:
        with extension.parallel_thresholds(0.0):
            for threads in (1, 2, 3, 4):
                torch.set_num_threads(threads)
                ukeys, inverse, pick = native.unique_pick(keys, prio, AXIS_BITS)
                assert torch.equal(ukeys, want_keys) and torch.equal(inverse, want_inverse), threads
                picks.append(pick)
    finally:
        torch.set_num_threads(was)
    assert all(torch.equal(p, picks[0]) for p in picks)
    assert all(prio[picks[0][v]] == prio[want_inverse == v].max() for v in range(len(want_keys)))


@pytest.mark.parametrize(
    "case", ["packed_fields", "strided_coords", "flat_scene", "high_bits_only", "one_bit", "full_range", "all_equal"]
)
def test_unique_sorts_whatever_bits_vary(case):
    # The sort runs on the fields' ranges (minus their minimum, past their common zero low bits): keys that differ
    # only in scattered, high or single bits, coordinates at a stride, a field that never changes.
    g = torch.Generator().manual_seed(len(case))
    n = 3000
    if case in ("strided_coords", "flat_scene"):  # packed coordinates, four scenes, at stride 8 (a coarse level)
        c = torch.randint(-40, 40, (n, 4), generator=g) * 8
        c[:, 0] = torch.randint(0, 4, (n,), generator=g)
        if case == "flat_scene":
            c[:, 3] = -16  # one z for every voxel: a field of width 1
        keys = pack(c)
    elif case == "packed_fields":  # a few low bits of three 20-bit fields and a batch field, as packed coordinates
        parts = [torch.randint(0, 1 << b, (n,), generator=g) for b in (2, 9, 9, 9)]
        keys = (parts[0] << 60) | (parts[1] << 40) | (parts[2] << 20) | parts[3]
    elif case == "high_bits_only":
        keys = torch.randint(-8, 8, (n,), generator=g) << 59  # bits 59-63, sign included
    elif case == "one_bit":
        keys = (torch.randint(0, 2, (n,), generator=g) << 37) + 12345
    elif case == "full_range":
        keys = torch.randint(-(1 << 62), 1 << 62, (n,), generator=g) * 2 + torch.randint(0, 2, (n,), generator=g)
        keys[::3] = keys[1::3][: len(keys[::3])]  # duplicates
    else:
        keys = torch.full((n,), -77, dtype=torch.long)
    assert all(
        torch.equal(a, b)
        for a, b in zip(native.unique(keys, AXIS_BITS), torch.unique(keys, sorted=True, return_inverse=True))
    )


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
        monkeypatch.setattr(native.extension, "_enabled", enabled)
        down, parent = km.downsample(src, 2)
        up, child = km.generative_upsample(down, 3, 2)
        both, ra, rb = km.union(src, up)
        out[enabled] = (down.keys, parent, up.keys, child, both.keys, ra, rb)
    assert len(out[True][0]) < len(src.keys) < len(out[True][4])
    assert all(torch.equal(a, b) for a, b in zip(out[True], out[False]))


@pytest.mark.parametrize("quantize_dtype", ["float64", "float32", "float32_reciprocal"])
@pytest.mark.parametrize("scenes", [1, 3])
def test_voxelize_matches_torch_path(monkeypatch, scenes, quantize_dtype):
    from sr3d_core.sparse.voxelize import voxelize_coords

    g = torch.Generator().manual_seed(scenes)
    items = []
    for b in range(scenes):
        xyz = (torch.rand(4000, 3, generator=g) * 6 - 3).float()
        xyz[:500] = torch.randint(-150, 150, (500, 3), generator=g) * 0.02  # on voxel boundaries, both signs
        xyz[500:600] = xyz[:100]  # points that share a voxel in every arithmetic
        feats = torch.rand(4000, 3, generator=g)
        cloud = torch.cat([xyz, feats], dim=1)  # even scenes as column views of one (N, 6) cloud, read in place
        items.append((cloud[:, :3], cloud[:, 3:]) if b % 2 == 0 else (xyz, feats))
    items.append((torch.zeros(0, 3), torch.zeros(0, 3)))  # an empty scene keeps its batch slot
    monkeypatch.setattr(native.extension, "_enabled", False)
    want = voxelize_coords(items, 0.02, "random", seed=9, quantize_dtype=quantize_dtype)
    monkeypatch.setattr(native.extension, "_enabled", True)
    got = voxelize_coords(items, 0.02, "random", seed=9, quantize_dtype=quantize_dtype)
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


def _random_table(kvol: int, n_in: int, n_out: int, fill: float, seed: int) -> torch.Tensor:
    """(K, N_out) neighbour table, each site filled with probability ``fill`` (else N_in, the empty mark); as in a
    real map, an input row feeds at most one output row per offset."""
    g = torch.Generator().manual_seed(seed)
    cols = torch.stack([torch.randperm(max(n_in, n_out), generator=g)[:n_out] for _ in range(kvol)]).clamp(max=n_in)
    return torch.where(torch.rand(kvol, n_out, generator=g) < fill, cols, n_in)


def _loop_conv(x: torch.Tensor, cols: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The definition in float64, one (offset, output) site at a time."""
    x64, w64 = x.double(), w.double()
    out = torch.zeros(cols.shape[1], w.shape[2], dtype=torch.float64)
    for k, o in (cols < len(x)).nonzero().tolist():
        out[o] += x64[cols[k, o]] @ w64[k]
    return out


@pytest.mark.parametrize(
    "kvol,n_in,n_out,c_in,c_out,fill",
    [
        (27, 50, 40, 8, 32, 0.5),  # rows not a multiple of the row group; input channel blocks 6 + 2
        (27, 30, 31, 3, 16, 0.3),  # 3 input channels (the first layer): the im2col path, one partial block
        (27, 200, 130, 3, 24, 0.4),  # im2col: several blocks of output rows, both tile widths (16 + 8)
        (8, 50, 48, 5, 8, 0.5),  # im2col: exactly one block; 40 columns padded to 42
        (27, 0, 4, 3, 16, 0.5),  # im2col over an empty input set
        (8, 20, 17, 13, 56, 0.7),  # both tile widths (16 + 16 + 16 + 8), channel blocks 6 + 6 + 1
        (1, 9, 9, 16, 8, 1.0),  # a 1x1 map, every site filled; channel blocks 6 + 6 + 4
        (8, 300, 500, 64, 64, 0.6),  # more pairs than one chunk of the weight gradient
        (27, 700, 1300, 16, 16, 0.2),  # several blocks of output rows
        (27, 400, 1100, 72, 88, 0.3),  # several blocks, both tile widths, 12 blocks of six input channels
        (27, 12, 5, 8, 64, 0.0),  # nothing filled: zeros
        (27, 0, 4, 8, 8, 0.5),  # an empty input set
    ],
)
def test_fused_conv_matches_the_definition(kvol, n_in, n_out, c_in, c_out, fill):
    g = torch.Generator().manual_seed(n_out)
    x = torch.randn(n_in, c_in, generator=g)
    w = torch.randn(kvol, c_in, c_out, generator=g)
    grad = torch.randn(n_out, c_out, generator=g)
    cols = _random_table(kvol, n_in, n_out, fill, seed=c_out) if n_in else torch.zeros(kvol, n_out, dtype=torch.long)
    pairs = native.pair_list(cols, n_in)
    out = native.conv_forward(x, pairs, n_out, w)
    # float32 sums of up to a few hundred unit-size products: rounding stays far below 1e-4
    torch.testing.assert_close(out.double(), _loop_conv(x, cols, w), rtol=1e-4, atol=1e-4)
    if c_in % 8 == 0:  # grad_x[i] = sum over the pairs (i, o) of offset k of grad[o] @ w[k]^T
        expected_x = torch.zeros(n_in, c_in, dtype=torch.float64)
        for k, o in (cols < n_in).nonzero().tolist():
            expected_x[cols[k, o]] += w[k].double() @ grad[o].double()
        torch.testing.assert_close(
            native.conv_input_grad(grad, pairs, n_in, w).double(), expected_x, rtol=1e-4, atol=1e-4
        )
    # grad_w[k][c, :] = sum over the pairs (i, o) of offset k of x[i, c] * grad[o, :]
    expected = torch.zeros(kvol, c_in, c_out, dtype=torch.float64)
    for k, o in (cols < n_in).nonzero().tolist():
        expected[k] += torch.outer(x[cols[k, o]].double(), grad[o].double())
    torch.testing.assert_close(native.conv_weight_grad(x, pairs, grad).double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fill", [0.0, 0.3, 1.0])
def test_pair_list_is_the_nonzero_order(monkeypatch, fill):
    from sr3d_core.sparse.coords import KernelMap

    cols = _random_table(27, 40, 60, fill, seed=5)
    starts, rows_in, rows_out = native.pair_list(cols, 40)
    k, o = (cols < 40).nonzero(as_tuple=True)  # the definition: grouped by offset, output rows ascending
    assert torch.equal(rows_out, o) and torch.equal(rows_in, cols[k, o])
    assert starts.tolist() == [0] + torch.bincount(k, minlength=27).cumsum(0).tolist()
    monkeypatch.setattr(native.extension, "_enabled", False)  # the PyTorch path of KernelMap.pair_list: the same lists
    for a, b in zip(KernelMap(cols, 40, 60, False).pair_list(), (starts, rows_in, rows_out)):
        assert torch.equal(a, b)


def test_fused_conv_refuses_odd_channel_counts():
    x, cols = torch.randn(4, 8), torch.zeros(1, 4, dtype=torch.long)
    assert not native.conv_supported(x, 12) and not native.conv_supported(x.double(), 16)
    assert native.conv_supported(x, 16)
    with pytest.raises(ValueError, match="conv_forward: .*multiple of 8"):
        native.conv_forward(x, native.pair_list(cols, 4), 4, torch.randn(1, 8, 12))


@pytest.mark.parametrize("ks,stride,in_stride", [(3, 1, 1), (3, 2, 1), (1, 2, 2), (2, 2, 1), (5, 1, 2)])
def test_fused_conv_layer_matches_dense(monkeypatch, ks, stride, in_stride):
    """SparseConv3d on the compiled path (float32) against the dense float64 reference: values and both gradients."""
    from sparse_dense_ref import random_coords, ref_conv

    from sr3d_core.sparse import SparseConv3d, from_coords
    from sr3d_core.sparse import torch_backend as tb

    calls = []
    weight_grad = native.conv_weight_grad
    monkeypatch.setattr(tb, "_conv_algorithm", "native")
    monkeypatch.setattr(native, "conv_weight_grad", lambda *a: calls.append("w") or weight_grad(*a))
    c = random_coords(500, 10, 2, in_stride, seed=ks + stride)
    feats = torch.randn(len(c), 8, generator=torch.Generator().manual_seed(1))
    x, _ = from_coords(c, feats, batch_size=2, stride=in_stride)
    feats = x.feats.detach().clone().requires_grad_(True)
    x = x.replace(feats)
    conv = SparseConv3d(8, 24, ks, stride)
    y = conv(x)
    ref = ref_conv(x.coords, feats.double(), conv.weight.double(), ks, stride, in_stride, y.coords, 2)
    torch.testing.assert_close(y.feats.double(), ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(y.feats.shape, generator=torch.Generator().manual_seed(2))
    gx, gw = torch.autograd.grad((y.feats * g).sum(), [feats, conv.weight])
    rx, rw = torch.autograd.grad((ref * g.double()).sum(), [feats, conv.weight])
    torch.testing.assert_close(gx.double(), rx.double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw.double(), rw.double(), rtol=1e-5, atol=1e-5)
    assert calls == ["w"]  # the compiled path ran (not a fallback)


@pytest.mark.parametrize("in_stride", [2, 8])
def test_fused_generative_transpose_matches_dense(monkeypatch, in_stride):
    """The generative transposed conv on the compiled path (float32) against the dense float64 reference, and its
    kernel map against the one the compiled helpers derive from the neighbour table."""
    from sparse_dense_ref import random_coords, ref_conv_transpose

    from sr3d_core.sparse import SparseGenerativeConvTranspose3d, from_coords
    from sr3d_core.sparse import torch_backend as tb

    calls = []
    weight_grad = native.conv_weight_grad
    monkeypatch.setattr(tb, "_conv_algorithm", "native")
    monkeypatch.setattr(native, "conv_weight_grad", lambda *a: calls.append("w") or weight_grad(*a))
    c = random_coords(300, 8, 2, in_stride, seed=in_stride)
    x, _ = from_coords(
        c, torch.randn(len(c), 8, generator=torch.Generator().manual_seed(3)), batch_size=2, stride=in_stride
    )
    feats = x.feats.detach().clone().requires_grad_(True)
    x = x.replace(feats)
    tconv = SparseGenerativeConvTranspose3d(8, 16, 3, 2)
    y = tconv(x)
    ref = ref_conv_transpose(x.coords, feats.double(), tconv.weight.double(), 3, in_stride, y.coords, 2)
    torch.testing.assert_close(y.feats.double(), ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(y.feats.shape, generator=torch.Generator().manual_seed(4))
    gx, gw = torch.autograd.grad((y.feats * g).sum(), [feats, tconv.weight])
    rx, rw = torch.autograd.grad((ref * g.double()).sum(), [feats, tconv.weight])
    torch.testing.assert_close(gx.double(), rx.double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw.double(), rw.double(), rtol=1e-4, atol=1e-4)  # sums over ~300 pairs
    assert calls == ["w"]  # the compiled path ran (not a fallback)

    _, kmap = x.manager._maps[("gen", x.set_id, 3)]
    for a, b in zip(kmap.pair_list(), native.pair_list(kmap.cols, kmap.n_in)):
        assert torch.equal(a, b)
    assert torch.equal(kmap.transposed_cols(), native.transpose_map(kmap.cols, kmap.n_in))


def test_auto_uses_the_fused_conv_at_any_thread_count_and_narrow_layers(monkeypatch):
    from sr3d_core.sparse import SparseConv3d, from_coords
    from sr3d_core.sparse import torch_backend as tb

    monkeypatch.setattr(tb, "_conv_algorithm", "auto")
    monkeypatch.setattr(tb, "_NATIVE_MAX_CHANNELS", 16)
    calls = []
    fused = native.conv_forward
    monkeypatch.setattr(native, "conv_forward", lambda *a: calls.append(1) or fused(*a))
    c = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]])
    conv = SparseConv3d(8, 16, 3, 1)
    old = torch.get_num_threads()
    try:
        for threads, expected in ((1, 1), (2, 1)):
            torch.set_num_threads(threads)
            calls.clear()
            conv(from_coords(c, torch.randn(3, 8))[0])
            assert len(calls) == expected, threads
        calls.clear()
        torch.set_num_threads(1)
        conv.double()(from_coords(c, torch.randn(3, 8, dtype=torch.float64))[0])  # float64: the torch path
        SparseConv3d(8, 24, 3, 1)(from_coords(c, torch.randn(3, 8))[0])  # wider than the limit: the torch path
        assert not calls
    finally:
        torch.set_num_threads(old)


def test_rotated_iou_bev_matches_torch_and_hand_values():
    import math

    from sr3d_core.geometry import native
    from sr3d_core.geometry.iou import rotated_iou_paired_diff

    g = torch.Generator().manual_seed(3)
    n = 4000
    a = torch.cat(
        [
            torch.rand(n, 3, generator=g, dtype=torch.float64) * 4 - 2,
            0.05 + torch.rand(n, 3, generator=g, dtype=torch.float64),
            (torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5) * 8,
        ],
        1,
    )
    b = a.clone()
    b[:, :2] += (torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5) * 1.2
    b[:, 3:5] *= 0.3 + 1.4 * torch.rand(n, 2, generator=g, dtype=torch.float64)
    b[:, 6] += (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * 3
    b[::7, 6] = a[::7, 6]  # parallel edges
    b[::11] = a[::11]  # identical
    want = rotated_iou_paired_diff(a, b, bev=True)
    got = native.rotated_iou_bev(a, b)
    assert got.dtype == torch.float64 and 0.2 < (want > 0).double().mean() < 0.9
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    assert torch.allclose(native.rotated_iou_bev(a.float(), b.float()), want.float(), rtol=0, atol=2e-6)

    # By hand: a unit square and itself turned 45 degrees meet in a regular octagon of area 2(sqrt2 - 1); the same
    # footprint described with yaw + pi, or with yaw + pi/2 and swapped sides, is IoU 1; a 1 x 1 inside a 2 x 2 is
    # 1/4; side by side, touching, and a zero-width box are 0.
    sq = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    octagon = 2 * (math.sqrt(2) - 1)
    cases = [
        (sq, [0, 0, 0, 1, 1, 1, math.pi / 4], octagon / (2 - octagon)),
        ([1, 2, 0, 2, 1, 1, 0.3], [1, 2, 5, 2, 1, 3, 0.3 + math.pi], 1.0),
        ([1, 2, 0, 2, 1, 1, 0.3], [1, 2, 0, 1, 2, 1, 0.3 + math.pi / 2], 1.0),
        (sq, [0.2, -0.3, 0, 2, 2, 1, 0.0], 0.25),
        (sq, [1.0, 0, 0, 1, 1, 1, 0.0], 0.0),
        (sq, [5.0, 5, 0, 1, 1, 1, 1.0], 0.0),
        (sq, [0.0, 0, 0, 0, 1, 1, 0.0], 0.0),
    ]
    got = native.rotated_iou_bev(
        torch.tensor([c[0] for c in cases], dtype=torch.float64),
        torch.tensor([c[1] for c in cases], dtype=torch.float64),
    )
    assert torch.allclose(got, torch.tensor([c[2] for c in cases], dtype=torch.float64), rtol=0, atol=1e-12)
    assert native.rotated_iou_bev(torch.zeros(0, 7), torch.zeros(0, 7)).shape == (0,)


@pytest.mark.parametrize("in_stride", [1, 4])
def test_max_pool_matches_dense_and_routes_ties_to_the_first_child(monkeypatch, in_stride):
    from sparse_dense_ref import random_coords, ref_max_pool

    from sr3d_core.sparse import SparseMaxPool3d, from_coords
    from sr3d_core.sparse import torch_backend as tb

    calls = []
    pool_grad = native.max_pool_grad
    monkeypatch.setattr(native, "max_pool_grad", lambda *a: calls.append(1) or pool_grad(*a))
    c = random_coords(600, 10, 2, in_stride, seed=in_stride)
    x, _ = from_coords(
        c, torch.randn(len(c), 16, generator=torch.Generator().manual_seed(3)), batch_size=2, stride=in_stride
    )
    feats = x.feats.detach().clone().requires_grad_(True)
    y = SparseMaxPool3d(2, 2)(x.replace(feats))
    ref = ref_max_pool(x.coords, feats.double(), in_stride, y.coords, 2)
    assert torch.equal(y.feats.double(), ref)  # a max is exact
    g = torch.randn(y.feats.shape, generator=torch.Generator().manual_seed(4))
    gx = torch.autograd.grad((y.feats * g).sum(), feats)[0]
    gr = torch.autograd.grad((ref * g.double()).sum(), feats)[0]
    assert torch.equal(gx.double(), gr) and calls == [1]

    # Ties (ReLU zeros, equal values): the whole gradient goes to the first child in row order, as in
    # MinkowskiEngine, where the PyTorch path shares it among the tied children.
    _, parent = tb._down(x)
    tied = feats.detach().clone()
    tied[:, :4] = 0.0
    out, arg = native.max_pool(tied, parent, len(y))
    first = torch.full((len(y),), len(c)).scatter_reduce(0, parent, torch.arange(len(c)), "amin")
    assert torch.equal(arg[:, 0].long(), first) and (out[:, :4] == 0).all()
    gx = native.max_pool_grad(g, arg, len(c))
    assert torch.equal(gx[first, 0], g[:, 0]) and gx[:, 0].count_nonzero() == (g[:, 0] != 0).sum()
    counts = torch.bincount(parent)
    last = int((parent == int(counts.argmax())).nonzero().max())  # the last child of a parent with several
    tied[last, 7] = float("nan")  # a NaN wins, as torch's amax
    assert counts.max() > 1 and native.max_pool(tied, parent, len(y))[0][parent[last], 7].isnan()
