"""Exact IoU against independent references: shapely polygon clipping and brute-force interval formulas."""

import itertools

import numpy as np
import pytest
import torch
from shapely.geometry import Polygon

from sr3d_core.boxes import bev_corners
from sr3d_core.geometry import (
    axis_aligned_bev_iou,
    axis_aligned_iou_3d,
    bev_iou,
    convex_intersection_area,
    iou_3d,
    rotated_bev_iou,
    rotated_iou_3d,
)


def _rand_boxes(rng, n, spread=2.0, size=(0.05, 2.0)):
    return np.concatenate(
        [rng.uniform(-spread, spread, (n, 3)), rng.uniform(*size, (n, 3)), rng.uniform(-np.pi, np.pi, (n, 1))], 1
    )


def _special_pairs(rng):
    """Pairs covering the degenerate cases: nested, disjoint, touching, identical, parallel edges, tiny."""
    a = _rand_boxes(rng, 200)
    pairs = []
    # identical
    pairs.append((a, a.copy()))
    # nested: same centre and yaw, smaller; and a small box rotated freely deep inside a big one
    b = a.copy()
    b[:, 3:6] *= rng.uniform(0.1, 0.9, (200, 3))
    pairs.append((a, b))
    small = a.copy()
    small[:, 3:6] = 0.2 * a[:, 3:6].min(1, keepdims=True)
    small[:, 6] = rng.uniform(-np.pi, np.pi, 200)
    pairs.append((small, a))
    # disjoint: far apart
    far = a.copy()
    far[:, 0] += 10.0
    pairs.append((a, far))
    # touching faces: shifted by exactly one extent along the heading (same yaw), and along z
    touch = a.copy()
    touch[:, 0] += a[:, 3] * np.cos(a[:, 6])
    touch[:, 1] += a[:, 3] * np.sin(a[:, 6])
    pairs.append((a, touch))
    ztouch = a.copy()
    ztouch[:, 2] += a[:, 5]
    pairs.append((a, ztouch))
    # touching corners: diagonal neighbours
    ct = a.copy()
    hx = np.array([np.cos(a[:, 6]), np.sin(a[:, 6])]).T * a[:, 3:4]
    hy = np.array([-np.sin(a[:, 6]), np.cos(a[:, 6])]).T * a[:, 4:5]
    ct[:, :2] += hx + hy
    pairs.append((a, ct))
    # parallel edges: same yaw or yaw + k*pi/2, partial shifts, some exactly edge-aligned
    par = _rand_boxes(rng, 200, spread=1.0)
    par[:, 6] = a[:, 6] + rng.integers(0, 4, 200) * np.pi / 2
    pairs.append((a, par))
    al = a.copy()
    al[:, 0] += 0.5 * a[:, 3] * np.cos(a[:, 6])
    al[:, 1] += 0.5 * a[:, 3] * np.sin(a[:, 6])
    pairs.append((a, al))  # shares two edge lines with a
    # tiny boxes (1 mm) overlapping each other
    tiny = a.copy()
    tiny[:, 3:6] = rng.uniform(1e-3, 3e-3, (200, 3))
    tiny2 = tiny.copy()
    tiny2[:, :3] += rng.uniform(-1e-3, 1e-3, (200, 3))
    tiny2[:, 6] = rng.uniform(-np.pi, np.pi, 200)
    pairs.append((tiny, tiny2))
    # zero-size boxes
    z = a.copy()
    z[:100, 3] = 0.0
    pairs.append((z, a))
    b1, b2 = zip(*pairs)
    return np.concatenate(b1), np.concatenate(b2)


def _shapely_iou(b1, b2, bev=False):
    c1, c2 = bev_corners(b1), bev_corners(b2)
    out = np.zeros(len(b1))
    for k in range(len(b1)):
        inter = Polygon(c1[k]).intersection(Polygon(c2[k])).area
        if bev:
            m1, m2 = b1[k, 3] * b1[k, 4], b2[k, 3] * b2[k, 4]
        else:
            lo = max(b1[k, 2] - b1[k, 5] / 2, b2[k, 2] - b2[k, 5] / 2)
            hi = min(b1[k, 2] + b1[k, 5] / 2, b2[k, 2] + b2[k, 5] / 2)
            inter *= max(hi - lo, 0.0)
            m1, m2 = np.prod(b1[k, 3:6]), np.prod(b2[k, 3:6])
        union = m1 + m2 - inter
        out[k] = inter / union if union > 0 else 0.0
    return out


