"""RAS: soft rank against its definition and its hard-rank limit, RDL's optimum and gradients, the blend."""

import math

import pytest
import torch

from sr3d_core.losses import ClsLossContext, FocalLoss, RASConfig, RASLoss
from sr3d_core.losses.ras import rank_weight, rdl, soft_rank


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_soft_rank_matches_definition():
    g = torch.Generator().manual_seed(0)
    v = torch.rand(9, generator=g, dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 0, 1, 1])
    tau = 0.2
    got = soft_rank(v, groups, tau)
    for i in range(9):
        members = [j for j in range(9) if groups[j] == groups[i]]
        want = sum(sig((float(v[j]) - float(v[i])) / tau) for j in members if j != i) / len(members)
        assert float(got[i]) == pytest.approx(want, rel=1e-12)


def test_soft_rank_hard_limit():
    v = torch.tensor([0.3, 0.9, 0.5, 0.1], dtype=torch.float64)
    got = soft_rank(v, torch.zeros(4, dtype=torch.long), 1e-6)
    # Hard rank / N: the number of larger values over the group size.
    assert got.tolist() == pytest.approx([2 / 4, 0.0, 1 / 4, 3 / 4], abs=1e-9)


def rdl_optimum(w, q):
    """σ* = argmin over a fine grid of −RDL (brute force)."""
    sigma = torch.linspace(1e-4, 1 - 1e-4, 200001, dtype=torch.float64)
    logit = torch.log(sigma / (1 - sigma))
    loss = rdl(logit, torch.full_like(sigma, q), torch.full_like(sigma, w))
    return float(sigma[loss.argmin()])


@pytest.mark.parametrize("w,q", [(1.0, 0.9), (0.5, 0.5), (0.8, 0.2)])
def test_rdl_optimum_formula(w, q):
    assert rdl_optimum(w, q) == pytest.approx(w / (w + 1 - q), abs=2e-4)


def optima(reading, ious):
    """σ* of each positive of one GT under a reading of the rank term."""
    q = torch.tensor(ious, dtype=torch.float64)
    rank = soft_rank(q, torch.zeros(len(q), dtype=torch.long), 0.01)
    w = rank_weight(torch.exp(-rank), rank, reading, 1.0)
    return (w / (w + 1 - q)).tolist()


def test_default_reading_optimum_rises_with_localization():
    ious = [0.2, 0.5, 0.8]
    assert RASConfig().rank_term == "r"
    for reading in ("r", "position"):
        s = optima(reading, ious)
        assert s[0] < s[1] < s[2], (reading, s)
    # As printed, (1 − r)^β vanishes for the best-localized positive: its confidence is driven to 0.
    s = optima("printed", ious)
    assert s[2] == pytest.approx(0.0, abs=1e-9) and s[2] < s[0]


def test_rdl_gradient_sign():
    # At σ = 0.5 a well-localized positive (q = 0.9, w = 1) is pushed up, a poorly localized one with a small
    # weight (q = 0.3, w = 0.1: σ* = 0.125) is pushed down.
    logit = torch.zeros(2, requires_grad=True)
    rdl(logit, torch.tensor([0.9, 0.3]), torch.tensor([1.0, 0.1])).sum().backward()
    assert logit.grad[0] < 0 < logit.grad[1]


def test_blend_by_hand():
    # Two anchors, one class; both positives of GT 0. Logits 1 and -1, IoUs 0.8 and 0.4; one negative anchor.
    logits = torch.tensor([[1.0], [-1.0], [0.5]], dtype=torch.float64)
    labels = torch.tensor([0, 0, -1])
    ctx = ClsLossContext(logits, labels, 2.0, torch.tensor([0, 1]), torch.tensor([0, 0]),
                         torch.tensor([0.8, 0.4], dtype=torch.float64))
    tau = 0.01
    got = RASLoss(RASConfig(tau=tau))(ctx)
    p = [sig(1.0), sig(-1.0), sig(0.5)]
    # Soft ranks (N = 2): of the IoUs 0.8 > 0.4, of the scores p0 > p1.
    r_reg = [math.exp(-sig((0.4 - 0.8) / tau) / 2), math.exp(-sig((0.8 - 0.4) / tau) / 2)]
    r_cls = [math.exp(-sig((p[1] - p[0]) / tau) / 2), math.exp(-sig((p[0] - p[1]) / tau) / 2)]
    total = 0.0
    for i, q in enumerate((0.8, 0.4)):
        fl = -0.25 * (1 - p[i]) ** 2 * math.log(p[i])
        rd = -(r_reg[i] * q * math.log(p[i]) + q * (1 - q) * math.log(1 - p[i]))
        total += (1 - r_cls[i]) * fl + r_cls[i] * rd
    total += -0.75 * p[2] ** 2 * math.log(1 - p[2])  # the negative keeps its focal term
    assert float(got["loss_cls"]) == pytest.approx(total / 2.0, rel=1e-9)
    assert float(got["ras_r_cls"]) == pytest.approx(sum(r_cls) / 2, rel=1e-9)


def test_no_positives_equals_focal():
    logits = torch.randn(5, 3)
    ctx = ClsLossContext.from_labels(logits, torch.full((5,), -1))
    assert float(RASLoss()(ctx)["loss_cls"]) == pytest.approx(float(FocalLoss()(ctx)["loss_cls"]))


def test_config_checks():
    with pytest.raises(ValueError, match="rank_term"):
        RASConfig(rank_term="inverse")
    with pytest.raises(ValueError, match="tau"):
        RASConfig(tau=0)
