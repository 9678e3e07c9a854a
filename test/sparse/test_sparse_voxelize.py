"""voxelize, input validation, empty scenes and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr3d_core.sparse import (
    SparseBatchNorm,
    SparseConv3d,
    SparseGenerativeConvTranspose3d,
    SparseMaxPool3d,
    SparseReLU,
    SparseTensor,
    from_coords,
    voxelize,
)


def _scene(n, seed, extent=0.3):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=g) * extent - extent / 3
    feats = torch.rand(n, 3, generator=g)
    return xyz, feats


def _brute(points, voxel):
    """dict voxel coordinate -> list of (global point index, feats)."""
    groups, idx = {}, 0
    for b, (xyz, f) in enumerate(points):
        for p, q in zip(xyz.tolist(), f):
            key = (b, *(math.floor(v / voxel) for v in p))
            groups.setdefault(key, []).append((idx, q))
            idx += 1
    return groups


def test_voxelize_mean_and_point2voxel():
    points = [_scene(500, 1), _scene(300, 2)]
    x, p2v = voxelize(points, 0.05, reduce="mean")
    groups = _brute(points, 0.05)
    assert isinstance(x, SparseTensor) and x.stride == 1 and x.batch_size == 2
    coords = [tuple(c) for c in x.coords.tolist()]
    assert set(coords) == set(groups) and len(coords) == len(groups)
    for row, key in enumerate(coords):
        members = groups[key]
        torch.testing.assert_close(x.feats[row], torch.stack([f for _, f in members]).mean(0))
        for i, _ in members:
            assert int(p2v[i]) == row


def test_voxelize_random_is_a_member_and_seeded():
    points = [_scene(800, 3)]
    x1, p1 = voxelize(points, 0.05, reduce="random", seed=5)
    x2, p2 = voxelize(points, 0.05, reduce="random", seed=5)
    assert torch.equal(x1.coords, x2.coords) and torch.equal(x1.feats, x2.feats) and torch.equal(p1, p2)
    groups = _brute(points, 0.05)
    for row, key in enumerate(map(tuple, x1.coords.tolist())):
        assert any(torch.equal(x1.feats[row], f) for _, f in groups[key])
    x3, _ = voxelize(points, 0.05, reduce="random", seed=6)
    assert not torch.equal(x1.feats, x3.feats)  # 800 points in few voxels: a different seed picks differently


def test_seeded_pick_is_the_point_of_highest_seeded_priority():
    # Reference: priorities = randperm(n) from a generator seeded with the seed; each voxel keeps its point of
    # highest priority. Asked again (the seeded draw is kept between calls), the same points win.
    xyz, feats = _scene(800, 3)
    feats = torch.arange(800, dtype=torch.float32)[:, None].expand(800, 3).contiguous()  # feature = point index
    prio = torch.randperm(800, generator=torch.Generator().manual_seed(5))
    for _ in range(2):
        x, p2v = voxelize([(xyz, feats)], 0.05, reduce="random", seed=5)
        voxelize([(xyz, feats)], 0.05, reduce="random")  # an unseeded call in between
        for row in range(x.feats.shape[0]):
            members = (p2v == row).nonzero().squeeze(1)
            assert int(x.feats[row, 0]) == int(members[prio[members].argmax()])


def test_determinism_through_a_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(SparseConv3d(3, 8, 3, 2), SparseBatchNorm(8), SparseReLU(), SparseConv3d(8, 8, 3, 1))
    points = [_scene(2000, 4, extent=1.0)]
    outs = [net(voxelize(points, 0.02, seed=1)[0]) for _ in range(2)]
    assert torch.equal(outs[0].coords, outs[1].coords) and torch.equal(outs[0].feats, outs[1].feats)


@pytest.mark.parametrize(
    "bad,match",
    [
        ([], "non-empty"),
        ([(torch.zeros(3, 3), torch.zeros(4, 3))], "mismatched"),
        ([(torch.zeros(3, 2), torch.zeros(3, 3))], r"\(N, 3\)"),
        ([(torch.zeros(3, 3, dtype=torch.long), torch.zeros(3, 3))], "float"),
        ([(torch.tensor([[float("nan"), 0.0, 0.0]]), torch.zeros(1, 3))], "NaN"),
        ([(torch.tensor([[1e6, 0.0, 0.0]]), torch.zeros(1, 3))], "range"),
    ],
)
def test_voxelize_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        voxelize(bad, 0.01)


def test_voxelize_bad_args():
    with pytest.raises(ValueError, match="reduce"):
        voxelize([_scene(3, 0)], 0.01, reduce="max")
    with pytest.raises(ValueError, match="voxel_size"):
        voxelize([_scene(3, 0)], 0.0)


def _millimetre_grid(n: int = 20000, seed: int = 0):
    """Points on a 1 mm grid (each coordinate the float32 nearest to a whole number of millimetres), room-sized."""
    rng = np.random.default_rng(seed)
    xyz = (rng.integers(-3000, 6000, (n, 3)) * 0.001).astype(np.float32)
    return xyz, rng.uniform(0, 1, (n, 3)).astype(np.float32)


@pytest.mark.parametrize("voxel", [0.01, 0.02, 0.05])
@pytest.mark.parametrize("compiled", [False, True])
def test_quantize_dtype_arithmetic_on_a_millimetre_grid(monkeypatch, voxel, compiled):
    """Each quantization gives, point for point, the voxel an independent numpy computation in that arithmetic gives;
    the default is float64."""
    from sr3d_core.sparse import native
    from sr3d_core.sparse.voxelize import voxelize_coords

    monkeypatch.setattr(native.extension, "_enabled", compiled)
    xyz, rgb = _millimetre_grid()
    want = {
        "float64": np.floor(xyz.astype(np.float64) / voxel),
        "float32": np.floor(xyz / np.float32(voxel)),  # float32 / float32
        "float32_reciprocal": np.floor(xyz * (np.float32(1.0) / np.float32(voxel))),  # float32 * float32
    }
    assert want["float32"].dtype == want["float32_reciprocal"].dtype == np.float32
    # The grid reaches the cases where the arithmetic matters: each pair of them disagrees on some coordinates.
    assert (want["float64"] != want["float32"]).mean() > 0.002
    assert (want["float32"] != want["float32_reciprocal"]).any()
    points = [(torch.from_numpy(xyz), torch.from_numpy(rgb))]
    for dtype, expected in (*want.items(), (None, want["float64"])):
        kw = {} if dtype is None else {"quantize_dtype": dtype}
        coords, _, _, p2v = voxelize_coords(points, voxel, "random", seed=0, **kw)
        assert np.array_equal(coords[p2v, 1:].numpy(), expected.astype(np.int64)), dtype


def test_unknown_quantize_dtype_is_named():
    with pytest.raises(
        ValueError, match="quantize_dtype must be one of 'float64', 'float32', 'float32_reciprocal', " "got 'float16'"
    ):
        voxelize([_scene(3, 0)], 0.01, quantize_dtype="float16")


def test_from_coords_errors():
    f = torch.zeros(2, 1)
    with pytest.raises(ValueError, match="integer"):
        from_coords(torch.zeros(2, 4), f)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        from_coords(torch.zeros(2, 3, dtype=torch.long), f)
    with pytest.raises(ValueError, match="range"):
        from_coords(torch.tensor([[0, 0, 0, 0], [0, 10**6, 0, 0]]), f)
    with pytest.raises(ValueError, match="unique"):
        from_coords(torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]), f)
    with pytest.raises(ValueError, match="multiples"):
        from_coords(torch.tensor([[0, 1, 2, 3], [0, 2, 2, 4]]), f, stride=2)
    with pytest.raises(ValueError, match="feats"):
        from_coords(torch.tensor([[0, 1, 2, 3]]), f)
    with pytest.raises(ValueError, match="channels"):
        SparseConv3d(2, 2)(from_coords(torch.tensor([[0, 1, 2, 3]]), torch.zeros(1, 3))[0])


def test_empty_scene_and_empty_batch_flow_through():
    """An empty scene in a batch, and an all-empty batch, go through every op forward and backward."""
    torch.manual_seed(0)
    net = torch.nn.ModuleList(
        [
            SparseConv3d(3, 8, 3, 2),
            SparseBatchNorm(8),
            SparseReLU(),
            SparseMaxPool3d(),
            SparseConv3d(8, 8, 3, 1),
            SparseConv3d(8, 8, 1, 2),
            SparseGenerativeConvTranspose3d(8, 8, 3, 2),
            SparseConv3d(8, 2, 1, 1, bias=True),
        ]
    )
    empty = (torch.zeros(0, 3), torch.zeros(0, 3))
    for points in ([empty], [empty, _scene(500, 9)], [_scene(500, 9), empty]):
        x, p2v = voxelize(points, 0.02)
        assert x.batch_size == len(points)
        y = x
        for m in net:
            y = m(y)
        if all(len(p[0]) == 0 for p in points):
            assert len(y) == 0 and y.feats.shape == (0, 2) and p2v.numel() == 0
        y.feats.sum().backward()
        for p in net.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all()
        net.zero_grad()


def test_single_voxel_batch_norm_training():
    x, _ = from_coords(torch.tensor([[0, 0, 0, 0]]), torch.ones(1, 4))
    y = SparseBatchNorm(4)(x)
    assert torch.equal(y.feats, torch.zeros(1, 4))