def _brute_axis_aligned(b1, b2, dims=3):
    out = np.zeros((len(b1), len(b2)))
    for i, j in itertools.product(range(len(b1)), range(len(b2))):
        inter, m1, m2 = 1.0, 1.0, 1.0
        for d in range(dims):
            lo = max(b1[i, d] - b1[i, 3 + d] / 2, b2[j, d] - b2[j, 3 + d] / 2)
            hi = min(b1[i, d] + b1[i, 3 + d] / 2, b2[j, d] + b2[j, 3 + d] / 2)
            inter *= max(0.0, hi - lo)
            m1 *= b1[i, 3 + d]
            m2 *= b2[j, 3 + d]
        out[i, j] = inter / (m1 + m2 - inter) if m1 + m2 - inter > 0 else 0.0
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_rotated_matches_shapely_random(seed):
    rng = np.random.default_rng(seed)
    b1, b2 = _rand_boxes(rng, 3000, spread=1.0), _rand_boxes(rng, 3000, spread=1.0)
    ref = _shapely_iou(b1, b2)
    assert (ref > 0).mean() > 0.2  # the test exercises real overlaps
    np.testing.assert_allclose(rotated_iou_3d(b1, b2, paired=True), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(rotated_bev_iou(b1, b2, paired=True), _shapely_iou(b1, b2, bev=True), atol=1e-5)


def test_rotated_matches_shapely_special_cases():
    b1, b2 = _special_pairs(np.random.default_rng(2))
    ref = _shapely_iou(b1, b2)
    got = rotated_iou_3d(b1, b2, paired=True)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got[:200], 1.0, atol=1e-12)  # identical
    np.testing.assert_allclose(got[600:800], 0.0, atol=0)  # far apart
    # the swapped order gives the same result (clipping is not symmetric in the code)
    np.testing.assert_allclose(rotated_iou_3d(b2, b1, paired=True), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(rotated_bev_iou(b1, b2, paired=True), _shapely_iou(b1, b2, bev=True), atol=1e-5)


def test_rotated_float32_and_far_from_origin():
    rng = np.random.default_rng(3)
    b1, b2 = _rand_boxes(rng, 1000), _rand_boxes(rng, 1000)
    ref = _shapely_iou(b1, b2)
    got32 = rotated_iou_3d(torch.from_numpy(b1).float(), torch.from_numpy(b2).float(), paired=True)
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), ref, atol=1e-4)
    shift = np.array([1000.0, -500.0, 20.0, 0, 0, 0, 0])
    np.testing.assert_allclose(rotated_iou_3d(b1 + shift, b2 + shift, paired=True), ref, atol=1e-5)


def test_convex_intersection_area_general_polygons():
    # A square clipped by a triangle; both counter-clockwise.
    sq = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]], dtype=torch.float64)
    tri = torch.tensor([[[1.0, -1.0], [3.0, 1.0], [1.0, 3.0]]], dtype=torch.float64)
    ref = Polygon(sq[0].numpy()).intersection(Polygon(tri[0].numpy())).area
    assert convex_intersection_area(sq, tri).item() == pytest.approx(ref, abs=1e-12)
    assert convex_intersection_area(tri, sq).item() == pytest.approx(ref, abs=1e-12)


def test_pairwise_matches_aligned_and_chunking():
    rng = np.random.default_rng(4)
    b1, b2 = _rand_boxes(rng, 40), _rand_boxes(rng, 30)
    full = rotated_iou_3d(b1, b2)
    assert full.shape == (40, 30)
    ii, jj = np.meshgrid(np.arange(40), np.arange(30), indexing="ij")
    np.testing.assert_allclose(
        full.ravel(), rotated_iou_3d(b1[ii.ravel()], b2[jj.ravel()], paired=True), atol=1e-12, rtol=0
    )
    np.testing.assert_allclose(rotated_iou_3d(b1, b2, chunk_pairs=7), full, atol=1e-12, rtol=0)
    np.testing.assert_allclose(full, _shapely_iou(b1[ii.ravel()], b2[jj.ravel()]).reshape(40, 30), atol=1e-5)
    bev = rotated_bev_iou(b1, b2)
    np.testing.assert_allclose(
        bev.ravel(), rotated_bev_iou(b1[ii.ravel()], b2[jj.ravel()], paired=True), atol=1e-12, rtol=0
    )
    aa = axis_aligned_iou_3d(b1, b2, chunk_pairs=5)
    np.testing.assert_allclose(aa.ravel(), axis_aligned_iou_3d(b1[ii.ravel()], b2[jj.ravel()], paired=True))


