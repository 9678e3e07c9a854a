"""Every sparse op of the torch backend against a dense torch.nn.functional reference (float64).

Forward values, output coordinate sets, input gradients and weight gradients, at 1 and 2 threads.
"""

from __future__ import annotations

import pytest
import torch
from sparse_dense_ref import expected_down, random_coords, ref_conv, ref_conv_transpose, ref_max_pool

from sr3d_core.sparse import (
    FoldedConv,
    SparseBatchNorm,
    SparseConv3d,
    SparseGenerativeConvTranspose3d,
    SparseMaxPool3d,
    SparseReLU,
    fold_batch_norms,
    from_coords,
    prune,
)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(old)


@pytest.fixture(params=["gather", "offsets-dense", "offsets-pairs", "auto"])
def conv_algorithm(request, monkeypatch):
    """Every way the torch backend can run a convolution (offsets: every offset dense, or every one by pairs)."""
    from sr3d_core.sparse import torch_backend as tb

    name = request.param.split("-")[0]
    monkeypatch.setattr(tb, "_conv_algorithm", name)
    if request.param == "offsets-dense":
        monkeypatch.setattr(tb, "_DENSE_FRACTION", 0.0)
    elif request.param == "offsets-pairs":
        monkeypatch.setattr(tb, "_DENSE_FRACTION", 2.0)
    return request.param


