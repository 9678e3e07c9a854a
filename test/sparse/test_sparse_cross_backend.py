"""torch backend == MinkowskiEngine backend on the same weights (coordinate sets, features, gradients).

Skipped with the reason when MinkowskiEngine does not import (build it with scripts/build_minkowski.sh).
"""

from __future__ import annotations

import pytest
import torch
from sparse_dense_ref import random_coords

from sr3d_core.sparse import (
    SparseBatchNorm,
    SparseConv3d,
    SparseGenerativeConvTranspose3d,
    SparseMaxPool3d,
    SparseReLU,
    from_coords,
    prune,
    voxelize,
)
from sr3d_core.sparse.coords import pack

try:
    import MinkowskiEngine  # noqa: F401

    ME_ERROR = None
except Exception as exc:  # noqa: BLE001 (any import failure means the backend is unavailable)
    ME_ERROR = f"MinkowskiEngine not importable ({type(exc).__name__}: {exc}); run scripts/build_minkowski.sh"

pytestmark = [pytest.mark.minkowski, pytest.mark.skipif(ME_ERROR is not None, reason=str(ME_ERROR))]


def _sorted(x):
    """(coords, feats) of a tensor with rows sorted by packed key, so backends compare row by row."""
    order = torch.argsort(pack(x.coords))
    return x.coords[order], x.feats[order]


def assert_same(a, b, tol=1e-9):
    ca, fa = _sorted(a)
    cb, fb = _sorted(b)
    assert a.stride == b.stride
    assert torch.equal(ca, cb)
    torch.testing.assert_close(fa, fb, rtol=tol, atol=tol)


def _pair(n=300, extent=9, batch_size=2, stride=1, channels=4, seed=0):
    c = random_coords(n, extent, batch_size, stride, seed)
    f = torch.randn(len(c), channels, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    xt, pt = from_coords(c, f, batch_size, stride, backend="torch")
    xm, pm = from_coords(c, f, batch_size, stride, backend="minkowski")
    ft = xt.feats.clone().requires_grad_(True)
    fm = xm.feats.clone().requires_grad_(True)
    return xt.replace(ft), xm.replace(fm), (ft, pt), (fm, pm)


def _input_grads_equal(gt, gm):
    """Input gradients, brought back to the caller's row order."""
    (ft, pt), (fm, pm) = gt, gm
    a = torch.empty_like(ft.grad)
    a[pt] = ft.grad
    b = torch.empty_like(fm.grad)
    b[pm] = fm.grad
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "ks,stride,in_stride,bias",
    [(3, 1, 1, False), (3, 2, 1, False), (3, 2, 4, False), (1, 2, 2, False), (1, 1, 1, True), (2, 2, 1, False)],
)
def test_conv_same(ks, stride, in_stride, bias):
    xt, xm, gt, gm = _pair(stride=in_stride, seed=ks + stride)
    conv = SparseConv3d(4, 5, ks, stride, bias=bias).double()
    yt, ym = conv(xt), conv(xm)
    assert_same(yt, ym)
    ct, ft = _sorted(yt)
    cm, fm = _sorted(ym)
    w = torch.randn(ft.shape, dtype=torch.float64)
    (ft * w).sum().backward()
    wt, conv.weight.grad = conv.weight.grad, None
    (fm * w).sum().backward()
    torch.testing.assert_close(wt, conv.weight.grad, rtol=1e-9, atol=1e-9)
    _input_grads_equal(gt, gm)


def test_generative_transpose_same():
    xt, xm, gt, gm = _pair(n=120, extent=6, stride=4, seed=3)
    up = SparseGenerativeConvTranspose3d(4, 5, 3, 2).double()
    yt, ym = up(xt), up(xm)
    assert_same(yt, ym)
    _, ft = _sorted(yt)
    _, fm = _sorted(ym)
    w = torch.randn(ft.shape, dtype=torch.float64)
    (ft * w).sum().backward()
    (fm * w).sum().backward()
    _input_grads_equal(gt, gm)


def test_pool_bn_relu_union_prune_same():
    xt, xm, _, _ = _pair(seed=5)
    pool, bn = SparseMaxPool3d(), SparseBatchNorm(4).double()
    assert_same(pool(xt), pool(xm))
    assert_same(SparseReLU()(bn(xt)), SparseReLU()(bn(xm)))
    down = SparseConv3d(4, 4, 3, 2).double()
    up = SparseGenerativeConvTranspose3d(4, 4, 3, 2).double()
    assert_same(xt + up(down(xt)), xm + up(down(xm)))
    assert_same(prune(xt, xt.feats[:, 0] > 0), prune(xm, xm.feats[:, 0] > 0))


def test_backbone_neck_same():
    """The whole TR3D backbone + neck on one state_dict gives the same outputs under both backends."""
    model = pytest.importorskip("sr3d_core.model.backbone")
    neck_mod = pytest.importorskip("sr3d_core.model.neck")
    torch.manual_seed(0)
    backbone, neck = model.MinkResNet().double(), neck_mod.TR3DNeck().double()
    g = torch.Generator().manual_seed(1)
    pts = [
        (torch.rand(3000, 3, generator=g) * 2.0, torch.rand(3000, 3, generator=g).double()),
        (torch.rand(2000, 3, generator=g) * 1.5, torch.rand(2000, 3, generator=g).double()),
    ]
    outs = {}
    for backend in ("torch", "minkowski"):
        x, _ = voxelize(pts, 0.02, reduce="mean", backend=backend)
        outs[backend] = neck(backbone(x))
    for a, b in zip(outs["torch"], outs["minkowski"]):
        assert_same(a, b, tol=1e-7)
