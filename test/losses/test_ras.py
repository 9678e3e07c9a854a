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
    ctx = ClsLossContext(
        logits, labels, 2.0, torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([0.8, 0.4], dtype=torch.float64)
    )
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


# ---------------------------------------------------------------------------------------------------------------
# An independent reference of Eqs. 6, 7, 9, 10 in plain Python loops (no torch), to check β ≠ 1, which values
# r_cls ranks, and that the ranks carry no gradient.


def ref_soft_ranks(values, groups, tau):
    """Eq. 9 per group by loops: R_i = (1/N_g) Σ_{j≠i, same group} σ((v_j − v_i)/τ)."""
    out = []
    for i, (v_i, g_i) in enumerate(zip(values, groups)):
        members = [j for j, g in enumerate(groups) if g == g_i]
        out.append(sum(sig((values[j] - v_i) / tau) for j in members if j != i) / len(members))
    return out


def ref_ras(logits, labels, pos_index, pos_gt, pos_iou, avg, *, beta, tau, reading, ranks=None, gamma=2.0, alpha=0.25):
    """−(Eq. 7) / avg by loops over anchors and classes.

    ``ranks`` = (R_cls, R_reg) holds the soft ranks fixed (the gradient reference); None computes them from
    ``logits`` and ``pos_iou``. Returns (loss, (R_cls, R_reg)).
    """
    p = [[sig(x) for x in row] for row in logits]
    if ranks is None:
        scores = [p[a][labels[a]] for a in pos_index]
        ranks = (ref_soft_ranks(scores, pos_gt, tau), ref_soft_ranks(pos_iou, pos_gt, tau))
    rank_cls, rank_reg = ranks
    total = 0.0
    for a, row in enumerate(p):
        for c, pc in enumerate(row):
            if labels[a] == c:
                fl = -alpha * (1 - pc) ** gamma * math.log(pc)
            else:
                fl = -(1 - alpha) * pc**gamma * math.log(1 - pc)
            if a in pos_index and labels[a] == c:
                k = pos_index.index(a)
                q, r_reg, r_cls = pos_iou[k], math.exp(-rank_reg[k]), math.exp(-rank_cls[k])
                base = {"printed": 1 - r_reg, "position": 1 - rank_reg[k], "r": r_reg}[reading]
                rd = -(base**beta * q * math.log(pc) + q * (1 - q) * math.log(1 - pc))
                total += (1 - r_cls) * fl + r_cls * rd
            else:
                total += fl
    return total / avg, ranks


