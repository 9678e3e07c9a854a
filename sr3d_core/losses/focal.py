"""Sigmoid focal loss (Lin et al. 2017) as used by TR3D."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sr3d_core.losses.base import ClsLoss, ClsLossConfig, ClsLossContext


def sigmoid_focal_loss_elementwise(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: float = 0.25
) -> torch.Tensor:
    """Element-wise ``-α_t (1 - p_t)^γ log p_t`` with soft-capable binary targets.

    Args:
        logits: any shape.
        targets: same shape, in [0, 1].
        gamma: focusing parameter.
        alpha: weight of the positive class.

    Returns:
        The unreduced loss, same shape.
    """
    p = logits.sigmoid()
    # BCE-with-logits is the numerically stable -log p_t.
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t).pow(gamma) * ce


def one_hot_targets(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``(N, C)`` one-hot targets; label ``-1`` (background) gives an all-zero row."""
    t = torch.zeros(len(labels), num_classes, dtype=dtype, device=labels.device)
    pos = labels >= 0
    t[pos, labels[pos]] = 1
    return t


@dataclass(frozen=True)
class FocalConfig(ClsLossConfig):
    """Focal loss settings (TR3D: γ = 2, α = 0.25)."""

    name: str = "focal"
    gamma: float = 2.0
    alpha: float = 0.25

    def __post_init__(self) -> None:
        if self.gamma < 0 or not 0 <= self.alpha <= 1:
            raise ValueError(f"loss.cls: gamma must be >= 0 and alpha in [0, 1], got {self.gamma}, {self.alpha}")


class FocalLoss(ClsLoss):
    """TR3D classification loss: focal over all anchors and classes, summed, / number of positives.

    Args:
        cfg: the settings.
    """

    config_class = FocalConfig

    def __init__(self, cfg: FocalConfig = FocalConfig()) -> None:
        super().__init__()
        self.gamma = cfg.gamma
        self.alpha = cfg.alpha

    def forward(self, ctx: ClsLossContext) -> dict[str, torch.Tensor]:
        """Sum of the element-wise focal loss over anchors and classes, over ``ctx.avg_factor``."""
        targets = one_hot_targets(ctx.labels, ctx.logits.shape[1], ctx.logits.dtype)
        loss = sigmoid_focal_loss_elementwise(ctx.logits, targets, self.gamma, self.alpha)
        return {"loss_cls": loss.sum() / ctx.avg_factor}
