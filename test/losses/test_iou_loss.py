"""IoU / DIoU losses: values against hand-worked examples, gradcheck, finite gradients in degenerate cases."""

import math

import numpy as np
import pytest
import torch

from sr3d_core.geometry import axis_aligned_iou_3d, rotated_iou_3d
from sr3d_core.losses.iou import axis_aligned_diou_loss, axis_aligned_iou_loss, rotated_diou_loss, rotated_iou_loss

LOSSES = [axis_aligned_iou_loss, axis_aligned_diou_loss, rotated_iou_loss, rotated_diou_loss]


def _t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def _gradcheck_cases():
    """(pred, target) pairs away from kinks: partial overlap, nested, disjoint, corner-touching."""
    pred = _t(
        [
            [0.1, 0.2, 0.05, 1.0, 1.4, 0.8, 0.3],  # partial overlap, rotated
            [0.0, 0.0, 0.0, 0.6, 0.5, 0.4, 0.7],  # nested in the target below
            [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.2],  # disjoint (far in x)
            [0.0, 0.0, 0.0, 1.0, 2.0, 1.0, 0.0],  # touches the target at one corner line (x, y)
            [0.3, -0.2, 0.1, 1.2, 0.9, 1.1, -1.1],  # partial overlap
        ]
    )
    target = _t(
        [
            [0.4, -0.1, 0.2, 1.2, 0.9, 1.0, -0.2],
            [0.05, -0.02, 0.03, 2.0, 1.8, 1.5, 0.1],
            [5.0, 0.5, 0.0, 1.2, 0.8, 1.0, 0.4],
            [1.0, 1.5, 0.2, 1.0, 1.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5],
        ]
    )
    return pred, target


@pytest.mark.parametrize("loss_fn, quirk", [(f, False) for f in LOSSES] + [(rotated_diou_loss, True)])
def test_gradcheck(loss_fn, quirk):
    pred, target = _gradcheck_cases()
    if loss_fn in (axis_aligned_iou_loss, axis_aligned_diou_loss):
        pred, target = pred[:, :6], target[:, :6]
    pred.requires_grad_(True)
    target.requires_grad_(True)
    kw = {"tr3d_quirk": True} if quirk else {}

    def f(p, t):
        return loss_fn(p, t, reduction="none", **kw)

    assert torch.autograd.gradcheck(f, (pred, target), eps=1e-6, atol=1e-5, rtol=1e-4)


def _degenerate_cases(dtype):
    a = torch.tensor([0.3, -0.4, 0.2, 1.2, 0.8, 0.6, 0.9], dtype=dtype)
    cases = []
    cases.append((a, a.clone()))  # identical
    far = a.clone()
    far[0] += 10
    cases.append((a, far))  # zero overlap
    face = a.clone()
    face[0] += 1.2 * math.cos(0.9)
    face[1] += 1.2 * math.sin(0.9)
    cases.append((a, face))  # shared face: parallel, coincident edges
    zt = a.clone()
    zt[2] += 0.6
    cases.append((a, zt))  # touching in z
    par = a.clone()
    par[0] += 0.3 * math.cos(0.9)
    par[1] += 0.3 * math.sin(0.9)
    cases.append((a, par))  # parallel edges, two shared lines
    quarter = a.clone()
    quarter[3], quarter[4], quarter[6] = a[4], a[3], a[6] + math.pi / 2
    cases.append((a, quarter))  # the same box written with yaw + 90°
    nested = a.clone()
    nested[3:6] *= 0.5
    cases.append((nested, a))  # concentric, all edges parallel
    flipped = a.clone()
    flipped[6] += math.pi
    cases.append((a, flipped))  # the same box, heading reversed
    tiny = a.clone()
    tiny[3:6] = 1e-3
    cases.append((tiny, tiny.clone()))
    zero = a.clone()
    zero[3] = 0.0
    cases.append((zero, a))  # degenerate (flat) box
    p, t = zip(*cases)
    return torch.stack(p), torch.stack(t)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss_fn", LOSSES)
def test_finite_gradients_in_degenerate_cases(loss_fn, dtype):
    pred, target = _degenerate_cases(dtype)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    loss = loss_fn(pred, target, reduction="none")
    assert torch.isfinite(loss).all()
    loss.sum().backward()
    assert torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rotated_iou_equal_boxes_value(dtype):
    pred, target = _degenerate_cases(dtype)
    loss = rotated_iou_loss(pred, target, reduction="none")
    torch.testing.assert_close(loss[[0, 5, 7]], torch.zeros(3, dtype=dtype), atol=1e-5, rtol=0)
    # millimetre boxes: the default union floor (1e-6 m³) dominates; eps=0 gives the exact ratio
    assert loss[8].item() > 0.9
    assert rotated_iou_loss(pred[8:9], target[8:9], eps=0.0).item() == pytest.approx(0.0, abs=1e-5)
    torch.testing.assert_close(loss[[1, 2, 3]], torch.ones(3, dtype=dtype), atol=1e-5, rtol=0)