def random_example(seed):
    """8 anchors, 3 classes; 6 positives of 3 GTs (sizes 3, 2, 1, interleaved), 2 negatives."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(8, 3, generator=g, dtype=torch.float64)
    labels = [2, -1, 0, 2, 1, -1, 2, 0]
    pos_index = [0, 2, 3, 4, 6, 7]
    pos_gt = [5, 1, 5, 3, 5, 1]  # GT 5: anchors 0, 3, 6 (class 2); GT 1: 2, 7 (class 0); GT 3: 4
    pos_iou = (0.1 + 0.85 * torch.rand(6, generator=g, dtype=torch.float64)).tolist()
    return logits, labels, pos_index, pos_gt, pos_iou


def as_ctx(logits, labels, pos_index, pos_gt, pos_iou, avg):
    return ClsLossContext(
        logits,
        torch.tensor(labels),
        avg,
        torch.tensor(pos_index),
        torch.tensor(pos_gt),
        pos_iou if torch.is_tensor(pos_iou) else torch.tensor(pos_iou, dtype=torch.float64),
    )


@pytest.mark.parametrize("reading", ["r", "position", "printed"])
@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_beta_against_loop_reference(beta, reading):
    tau = 0.1  # soft enough that the ranks are far from 0 / 1 and (1 − r)^β, r^β, (1 − R)^β all move with β
    for seed in range(3):
        logits, labels, pos_index, pos_gt, pos_iou = random_example(seed)
        got = RASLoss(RASConfig(beta=beta, tau=tau, rank_term=reading))(
            as_ctx(logits, labels, pos_index, pos_gt, pos_iou, 6.0)
        )
        args = (logits.tolist(), labels, pos_index, pos_gt, pos_iou, 6.0)
        want, _ = ref_ras(*args, beta=beta, tau=tau, reading=reading)
        assert float(got["loss_cls"]) == pytest.approx(want, rel=1e-10), (seed, beta, reading)
        # The example discriminates: β = 1 gives a clearly different loss.
        assert abs(ref_ras(*args, beta=1.0, tau=tau, reading=reading)[0] - want) > 1e-3 * want


def test_r_cls_ranks_scores_not_ious():
    # One GT, three positives whose scores and IoUs are in different orders, and a negative.
    #   anchor      0      1      2
    #   logit       0.0    2.0   -1.5   → scores 0.500, 0.881, 0.182: score ranks 1, 0, 2
    #   IoU         0.7    0.3    0.5   →                              IoU ranks   0, 2, 1
    # τ = 1e-6 makes the soft ranks hard (Eq. 9's limit): R = rank / 3, r = exp(−R).
    logits = torch.tensor([[0.0], [2.0], [-1.5], [0.5]], dtype=torch.float64)
    ious = [0.7, 0.3, 0.5]
    ctx = as_ctx(logits, [0, 0, 0, -1], [0, 1, 2], [0, 0, 0], ious, 3.0)
    got = RASLoss(RASConfig(tau=1e-6))(ctx)
    r_cls = [math.exp(-1 / 3), 1.0, math.exp(-2 / 3)]
    r_reg = [1.0, math.exp(-2 / 3), math.exp(-1 / 3)]
    p = [sig(0.0), sig(2.0), sig(-1.5), sig(0.5)]
    total = -0.75 * p[3] ** 2 * math.log(1 - p[3])  # the negative's focal term

    def blend(r_cls):
        out = 0.0
        for i, q in enumerate(ious):
            fl = -0.25 * (1 - p[i]) ** 2 * math.log(p[i])
            rd = -(r_reg[i] * q * math.log(p[i]) + q * (1 - q) * math.log(1 - p[i]))  # default reading, β = 1
            out += (1 - r_cls[i]) * fl + r_cls[i] * rd
        return out

    assert float(got["loss_cls"]) == pytest.approx((total + blend(r_cls)) / 3.0, rel=1e-9)
    # Ranking the IoUs instead (r_cls = r_reg) would give a clearly different loss.
    assert abs(blend(r_reg) - blend(r_cls)) > 1e-2


@pytest.mark.parametrize("reading", ["r", "printed"])
def test_ranks_carry_no_gradient(reading):
    # Eq. 10's ranks are constants: the gradient of the loss is that of the reference with R_cls and R_reg
    # frozen at their values (central differences), both w.r.t. the logits (through r_cls) and w.r.t. the IoUs
    # (through r_reg; q itself still enters Eq. 6). τ = 0.1 gives the ranks large derivatives, so a live rank
    # would change the gradient by far more than the tolerance.
    tau, beta, h, avg = 0.1, 2.0, 1e-6, 6.0
    logits, labels, pos_index, pos_gt, pos_iou = random_example(7)
    x = logits.clone().requires_grad_(True)
    q = torch.tensor(pos_iou, dtype=torch.float64, requires_grad=True)
    RASLoss(RASConfig(beta=beta, tau=tau, rank_term=reading))(as_ctx(x, labels, pos_index, pos_gt, q, avg))[
        "loss_cls"
    ].backward()

    base = logits.tolist()
    _, frozen = ref_ras(base, labels, pos_index, pos_gt, pos_iou, avg, beta=beta, tau=tau, reading=reading)

    def fd(shift_logit=None, shift_iou=None, ranks=frozen):
        vals = []
        for sign in (1, -1):
            lg = [row[:] for row in base]
            qs = pos_iou[:]
            if shift_logit is not None:
                lg[shift_logit[0]][shift_logit[1]] += sign * h
            if shift_iou is not None:
                qs[shift_iou] += sign * h
            vals.append(
                ref_ras(lg, labels, pos_index, pos_gt, qs, avg, beta=beta, tau=tau, reading=reading, ranks=ranks)[0]
            )
        return (vals[0] - vals[1]) / (2 * h)

    live_gap = 0.0
    for a in range(len(base)):
        for c in range(len(base[0])):
            want = fd(shift_logit=(a, c))
            assert float(x.grad[a, c]) == pytest.approx(want, abs=1e-7), ("logit", a, c)
            live_gap = max(live_gap, abs(fd(shift_logit=(a, c), ranks=None) - want))
    for k in range(len(pos_iou)):
        want = fd(shift_iou=k)
        assert float(q.grad[k]) == pytest.approx(want, abs=1e-7), ("iou", k)
        live_gap = max(live_gap, abs(fd(shift_iou=k, ranks=None) - want))
    # The example discriminates: with the ranks differentiated, some gradient moves by far more than 1e-7.
    assert live_gap > 1e-3
