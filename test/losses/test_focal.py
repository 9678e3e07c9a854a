"""Sigmoid focal loss against the plain formula."""

import math

import torch

from sr3d_core.losses import ClsLossContext, FocalConfig, FocalLoss


def test_matches_plain_formula():
    torch.manual_seed(0)
    logits = torch.randn(7, 3) * 3
    labels = torch.tensor([-1, 0, 2, -1, 1, -1, 2])
    got = FocalLoss(FocalConfig(gamma=2.0, alpha=0.25))(ClsLossContext.from_labels(logits, labels, 4.0))["loss_cls"]
    ref = 0.0
    for j in range(7):
        for c in range(3):
            p = 1 / (1 + math.exp(-float(logits[j, c])))
            if labels[j] == c:
                ref += -0.25 * (1 - p) ** 2 * math.log(p)
            else:
                ref += -0.75 * p**2 * math.log(1 - p)
    assert abs(float(got) - ref / 4.0) < 1e-5


def test_stable_for_extreme_logits_and_grad():
    logits = torch.tensor([[60.0, -60.0]], requires_grad=True)
    loss = FocalLoss()(ClsLossContext.from_labels(logits, torch.tensor([1])))["loss_cls"]
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert loss.item() > 10  # both confidently wrong