def test_axis_aligned_matches_brute_force():
    rng = np.random.default_rng(5)
    b1, b2 = _rand_boxes(rng, 30, spread=1.0), _rand_boxes(rng, 25, spread=1.0)
    ref = _brute_axis_aligned(b1, b2)
    assert (ref > 0).mean() > 0.2
    np.testing.assert_allclose(axis_aligned_iou_3d(b1, b2), ref, atol=1e-12)
    np.testing.assert_allclose(axis_aligned_iou_3d(b1[:, :6], b2[:, :6]), ref, atol=1e-12)  # six numbers
    np.testing.assert_allclose(iou_3d(b1, b2, rotated=False), ref, atol=1e-12)
    np.testing.assert_allclose(axis_aligned_bev_iou(b1, b2), _brute_axis_aligned(b1, b2, dims=2), atol=1e-12)
    np.testing.assert_allclose(bev_iou(b1, b2, rotated=False), _brute_axis_aligned(b1, b2, dims=2), atol=1e-12)
    # with yaw = 0 the rotated code must agree with the axis-aligned formula
    z1, z2 = b1.copy(), b2.copy()
    z1[:, 6] = z2[:, 6] = 0.0
    np.testing.assert_allclose(rotated_iou_3d(z1, z2), ref, atol=1e-12)
    np.testing.assert_allclose(iou_3d(z1, z2), ref, atol=1e-12)
    # yaw = 90° with swapped extents is the same box
    s2 = z2.copy()
    s2[:, [3, 4]] = z2[:, [4, 3]]
    s2[:, 6] = np.pi / 2
    np.testing.assert_allclose(rotated_iou_3d(z1, s2), ref, atol=1e-12)


def test_hand_worked_values():
    a = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0]], dtype=torch.float64)
    assert rotated_iou_3d(a, b).item() == pytest.approx(4 / 12)  # overlap 1x2x2 over 8 + 8 - 4
    c = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0, 2.0, np.pi / 4]], dtype=torch.float64)
    # square rotated 45° over the same square: octagon of area 8(sqrt(2) - 1)
    inter = 8 * (np.sqrt(2) - 1) * 2
    assert rotated_iou_3d(a, c).item() == pytest.approx(inter / (16 - inter), abs=1e-12)


def test_kinds_devices_and_empty():
    rng = np.random.default_rng(6)
    b = _rand_boxes(rng, 5)
    assert isinstance(rotated_iou_3d(b, b), np.ndarray)
    t = torch.from_numpy(b)
    assert isinstance(rotated_iou_3d(t, t), torch.Tensor)
    assert rotated_iou_3d(np.zeros((0, 7)), b).shape == (0, 5)
    assert rotated_iou_3d(b, np.zeros((0, 7))).shape == (5, 0)
    assert rotated_iou_3d(np.zeros((0, 7)), np.zeros((0, 7)), paired=True).shape == (0,)
    assert axis_aligned_iou_3d(np.zeros((0, 6)), b).shape == (0, 5)
    assert rotated_bev_iou(torch.zeros(0, 7), torch.zeros(3, 7)).shape == (0, 3)
    # all pairs disjoint: no candidate survives the footprint test
    far = b.copy()
    far[:, 0] += 100
    assert np.all(rotated_iou_3d(b, far) == 0)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("test requires a CUDA device")
    rng = np.random.default_rng(7)
    b1, b2 = torch.from_numpy(_rand_boxes(rng, 300)), torch.from_numpy(_rand_boxes(rng, 200))
    cpu = rotated_iou_3d(b1, b2)
    gpu = rotated_iou_3d(b1.cuda(), b2.cuda())
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-10, rtol=0)


@pytest.mark.parametrize("fn", [rotated_iou_3d, rotated_bev_iou, axis_aligned_iou_3d])
def test_bad_inputs_name_the_argument(fn):
    good = np.zeros((3, 7))
    good[:, 3:6] = 1
    with pytest.raises(ValueError, match="boxes1 must have shape"):
        fn(np.zeros((3, 5)), good)
    nan = good.copy()
    nan[1, 0] = np.nan
    with pytest.raises(ValueError, match="boxes2 contains NaN"):
        fn(good, nan)
    neg = good.copy()
    neg[0, 4] = -1
    with pytest.raises(ValueError, match="boxes1 has negative sizes"):
        fn(neg, good)
    with pytest.raises(ValueError, match="same length"):
        fn(good, good[:2], paired=True)


def test_rotated_rejects_six_numbers():
    with pytest.raises(ValueError, match=r"boxes2 must have shape \(N, 7\)"):
        rotated_iou_3d(np.ones((2, 7)), np.ones((2, 6)))


