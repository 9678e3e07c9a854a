"""RAS: rank-aware adaptive self-distillation (SR3D, Eqs. 6, 7, 9, 10).

For the positives of each GT, a soft rank of their IoUs (Eq. 9, temperature τ) becomes ``r_reg = exp(−R)``
(Eq. 10 as we read "a negative exponentiation of R": 1 for the best-localized positive). The rank-aware
self-distillation loss of a positive with IoU q and confidence σ on its GT class (Eq. 6, minimized as −RDL) is

    −[ w(r_reg)^β · q · log σ + q (1 − q) · log(1 − σ) ],

whose per-sample optimum is ``σ* = w / (w + 1 − q)``. As printed, ``w = 1 − r_reg``, which drives the
best-localized positive's confidence to 0, the opposite of the paper's stated intent; ``rank_term`` selects a
reading: ``"printed"`` (1 − r), ``"position"`` (1 − R, the rank position R in place of r) or ``"r"`` (r in place
of 1 − r, the default). The blend of Eq. 7 weights the positive's GT-class term by the soft rank of its
classification score among its GT's positives, ``r_cls``: ``(1 − r_cls) · FL + r_cls · RDL``; every other
channel and every negative keeps its focal term. Ranks are constants (no gradient). The sum is divided by the
number of positives, as TR3D's focal loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sr3d_core.losses.base import ClsLoss, ClsLossConfig, ClsLossContext
from sr3d_core.losses.focal import one_hot_targets, sigmoid_focal_loss_elementwise

_RANK_TERMS = ("printed", "position", "r")


@dataclass(frozen=True)
class RASConfig(ClsLossConfig):
    """RAS settings.

    Attributes:
        beta: rank-modulation exponent β of Eq. 6 (1).
        tau: soft-rank temperature τ of Eq. 9 (0.01).
        rank_term: the reading of Eq. 6's rank term (see the module docstring): ``"r"`` (default),
            ``"position"`` or ``"printed"``.
        gamma / alpha: the focal loss it blends with (TR3D: 2, 0.25).
        blend: apply Eq. 7's adaptive blend (False: RDL alone on the positives' GT-class channels).
    """

    name: str = "ras"
    beta: float = 1.0
    tau: float = 0.01
    rank_term: str = "r"
    gamma: float = 2.0
    alpha: float = 0.25
    blend: bool = True

    def __post_init__(self) -> None:
        if self.rank_term not in _RANK_TERMS:
            raise ValueError(f"loss.cls.rank_term must be one of {_RANK_TERMS}, got {self.rank_term!r}")
        if self.tau <= 0 or self.beta < 0:
            raise ValueError(f"loss.cls: tau must be > 0 and beta >= 0, got tau={self.tau}, beta={self.beta}")


def soft_rank(values: torch.Tensor, groups: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 9 within groups: ``R_i = (1/N_g) Σ_{j≠i, g(j)=g(i)} σ((v_j − v_i)/τ)``; ≈ 0 for a group's largest.

    Args:
        values: ``(P,)`` values to rank (descending: a larger value has a smaller rank).
        groups: ``(P,)`` group id of each value.
        tau: temperature; as τ → 0, ``N_g · R_i`` becomes the number of larger values in the group.

    Returns:
        ``(P,)`` soft ranks in [0, (N_g − 1)/N_g].
    """
    same = groups[:, None] == groups[None, :]
    same.fill_diagonal_(False)
    pair = torch.sigmoid((values[None, :] - values[:, None]) / tau)  # [i, j] = σ((v_j − v_i)/τ)
    n_group = (groups[:, None] == groups[None, :]).sum(dim=1).to(values.dtype)
    return (pair * same).sum(dim=1) / n_group


def rank_weight(r_reg: torch.Tensor, rank: torch.Tensor, reading: str, beta: float) -> torch.Tensor:
    """The factor multiplying ``q log σ`` in Eq. 6 under each reading."""
    if reading == "printed":
        base = 1.0 - r_reg
    elif reading == "position":
        base = 1.0 - rank
    else:
        base = r_reg
    return base.clamp(min=0).pow(beta)


def rdl(logit: torch.Tensor, q: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """−RDL of Eq. 6 per positive: ``−[weight · q · log σ + q(1 − q) · log(1 − σ)]`` (σ = sigmoid(logit))."""
    return -(weight * q * F.logsigmoid(logit) + q * (1 - q) * F.logsigmoid(-logit))


class RASLoss(ClsLoss):
    """SR3D's classification loss (Eq. 7).

    Args:
        cfg: the settings.
    """

    config_class = RASConfig

    def __init__(self, cfg: RASConfig = RASConfig()) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, ctx: ClsLossContext) -> dict[str, torch.Tensor]:
        """Return ``loss_cls`` and the logged means ``ras_rdl`` and ``ras_r_cls`` over positives."""
        cfg = self.cfg
        targets = one_hot_targets(ctx.labels, ctx.logits.shape[1], ctx.logits.dtype)
        focal = sigmoid_focal_loss_elementwise(ctx.logits, targets, cfg.gamma, cfg.alpha)
        if len(ctx.pos_index) == 0:
            return {
                "loss_cls": focal.sum() / ctx.avg_factor,
                "ras_rdl": focal.new_zeros(()),
                "ras_r_cls": focal.new_zeros(()),
            }
        pos_logit = ctx.logits[ctx.pos_index, ctx.pos_labels]
        q = ctx.pos_iou.to(pos_logit.dtype).clamp(0, 1)
        with torch.no_grad():
            rank_reg = soft_rank(q, ctx.pos_gt, cfg.tau)
            r_reg = torch.exp(-rank_reg)
            r_cls = torch.exp(-soft_rank(pos_logit.detach().sigmoid(), ctx.pos_gt, cfg.tau))
            w = rank_weight(r_reg, rank_reg, cfg.rank_term, cfg.beta)
        pos_rdl = rdl(pos_logit, q, w)
        pos_focal = focal[ctx.pos_index, ctx.pos_labels]
        blended = (1 - r_cls) * pos_focal + r_cls * pos_rdl if cfg.blend else pos_rdl
        # Replace the positives' GT-class focal terms by the blend; everything else stays focal.
        total = focal.sum() - pos_focal.sum() + blended.sum()
        return {"loss_cls": total / ctx.avg_factor, "ras_rdl": pos_rdl.detach().mean(), "ras_r_cls": r_cls.mean()}
