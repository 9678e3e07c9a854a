"""The classification-loss interface: a typed context in, a scalar out, one config dataclass per loss.

Every loss sees the whole batch: the logits of every anchor, the assigned class of every anchor, and, for the
positives, which GT they belong to and how well their (detached) predicted box overlaps it. Losses that do not
need the positive context (focal) ignore it; IoU-aware (QFL, VFL) and rank-aware (RAS) losses read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass(frozen=True)
class ClsLossConfig:
    """Base of every classification loss's config; ``name`` picks the loss."""

    name: str = "focal"


@dataclass(frozen=True)
class ClsLossContext:
    """What a classification loss receives for a batch.

    Attributes:
        logits: ``(N, C)`` logits of every anchor of the batch (with grad).
        labels: ``(N,)`` int64 assigned class, ``-1`` = background.
        avg_factor: the divisor (number of positives in the batch, at least 1).
        pos_index: ``(P,)`` int64 indices of the positive anchors (``labels[pos_index] >= 0``), in anchor order.
        pos_gt: ``(P,)`` int64 batch-global index of each positive's GT (groups the positives of one GT).
        pos_iou: ``(P,)`` detached IoU of each positive's predicted box with its GT, in [0, 1].
    """

    logits: torch.Tensor
    labels: torch.Tensor
    avg_factor: float
    pos_index: torch.Tensor
    pos_gt: torch.Tensor
    pos_iou: torch.Tensor

    @property
    def pos_labels(self) -> torch.Tensor:
        """``(P,)`` class of each positive."""
        return self.labels[self.pos_index]

    @staticmethod
    def from_labels(
        logits: torch.Tensor,
        labels: torch.Tensor,
        avg_factor: float | None = None,
        pos_gt: torch.Tensor | None = None,
        pos_iou: torch.Tensor | None = None,
    ) -> "ClsLossContext":
        """Context from per-anchor labels; the GT grouping defaults to one group per positive, IoU to 1."""
        pos_index = (labels >= 0).nonzero().squeeze(1)
        p = len(pos_index)
        return ClsLossContext(
            logits,
            labels,
            float(max(p, 1)) if avg_factor is None else avg_factor,
            pos_index,
            torch.arange(p, device=labels.device) if pos_gt is None else pos_gt,
            logits.new_ones(p) if pos_iou is None else pos_iou,
        )


class ClsLoss(torch.nn.Module):
    """A classification loss; subclasses set ``config_class`` and take an instance of it in ``__init__``."""

    config_class: ClassVar[type[ClsLossConfig]] = ClsLossConfig

    def forward(self, ctx: ClsLossContext) -> dict[str, torch.Tensor]:  # pragma: no cover - interface
        """Return ``{"loss_cls": scalar}`` plus any detached terms worth logging (e.g. ``ras_rdl``)."""
        raise NotImplementedError
