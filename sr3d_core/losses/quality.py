"""IoU-aware classification losses SR3D compares RAS with (its Tab. 5): QFL (GFL) and VFL (VarifocalNet).

Both train the GT-class channel of a positive towards the IoU ``q`` of its (detached) predicted box with its GT,
and every other channel of every anchor towards 0. Both are summed and divided by the number of positives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sr3d_core.losses.base import ClsLoss, ClsLossConfig, ClsLossContext


def soft_targets(ctx: ClsLossContext) -> torch.Tensor:
    """``(N, C)`` targets: the positive's IoU on its class channel, 0 elsewhere."""
    t = torch.zeros_like(ctx.logits)
    t[ctx.pos_index, ctx.pos_labels] = ctx.pos_iou.to(t.dtype)
    return t


@dataclass(frozen=True)
class QFLConfig(ClsLossConfig):
    """Quality focal loss settings (β = 2 as in GFL)."""

    name: str = "qfl"
    beta: float = 2.0

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError(f"loss.cls.beta must be >= 0, got {self.beta}")


class QualityFocalLoss(ClsLoss):
    """``QFL(σ) = −|y − σ|^β · ((1 − y) log(1 − σ) + y log σ)`` with y the soft target."""

    config_class = QFLConfig

    def __init__(self, cfg: QFLConfig = QFLConfig()) -> None:
        super().__init__()
        self.beta = cfg.beta

    def forward(self, ctx: ClsLossContext) -> dict[str, torch.Tensor]:
        """See the class docstring; summed over anchors and classes, over ``ctx.avg_factor``."""
        y = soft_targets(ctx)
        bce = F.binary_cross_entropy_with_logits(ctx.logits, y, reduction="none")
        loss = (y - ctx.logits.sigmoid()).abs().pow(self.beta) * bce
        return {"loss_cls": loss.sum() / ctx.avg_factor}


@dataclass(frozen=True)
class VFLConfig(ClsLossConfig):
    """Varifocal loss settings (α = 0.75, γ = 2 as in VarifocalNet)."""

    name: str = "vfl"
    alpha: float = 0.75
    gamma: float = 2.0

    def __post_init__(self) -> None:
        if self.gamma < 0 or self.alpha < 0:
            raise ValueError(f"loss.cls: alpha and gamma must be >= 0, got {self.alpha}, {self.gamma}")


class VarifocalLoss(ClsLoss):
    """``VFL(p, q) = −q (q log p + (1 − q) log(1 − p))`` for q > 0, ``−α p^γ log(1 − p)`` for q = 0."""

    config_class = VFLConfig

    def __init__(self, cfg: VFLConfig = VFLConfig()) -> None:
        super().__init__()
        self.alpha, self.gamma = cfg.alpha, cfg.gamma

    def forward(self, ctx: ClsLossContext) -> dict[str, torch.Tensor]:
        """See the class docstring; summed over anchors and classes, over ``ctx.avg_factor``."""
        q = soft_targets(ctx)
        p = ctx.logits.sigmoid()
        # The weight is q on the positives' target channels and α p^γ elsewhere; the BCE against q gives both
        # branches' log terms (against 0 where q = 0).
        weight = torch.where(q > 0, q, self.alpha * p.detach().pow(self.gamma))
        bce = F.binary_cross_entropy_with_logits(ctx.logits, q, reduction="none")
        return {"loss_cls": (weight * bce).sum() / ctx.avg_factor}