def test_rotated_nograd_matches_shapely_and_the_differentiable_path():
    """The assigners' no-gradient rotated IoU (compiled BEV IoU x z overlap) against shapely on random and special
    pairs, against the differentiable clipping, and `paired_iou` keeps the gradient when one is needed."""
    from sr3d_core.assign.costs import paired_iou
    from sr3d_core.geometry.iou import rotated_iou_paired_diff, rotated_iou_paired_nograd

    rng = np.random.default_rng(3)
    s1, s2 = _special_pairs(np.random.default_rng(2))
    b1 = np.concatenate([_rand_boxes(rng, 2000, spread=1.0), s1])
    b2 = np.concatenate([_rand_boxes(rng, 2000, spread=1.0), s2])
    b1[:5, 3:6] = 0.0  # degenerate boxes: IoU 0, not NaN
    t1, t2 = torch.from_numpy(b1), torch.from_numpy(b2)
    got = rotated_iou_paired_nograd(t1, t2)
    assert got.dtype == torch.float64 and torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), _shapely_iou(b1, b2), atol=1e-9, rtol=0)
    torch.testing.assert_close(got, rotated_iou_paired_diff(t1, t2), atol=1e-9, rtol=0)
    f1 = t1.float().requires_grad_()
    with torch.no_grad():  # no gradient wanted: the compiled path
        assert torch.equal(paired_iou(f1, t2.float(), True), rotated_iou_paired_nograd(f1, t2.float()))
    iou = paired_iou(f1, t2.float(), True)  # a gradient is wanted: the differentiable path
    iou.sum().backward()
    assert iou.grad_fn is not None and f1.grad.abs().sum() > 0


def _clip_with(compiled: bool, p1: torch.Tensor, p2: torch.Tensor, weight: torch.Tensor):
    from sr3d_core.geometry import native

    was = native.extension._enabled
    native.set_enabled(compiled)
    try:
        a, b = p1.clone().requires_grad_(True), p2.clone().requires_grad_(True)
        area = convex_intersection_area(a, b)
        g1, g2 = torch.autograd.grad((area * weight).sum(), [a, b])
    finally:
        native.set_enabled(was)
    return area.detach(), g1, g2


def test_compiled_clip_matches_the_pytorch_clip_and_finite_differences():
    """The compiled intersection area (rotated IoU's overlap) and its gradient, walked back through the clipping:
    equal to the PyTorch polygon code's autograd, and to central differences."""
    from sr3d_core.geometry import native

    if not native.available(torch.zeros(1)):
        pytest.skip("no C compiler: the PyTorch clipping only")
    g = torch.Generator().manual_seed(11)
    k = 2000
    b1 = torch.cat(
        [
            torch.rand(k, 2, generator=g) * 2,
            torch.rand(k, 1, generator=g),
            torch.rand(k, 3, generator=g) * 1.5 + 0.1,
            torch.rand(k, 1, generator=g) * 6.28 - 3.14,
        ],
        1,
    )
    b2 = b1.clone()
    b2[:, :2] += torch.randn(k, 2, generator=g) * 0.3
    b2[:, 3:5] *= torch.rand(k, 2, generator=g) + 0.5
    b2[:, 6] += torch.randn(k, generator=g) * 0.5
    b2[:50, :2] += 5.0  # disjoint: zero area, zero gradient
    b2[50:100, 3:5] = b1[50:100, 3:5] * 0.3  # nested (same centre and yaw): the inner box
    b2[50:100, :2], b2[50:100, 6] = b1[50:100, :2], b1[50:100, 6]
    p1, p2 = bev_corners(b1.double()), bev_corners(b2.double())
    weight = torch.randn(k, generator=g, dtype=torch.float64)
    area_c, g1_c, g2_c = _clip_with(True, p1, p2, weight)
    area_t, g1_t, g2_t = _clip_with(False, p1, p2, weight)
    torch.testing.assert_close(area_c, area_t, rtol=1e-12, atol=1e-12)
    assert (area_c[:50] == 0).all() and (g1_c[:50] == 0).all() and (g2_c[:50] == 0).all()
    inner = b2[50:100].double()
    torch.testing.assert_close(area_c[50:100], inner[:, 3] * inner[:, 4], rtol=1e-12, atol=1e-12)
    # Nested pairs sit on a kink (the clipped area equals the smaller box's: the bound's minimum takes either
    # side), so gradients are compared where the area is smooth.
    torch.testing.assert_close(g1_c[100:], g1_t[100:], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(g2_c[100:], g2_t[100:], rtol=1e-9, atol=1e-9)
    # Central differences of the compiled area on a few partially overlapping pairs, every coordinate.
    h = 1e-6
    for i in (100, 101, 102, 500, 1999):
        for poly, grad in ((p1, g1_c), (p2, g2_c)):
            for v in range(4):
                for c in range(2):
                    up, down = poly.clone(), poly.clone()
                    up[i, v, c] += h
                    down[i, v, c] -= h
                    a_up = _clip_with(True, up if poly is p1 else p1, up if poly is p2 else p2, weight)[0][i]
                    a_dn = _clip_with(True, down if poly is p1 else p1, down if poly is p2 else p2, weight)[0][i]
                    assert abs(float((a_up - a_dn) / (2 * h)) * float(weight[i]) - float(grad[i, v, c])) < 1e-5
