"""Sigmoid focal loss (Lin et al. 2017) as used by TR3D (METHOD_SPEC §1.6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


class FocalLoss(torch.nn.Module):
    """TR3D classification loss: focal over all anchors and classes, summed, / number of positives.

    Args:
        gamma: focusing parameter (2).
        alpha: positive weight (0.25).
    """

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25) -> None:
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha

    def forward(self, cls_logits: torch.Tensor, labels: torch.Tensor, avg_factor: float, **_: object) -> torch.Tensor:
        """Compute the loss.

        Args:
            cls_logits: ``(N, C)`` logits of every anchor of the batch.
            labels: ``(N,)`` int64 target class, ``-1`` = background.
            avg_factor: the divisor (number of positives in the batch, at least 1).
            **_: extra context (positive-anchor IoUs, GT grouping) used by rank-aware losses; ignored here.

        Returns:
            Scalar loss.
        """
        targets = one_hot_targets(labels, cls_logits.shape[1], cls_logits.dtype)
        loss = sigmoid_focal_loss_elementwise(cls_logits, targets, self.gamma, self.alpha)
        return loss.sum() / avg_factor