def test_finite_gradients_random_float32():
    rng = np.random.default_rng(0)
    n = 2000
    p = np.concatenate([rng.uniform(-1, 1, (n, 3)), rng.uniform(0.1, 2, (n, 3)), rng.uniform(-4, 4, (n, 1))], 1)
    t = p + np.concatenate([rng.normal(0, 0.2, (n, 3)), np.zeros((n, 3)), rng.normal(0, 0.3, (n, 1))], 1)
    pred = torch.tensor(p, dtype=torch.float32, requires_grad=True)
    loss = rotated_diou_loss(pred, torch.tensor(t, dtype=torch.float32))
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_axis_aligned_values():
    a = _t([[0.0, 0.0, 0.0, 2.0, 2.0, 2.0]])
    b = _t([[1.0, 0.0, 0.0, 2.0, 2.0, 2.0]])
    assert axis_aligned_iou_loss(a, b).item() == pytest.approx(1 - 1 / 3)
    # enclosure 3 x 2 x 2: c² = 17, ρ² = 1
    assert axis_aligned_diou_loss(a, b).item() == pytest.approx(1 - 1 / 3 + 1 / 17)
    # yaw is ignored
    a7, b7 = torch.cat([a, _t([[0.7]])], 1), torch.cat([b, _t([[-0.3]])], 1)
    assert axis_aligned_diou_loss(a7, b7).item() == pytest.approx(1 - 1 / 3 + 1 / 17)


def test_rotated_values():
    a = _t([[1.0, 0.0, 0.0, 2.0, 2.0, 2.0, math.pi / 4]])
    b = _t([[0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0]])
    iou = rotated_iou_3d(a, b).item()
    assert rotated_iou_loss(a, b).item() == pytest.approx(1 - iou, abs=1e-12)
    # BEV corners of a: x in [1 - √2, 1 + √2], y in [-√2, √2]; of b: [-1, 1]²; z in [-1, 1]
    c2 = (2 + math.sqrt(2)) ** 2 + (2 * math.sqrt(2)) ** 2 + 2.0**2
    assert rotated_diou_loss(a, b).item() == pytest.approx(1 - iou + 1.0 / c2, abs=1e-12)


def test_rotated_diou_equals_axis_aligned_at_zero_yaw():
    rng = np.random.default_rng(1)
    n = 300
    p = np.concatenate([rng.uniform(-1, 1, (n, 3)), rng.uniform(0.1, 2, (n, 3)), np.zeros((n, 1))], 1)
    t = np.concatenate([rng.uniform(-1, 1, (n, 3)), rng.uniform(0.1, 2, (n, 3)), np.zeros((n, 1))], 1)
    p, t = torch.from_numpy(p), torch.from_numpy(t)
    torch.testing.assert_close(
        rotated_diou_loss(p, t, reduction="none"), axis_aligned_diou_loss(p, t, reduction="none"), atol=1e-10, rtol=0
    )
    iou = torch.from_numpy(axis_aligned_iou_3d(p.numpy(), t.numpy(), paired=True))
    torch.testing.assert_close(axis_aligned_iou_loss(p, t, reduction="none"), 1 - iou, atol=1e-6, rtol=0)


def test_tr3d_quirk_uses_dx_instead_of_z():
    b = _t([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]])
    up = _t([[0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.0]])  # shifted in z only
    wide = _t([[0.0, 0.0, 0.0, 1.5, 1.0, 1.0, 0.0]])  # wider in dx only
    iou_up = rotated_iou_3d(up, b).item()
    iou_wide = rotated_iou_3d(wide, b).item()
    c2_up = 1.0 + 1.0 + 1.5**2
    c2_wide = 1.5**2 + 1.0 + 1.0
    assert rotated_diou_loss(up, b).item() == pytest.approx(1 - iou_up + 0.25 / c2_up)
    assert rotated_diou_loss(up, b, tr3d_quirk=True).item() == pytest.approx(1 - iou_up)
    assert rotated_diou_loss(wide, b).item() == pytest.approx(1 - iou_wide)
    assert rotated_diou_loss(wide, b, tr3d_quirk=True).item() == pytest.approx(1 - iou_wide + 0.25 / c2_wide)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_reductions_and_weights(loss_fn):
    pred, target = _gradcheck_cases()
    none = loss_fn(pred, target, reduction="none")
    assert none.shape == (5,)
    w = _t([1.0, 0.0, 2.0, 0.5, 1.0])
    torch.testing.assert_close(loss_fn(pred, target, reduction="sum"), none.sum())
    torch.testing.assert_close(loss_fn(pred, target), none.mean())
    torch.testing.assert_close(loss_fn(pred, target, weight=w, reduction="none"), none * w)
    torch.testing.assert_close(loss_fn(pred, target, weight=w), (none * w).sum() / 5)
    torch.testing.assert_close(loss_fn(pred, target, weight=w, avg_factor=2.0), (none * w).sum() / 2)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_empty_batch(loss_fn):
    pred = torch.zeros(0, 7, requires_grad=True)
    loss = loss_fn(pred, torch.zeros(0, 7))
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad.shape == (0, 7)
    assert loss_fn(pred, torch.zeros(0, 7), reduction="none").shape == (0,)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_bad_inputs(loss_fn):
    good = torch.ones(3, 7)
    with pytest.raises(ValueError, match="pred must have shape"):
        loss_fn(torch.ones(3, 5), good)
    with pytest.raises(ValueError, match="target must have shape"):
        loss_fn(good, torch.ones(3))
    with pytest.raises(ValueError, match="same length"):
        loss_fn(good, torch.ones(2, 7))
    with pytest.raises(ValueError, match="weight must have shape"):
        loss_fn(good, good, weight=torch.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        loss_fn(good, good, reduction="avg")
