"""QFL and VFL against their formulas, element by element."""

import math

import pytest
import torch

from sr3d_core.losses import ClsLossContext, QFLConfig, QualityFocalLoss, VarifocalLoss, VFLConfig


def context():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 3, generator=g, dtype=torch.float64) * 2
    labels = torch.tensor([-1, 2, 0, -1, 1, 2])
    ious = torch.tensor([0.7, 0.2, 0.9, 0.5], dtype=torch.float64)
    ctx = ClsLossContext(logits, labels, 4.0, torch.tensor([1, 2, 4, 5]), torch.tensor([0, 1, 2, 0]), ious)
    targets = {(1, 2): 0.7, (2, 0): 0.2, (4, 1): 0.9, (5, 2): 0.5}
    return ctx, targets


def test_qfl_formula():
    ctx, targets = context()
    got = QualityFocalLoss(QFLConfig(beta=2.0))(ctx)["loss_cls"]
    want = 0.0
    for i in range(6):
        for c in range(3):
            s = 1 / (1 + math.exp(-float(ctx.logits[i, c])))
            y = targets.get((i, c), 0.0)
            want += -(abs(y - s) ** 2) * ((1 - y) * math.log(1 - s) + y * math.log(s))
    assert float(got) == pytest.approx(want / 4.0, rel=1e-10)


def test_vfl_formula():
    ctx, targets = context()
    got = VarifocalLoss(VFLConfig(alpha=0.75, gamma=2.0))(ctx)["loss_cls"]
    want = 0.0
    for i in range(6):
        for c in range(3):
            p = 1 / (1 + math.exp(-float(ctx.logits[i, c])))
            q = targets.get((i, c), 0.0)
            if q > 0:
                want += -q * (q * math.log(p) + (1 - q) * math.log(1 - p))
            else:
                want += -0.75 * p**2 * math.log(1 - p)
    assert float(got) == pytest.approx(want / 4.0, rel=1e-10)


def test_vfl_weight_has_no_gradient_on_negatives():
    # VarifocalNet treats p^γ on negatives as a weight: only −log(1 − p) is differentiated.
    logit = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
    VarifocalLoss()(ClsLossContext.from_labels(logit, torch.tensor([-1])))["loss_cls"].backward()
    p = 1 / (1 + math.exp(-0.3))
    assert float(logit.grad) == pytest.approx(0.75 * p**2 * p, rel=1e-10)