def _input(n=400, extent=10, batch_size=2, stride=1, channels=4, seed=0):
    c = random_coords(n, extent, batch_size, stride, seed)
    f = torch.randn(len(c), channels, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    x, _ = from_coords(c, f, batch_size=batch_size, stride=stride)
    feats = x.feats.detach().clone().requires_grad_(True)
    return x.replace(feats), feats


def _grads(out_sparse, out_ref, feats, weight):
    """Backprop the same random cotangent through both paths; return (sparse grads, reference grads)."""
    g = torch.randn(out_sparse.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    gs = torch.autograd.grad((out_sparse * g).sum(), [feats, weight])
    gr = torch.autograd.grad((out_ref * g).sum(), [feats, weight])
    return gs, gr


def _coord_set(t):
    return set(map(tuple, t.tolist()))


@pytest.mark.parametrize(
    "ks,stride,in_stride", [(3, 1, 1), (3, 2, 1), (3, 2, 4), (1, 2, 2), (1, 1, 1), (2, 2, 1), (5, 1, 2)]
)
def test_conv_matches_dense(threads, conv_algorithm, ks, stride, in_stride):
    x, feats = _input(stride=in_stride, seed=ks * 10 + stride)
    conv = SparseConv3d(4, 5, ks, stride).double()
    y = conv(x)
    assert y.stride == in_stride * stride
    if stride == 1:
        assert torch.equal(y.coords, x.coords)
    else:
        assert _coord_set(y.coords) == expected_down(x.coords, in_stride * stride)
        assert len(y) == len(_coord_set(y.coords))
    ref = ref_conv(x.coords, feats, conv.weight, ks, stride, in_stride, y.coords, x.batch_size)
    torch.testing.assert_close(y.feats, ref, rtol=1e-10, atol=1e-10)
    (gx, gw), (rx, rw) = _grads(y.feats, ref, feats, conv.weight)
    torch.testing.assert_close(gx, rx, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gw, rw, rtol=1e-10, atol=1e-10)


def test_conv_bias_pointwise(threads):
    x, feats = _input(seed=3)
    conv = SparseConv3d(4, 3, 1, 1, bias=True).double()
    y = conv(x)
    torch.testing.assert_close(y.feats, feats @ conv.weight[0] + conv.bias)


@pytest.mark.parametrize("in_stride", [2, 8])
def test_generative_transpose_matches_dense(threads, in_stride):
    x, feats = _input(n=150, extent=8, stride=in_stride, seed=in_stride)
    tconv = SparseGenerativeConvTranspose3d(4, 5, 3, 2).double()
    y = tconv(x)
    s = in_stride // 2
    assert y.stride == s
    expected = {
        (b, x_ + dx * s, y_ + dy * s, z_ + dz * s)
        for b, x_, y_, z_ in x.coords.tolist()
        for dx in (-1, 0, 1)
        for dy in (-1, 0, 1)
        for dz in (-1, 0, 1)
    }
    assert _coord_set(y.coords) == expected and len(y) == len(expected)
    ref = ref_conv_transpose(x.coords, feats, tconv.weight, 3, in_stride, y.coords, x.batch_size)
    torch.testing.assert_close(y.feats, ref, rtol=1e-10, atol=1e-10)
    (gx, gw), (rx, rw) = _grads(y.feats, ref, feats, tconv.weight)
    torch.testing.assert_close(gx, rx, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gw, rw, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("in_stride", [1, 4])
def test_max_pool_matches_dense(threads, in_stride):
    x, feats = _input(stride=in_stride, seed=11)
    y = SparseMaxPool3d(2, 2)(x)
    assert y.stride == 2 * in_stride
    assert _coord_set(y.coords) == expected_down(x.coords, 2 * in_stride)
    ref = ref_max_pool(x.coords, feats, in_stride, y.coords, x.batch_size)
    torch.testing.assert_close(y.feats, ref)
    g = torch.randn(y.feats.shape, dtype=torch.float64)
    gs = torch.autograd.grad((y.feats * g).sum(), feats)[0]
    gr = torch.autograd.grad((ref * g).sum(), feats)[0]
    torch.testing.assert_close(gs, gr)


def test_union_addition_brute_force():
    a, fa = _input(n=200, seed=1)
    b0, _ = _input(n=200, seed=2)
    # b must share a's manager: derive it from a (a generative upsample of a's downsample gives other sites).
    down = SparseConv3d(4, 4, 3, 2).double()(a)
    b = SparseGenerativeConvTranspose3d(4, 4, 3, 2).double()(down)
    s = a + b
    expected = {}
    for c, f in zip(a.coords.tolist(), a.feats.tolist()):
        expected[tuple(c)] = torch.tensor(f, dtype=torch.float64)
    for c, f in zip(b.coords.tolist(), b.feats.tolist()):
        expected[tuple(c)] = expected.get(tuple(c), 0) + torch.tensor(f, dtype=torch.float64)
    assert _coord_set(s.coords) == set(expected) and len(s) == len(expected)
    got = {tuple(c): f for c, f in zip(s.coords.tolist(), s.feats)}
    for c, f in expected.items():
        torch.testing.assert_close(got[c], f)
    # Backward: each input row receives the cotangent of its own site in the sum (written in place into the
    # union's zeros, so this checks autograd follows the in-place sums).
    ta, tb = (t.replace(t.feats.detach().requires_grad_(True)) for t in (a, b))  # b depends on a: cut that path
    g = torch.randn(s.feats.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    grad_a, grad_b = torch.autograd.grad(((ta + tb).feats * g).sum(), [ta.feats, tb.feats])
    row = {tuple(c): i for i, c in enumerate(s.coords.tolist())}
    torch.testing.assert_close(grad_a, g[[row[tuple(c)] for c in a.coords.tolist()]])
    torch.testing.assert_close(grad_b, g[[row[tuple(c)] for c in b.coords.tolist()]])
    # Same coordinate set: plain feature sum, coordinates unchanged.
    s2 = a + a
    assert torch.equal(s2.coords, a.coords)
    torch.testing.assert_close(s2.feats, 2 * a.feats)


def test_add_errors():
    a, _ = _input(seed=1)
    b, _ = _input(seed=2)
    with pytest.raises(ValueError, match="same input"):
        _ = a + b
    d = SparseMaxPool3d()(a)
    with pytest.raises(ValueError, match="strides"):
        _ = a + d


def test_batch_norm_and_relu():
    x, feats = _input(seed=5)
    bn = SparseBatchNorm(4).double()
    y = SparseReLU()(bn(x))
    ref = torch.relu(torch.nn.functional.batch_norm(feats, None, None, training=True, eps=1e-5))
    torch.testing.assert_close(y.feats, ref)
    assert torch.equal(y.coords, x.coords)
    torch.testing.assert_close(bn.bn.running_mean, 0.1 * feats.mean(0).detach())


def test_prune():
    x, feats = _input(seed=6)
    mask = x.feats[:, 0] > 0
    y = prune(x, mask)
    assert torch.equal(y.coords, x.coords[mask])
    assert torch.equal(y.feats, x.feats[mask])
    # The pruned set is a valid input for further ops.
    SparseConv3d(4, 2, 3, 1).double()(y)
    with pytest.raises(ValueError, match="mask"):
        prune(x, mask.long())


def test_no_cross_talk_between_scenes():
    """A scene's output does not depend on another scene in the batch."""
    c0 = random_coords(200, 8, 1, seed=1)
    c1 = random_coords(200, 8, 1, seed=2)  # overlapping xyz, different scene
    f0 = torch.randn(len(c0), 4, dtype=torch.float64)
    f1 = torch.randn(len(c1), 4, dtype=torch.float64)
    c1b = c1.clone()
    c1b[:, 0] = 1
    net = torch.nn.ModuleList(
        [SparseConv3d(4, 4, 3, 2), SparseConv3d(4, 4, 3, 1), SparseGenerativeConvTranspose3d(4, 4, 3, 2)]
    ).double()

    def run(c, f, bs):
        x, perm = from_coords(c, f, batch_size=bs)
        for m in net:
            x = m(x)
        return x

    both = run(torch.cat([c0, c1b]), torch.cat([f0, f1]), 2)
    alone = run(c0, f0, 1)
    sel = both.coords[:, 0] == 0
    assert torch.equal(both.coords[sel], alone.coords)
    torch.testing.assert_close(both.feats[sel], alone.feats)


def test_kernel_map_built_once_and_reused():
    x, feats = _input(seed=8)
    convs = [SparseConv3d(4, 4, 3, 1).double() for _ in range(3)]
    y = x
    for c in convs:
        y = c(y)
    assert x.manager.num_map_builds == 1
    down1 = SparseConv3d(4, 4, 3, 2).double()(y)
    down2 = SparseConv3d(4, 4, 1, 2).double()(y)  # shortcut: same output set, its own k1 map
    assert down1.set_id == down2.set_id
    assert x.manager.num_map_builds == 3
    (y.feats.sum() + down1.feats.sum() + down2.feats.sum()).backward()
    assert x.manager.num_map_builds == 3  # backward reuses the cached maps


@pytest.mark.parametrize("ks,in_stride,down", [(3, 1, False), (3, 2, True), (1, 2, True), (2, 1, True), (5, 1, False)])
def test_kernel_map_paths_agree(monkeypatch, ks, in_stride, down):
    """The compiled merge, the dense-table look-up and the sorted-key search give identical tables, transposed
    tables included (the tests above run the compiled path where it builds)."""
    from sr3d_core.sparse import kernel_map as km
    from sr3d_core.sparse import native

    x, _ = _input(n=600, extent=12, batch_size=3, stride=in_stride, seed=ks)
    src = x.manager.get_set(x.set_id)
    dst = km.downsample(src, 2)[0] if down else src
    maps = {}
    monkeypatch.setattr(native.extension, "_enabled", False)
    maps["grid"] = km.build_kernel_map(src, dst, ks)
    monkeypatch.setattr(km, "_GRID_MAX_CELLS", 0)
    maps["search"] = km.build_kernel_map(src, dst, ks)
    if native.available(src.keys):
        monkeypatch.setattr(native.extension, "_enabled", True)
        maps["native"] = km.build_kernel_map(src, dst, ks)
        was = torch.get_num_threads()
        try:  # every compiled call split over three threads, whatever its size
            torch.set_num_threads(3)
            with native.extension.parallel_thresholds(0.0):
                split_dst = km.downsample(src, 2)[0] if down else src
                assert torch.equal(split_dst.keys, dst.keys)
                maps["native, split"] = km.build_kernel_map(src, split_dst, ks)
        finally:
            torch.set_num_threads(was)
    ref = maps["grid"]
    assert 0 < sum(ref.counts()) < ref.kernel_volume * ref.n_out
    for name, kmap in maps.items():
        assert kmap.symmetric == ref.symmetric and torch.equal(kmap.cols, ref.cols), name
        transposed = kmap.transposed_cols()
        monkeypatch.setattr(native.extension, "_enabled", False)
        ref_t = km.build_kernel_map(src, dst, ks).transposed_cols()
        monkeypatch.setattr(native.extension, "_enabled", name == "native")
        assert torch.equal(transposed, ref_t), name


@pytest.mark.parametrize("ks,spacing", [(3, 1), (1, 2), (2, 1)])
def test_conv_full_offsets_dense_block(conv_algorithm, ks, spacing):
    """A solid block makes whole offsets cover every row (the gather/scatter-free branch), fwd and bwd."""
    r = torch.arange(6) * spacing
    grid = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    c = torch.cat([torch.zeros(len(grid), 1, dtype=torch.long), grid], 1)
    f = torch.randn(len(c), 4, dtype=torch.float64)
    x, _ = from_coords(c, f)
    feats = x.feats.detach().clone().requires_grad_(True)
    x = x.replace(feats)
    conv = SparseConv3d(4, 3, ks, 2).double()
    y = conv(x)
    kmap = next(iter(x.manager._maps.values()))
    assert any(o.numel() == kmap.n_out for _, _, o in kmap.pairs())
    ref = ref_conv(x.coords, feats, conv.weight, ks, 2, 1, y.coords, 1)
    torch.testing.assert_close(y.feats, ref, rtol=1e-10, atol=1e-10)
    (gx, gw), (rx, rw) = _grads(y.feats, ref, feats, conv.weight)
    torch.testing.assert_close(gx, rx, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gw, rw, rtol=1e-10, atol=1e-10)


def test_state_dict_accepts_minkowski_names():
    """ME checkpoints name the weight `kernel`, store a bias as (1, out) and a k1 s1 kernel as (in, out)."""
    conv = SparseConv3d(4, 3, 1, 1, bias=True)
    sd = {"kernel": torch.randn(4, 3), "bias": torch.randn(1, 3)}
    conv.load_state_dict(sd)
    assert torch.equal(conv.weight[0], sd["kernel"]) and torch.equal(conv.bias, sd["bias"][0])
    assert conv.kernel is conv.weight
    conv3 = SparseConv3d(4, 3, 3, 2)
    w = torch.randn(27, 4, 3)
    conv3.load_state_dict({"kernel": w})
    assert torch.equal(conv3.weight, w)


def test_conv_algorithm_name_is_checked():
    from sr3d_core.sparse import torch_backend as tb

    with pytest.raises(ValueError, match="unknown conv algorithm 'im2col'"):
        tb.set_conv_algorithm("im2col")


def test_transposed_table_inverts_the_map():
    """Input i feeds output o under k exactly when cols[k, o] == i, for a strided and a submanifold map."""
    from sr3d_core.sparse import kernel_map as km

    x, _ = _input(n=300, extent=8, batch_size=2, seed=11)
    src = x.manager.get_set(x.set_id)
    for dst, ks in ((km.downsample(src, 2)[0], 3), (src, 3), (km.downsample(src, 2)[0], 2)):
        kmap = km.build_kernel_map(src, dst, ks)
        t = kmap.table(transposed=True)
        expected = {
            (int(i), k, o) for o, row in enumerate(kmap.table().tolist()) for k, i in enumerate(row) if i < kmap.n_in
        }
        got = {(i, k, int(o)) for i, row in enumerate(t.tolist()) for k, o in enumerate(row) if o < kmap.n_out}
        assert got == expected and len(expected) == sum(kmap.counts())
        for k in range(kmap.kernel_volume):
            assert torch.equal(kmap.column(k, transposed=True), t[:, k])


@pytest.mark.parametrize("in_stride,factor", [(1, 2), (2, 2), (4, 2), (1, 8), (1, 3)])
def test_downsample_matches_the_floor_rule(in_stride, factor):
    """unique(floor(c / S) * S) (S = in_stride * factor), also for negative coordinates, the edge of the packable
    range, and a stride that is not a power of two (the unpacked path)."""
    from sr3d_core.sparse import kernel_map as km
    from sr3d_core.sparse.coords import COORD_LIMIT, CoordSet, pack

    c = random_coords(600, 40, 3, in_stride, seed=factor, lo=-20)
    edge = (COORD_LIMIT // in_stride) * in_stride
    c = torch.unique(torch.cat([c, torch.tensor([[0, -edge, edge, -edge], [2, edge, -edge, edge]])]), dim=0)
    keys, order = torch.sort(pack(c))
    src = CoordSet(c[order], keys, in_stride)
    out, parent = km.downsample(src, factor)
    s = in_stride * factor
    expected = src.coords.clone()
    expected[:, 1:] = torch.div(expected[:, 1:], s, rounding_mode="floor") * s
    assert out.stride == s and _coord_set(out.coords) == _coord_set(expected) and len(out.coords) == len(out.keys)
    assert torch.equal(out.coords[parent], expected) and torch.equal(out.keys, pack(out.coords))


def test_pack_unpack_round_trip_at_the_range_limits():
    """unpack inverts pack over the whole packable range, down to the extreme batch index and coordinates, and a
    derived set's lazily unpacked coordinates are its keys' coordinates."""
    from sr3d_core.sparse.coords import COORD_LIMIT, MAX_BATCH, pack, unpack

    g = torch.Generator().manual_seed(0)
    c = torch.randint(-COORD_LIMIT, COORD_LIMIT + 1, (5000, 4), generator=g)
    c[:, 0] = torch.randint(0, MAX_BATCH + 1, (5000,), generator=g)
    c[:4] = torch.tensor(
        [
            [0, 0, 0, 0],
            [MAX_BATCH, -COORD_LIMIT, COORD_LIMIT, -COORD_LIMIT],
            [MAX_BATCH, COORD_LIMIT, -COORD_LIMIT, COORD_LIMIT],
            [1, -1, -1, -1],
        ]
    )
    assert torch.equal(unpack(pack(c)), c)
    x, _ = _input(n=200, extent=12, seed=3)
    down = SparseMaxPool3d(2, 2)(x)
    assert _coord_set(down.coords) == expected_down(x.coords, 2)
    assert torch.equal(pack(down.coords), x.manager.get_set(down.set_id).keys)


@pytest.mark.parametrize("kind", ["conv3", "conv3s2", "conv1", "transpose"])
def test_inference_conv_equals_the_autograd_path(threads, conv_algorithm, kind):
    """Without a recorded gradient the conv skips the autograd Function; the result is the same, bit for bit, on
    every algorithm (float32, so the compiled kernels run where they apply)."""
    in_stride = 2 if kind == "transpose" else 1
    x, _ = _input(n=300, extent=9, stride=in_stride, channels=8, seed=5)
    x = x.replace(x.feats.detach().float())
    torch.manual_seed(0)
    conv = {
        "conv3": SparseConv3d(8, 16, 3, 1, bias=True),
        "conv3s2": SparseConv3d(8, 16, 3, 2),
        "conv1": SparseConv3d(8, 16, 1, 1, bias=True),
        "transpose": SparseGenerativeConvTranspose3d(8, 16, 3, 2, bias=True),
    }[kind]
    recorded = conv(x.replace(x.feats.clone().requires_grad_(True)))
    assert recorded.feats.requires_grad
    with torch.no_grad():
        bare = conv(x)
    assert not bare.feats.requires_grad
    assert torch.equal(bare.feats, recorded.feats.detach())
    assert torch.equal(bare.coords, recorded.coords)


def _chain(conv, relu, seed):
    """conv + batch norm with non-trivial statistics and affine parameters (+ ReLU), in eval mode."""
    g = torch.Generator().manual_seed(seed)
    bn = SparseBatchNorm(conv.out_ch)
    with torch.no_grad():
        bn.bn.running_mean.copy_(torch.randn(conv.out_ch, generator=g))
        bn.bn.running_var.copy_(torch.rand(conv.out_ch, generator=g) * 3 + 0.1)
        bn.bn.weight.copy_(torch.randn(conv.out_ch, generator=g))
        bn.bn.bias.copy_(torch.randn(conv.out_ch, generator=g))
    layers = [conv, bn] + ([SparseReLU()] if relu else [])
    return torch.nn.Sequential(*layers).eval()


@pytest.mark.parametrize(
    "kind,relu", [("conv3", True), ("conv3s2", False), ("conv1", True), ("transpose", True), ("conv3bias", False)]
)
def test_fold_batch_norms_matches_the_unfolded_chain(threads, kind, relu):
    in_stride = 2 if kind == "transpose" else 1
    x, _ = _input(n=300, extent=9, stride=in_stride, channels=8, seed=6)
    x = x.replace(x.feats.detach().float())
    torch.manual_seed(1)
    conv = {
        "conv3": SparseConv3d(8, 16, 3, 1),
        "conv3s2": SparseConv3d(8, 16, 3, 2),
        "conv1": SparseConv3d(8, 16, 1, 1),
        "transpose": SparseGenerativeConvTranspose3d(8, 16, 3, 2),
        "conv3bias": SparseConv3d(8, 16, 3, 1, bias=True),
    }[kind]
    model = torch.nn.Sequential(_chain(conv, relu, seed=2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    folded = fold_batch_norms(model)
    assert torch.equal(torch.get_rng_state(), rng), "folding drew from torch's RNG"
    assert isinstance(folded[0], FoldedConv) and folded[0].relu == relu
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the original was changed"
    with torch.no_grad():
        want, got = model(x), folded(x)
    assert torch.equal(got.coords, want.coords)
    torch.testing.assert_close(got.feats, want.feats, rtol=1e-5, atol=1e-5)
    if relu:
        assert bool((got.feats == 0).any()) and bool((got.feats >= 0).all())


def test_fold_batch_norms_by_hand():
    """One voxel, a 1 x 1 x 1 conv of 2 -> 1 channels: y = ((x . w) - mean) * gamma / sqrt(var + eps) + beta."""
    x, _ = from_coords(torch.tensor([[0, 0, 0, 0]]), torch.tensor([[1.0, 2.0]]), batch_size=1)
    conv = SparseConv3d(2, 1, 1, 1)
    bn = SparseBatchNorm(1, eps=0.0)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[3.0], [-1.0]]]))  # x . w = 1
        bn.bn.running_mean.fill_(-3.0)
        bn.bn.running_var.fill_(16.0)
        bn.bn.weight.fill_(2.0)
        bn.bn.bias.fill_(0.5)
    folded = fold_batch_norms(torch.nn.Sequential(conv, bn).eval())
    assert isinstance(folded, FoldedConv) and not folded.relu
    assert folded.conv.weight.flatten().tolist() == [1.5, -0.5]  # w * 2 / 4
    assert folded.conv.bias.tolist() == [2.0]  # (0 - (-3)) * 2 / 4 + 0.5
    with torch.no_grad():
        assert folded(x).feats.item() == 2.5  # (1 + 3) * 2 / 4 + 0.5


def test_generative_upsample_at_the_range_limit():
    """Children are keys plus offsets: right up to the packable range they equal packed child coordinates, and a
    child beyond it is reported as before."""
    from sr3d_core.sparse import kernel_map as km
    from sr3d_core.sparse.coords import COORD_LIMIT, CoordSet, pack

    assert COORD_LIMIT % 2 == 0
    edge = COORD_LIMIT - 2  # stride 2: even coordinates; the children reach COORD_LIMIT - 1
    inside = torch.tensor([[0, edge, -edge, 0], [1, 0, 2, -edge]])
    keys = torch.sort(pack(inside)).values
    up, child = km.generative_upsample(CoordSet(None, keys, 2), 3, 2)
    want = {
        (b, x + dx, y + dy, z + dz)
        for b, x, y, z in inside.tolist()
        for dx in (-1, 0, 1)
        for dy in (-1, 0, 1)
        for dz in (-1, 0, 1)
    }
    assert _coord_set(up.coords) == want and len(up.keys) == 54
    assert torch.equal(up.keys, pack(up.coords))
    assert torch.equal(up.keys[child], pack(up.coords[child.reshape(-1)]).reshape(2, 27))
    over = torch.tensor([[0, COORD_LIMIT, 0, 0]])  # a child at COORD_LIMIT + 1
    with pytest.raises(ValueError, match="generative transposed conv output out of range"):
        km.generative_upsample(CoordSet(None, pack(over), 2), 3, 2)


def test_from_coords_of_sorted_coordinates_keeps_the_rows():
    """Coordinates already in key order come back row for row (identity permutation), as the sorting path would
    order them; a duplicate still raises, in order or not."""
    c = random_coords(300, 9, batch_size=2, seed=4)
    f = torch.randn(len(c), 3, generator=torch.Generator().manual_seed(5))
    shuffled = torch.randperm(len(c), generator=torch.Generator().manual_seed(6))
    x_sorted, perm = from_coords(c[shuffled], f[shuffled])  # the sorting path
    assert not torch.equal(perm, torch.arange(len(c)))
    again, identity = from_coords(x_sorted.coords, x_sorted.feats)
    assert torch.equal(identity, torch.arange(len(c)))
    assert torch.equal(again.coords, x_sorted.coords) and torch.equal(again.feats, x_sorted.feats)
    assert again.batch_size == 2
    w = SparseConv3d(3, 4, 3, 1)
    torch.testing.assert_close(w(again).feats, w(x_sorted).feats, rtol=0, atol=0)
    dup = torch.cat([x_sorted.coords[:5], x_sorted.coords[4:5], x_sorted.coords[5:]])
    with pytest.raises(ValueError, match="unique"):
        from_coords(dup, torch.zeros(len(dup), 3))
