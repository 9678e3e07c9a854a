"""The label-assignment interface shared by TR3D, SPOTA, simOTA and AlignOTA.

An assigner works on one scene at a time. It receives a typed anchor set (locations, levels and strides in
metres), the detached predictions of those anchors and the scene's ground truth, and returns which GT (if any)
each anchor learns from, plus optional per-positive quantities (the assignment cost, the IoU it computed) that
reach the classification loss. Static assigners (TR3D) ignore the predictions.

Every assigner owns a frozen config dataclass (its YAML schema): ``assigner: {name: spota, k: 6, ...}`` is
checked against the fields of the class registered under that name, so a key one assigner does not read is
refused by name instead of being silently ignored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import torch


@dataclass(frozen=True)
class AssignerConfig:
    """Base of every assigner's config; ``name`` picks the assigner."""

    name: str = "tr3d"


@dataclass(frozen=True)
class AnchorSet:
    """The anchors of one scene.

    Attributes:
        locations: ``(N, 3)`` anchor locations in metres.
        levels: ``(N,)`` int64 output level of each anchor (0 = finest).
        strides: ``(N,)`` anchor spacing of each anchor's level, in metres.
    """

    locations: torch.Tensor
    levels: torch.Tensor
    strides: torch.Tensor

    def __len__(self) -> int:
        return len(self.locations)


@dataclass(frozen=True)
class Predictions:
    """Detached predictions of the anchors of one scene.

    Attributes:
        boxes: ``(N, 7)`` decoded boxes (gravity centre, full sizes, yaw).
        cls_logits: ``(N, C)`` classification logits.
    """

    boxes: torch.Tensor
    cls_logits: torch.Tensor


@dataclass(frozen=True)
class GroundTruth:
    """Ground truth of one scene.

    Attributes:
        boxes: ``(M, 7)`` boxes (gravity centre, full sizes, yaw; yaw 0 for axis-aligned data).
        labels: ``(M,)`` int64 class indices.
    """

    boxes: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class AssignResult:
    """Assignment of one scene.

    Attributes:
        gt_index: ``(N,)`` int64 index of the assigned GT, ``-1`` for background.
        cost: optional ``(N,)`` assignment cost of each positive with its GT (``nan`` for background).
        iou: optional ``(N,)`` IoU of each positive's prediction with its GT as the assigner computed it
            (``nan`` for background).
    """

    gt_index: torch.Tensor
    cost: Optional[torch.Tensor] = None
    iou: Optional[torch.Tensor] = None

    @property
    def pos_mask(self) -> torch.Tensor:
        """Boolean mask of positive anchors."""
        return self.gt_index >= 0

    @staticmethod
    def empty(n: int, device: torch.device) -> "AssignResult":
        """All ``n`` anchors background."""
        return AssignResult(torch.full((n,), -1, dtype=torch.long, device=device))


class Assigner(ABC):
    """Maps anchors of one scene to GT boxes.

    Subclasses set ``config_class`` to their config dataclass and take an instance of it in ``__init__``.
    """

    config_class: ClassVar[type[AssignerConfig]] = AssignerConfig

    @abstractmethod
    def assign(self, anchors: AnchorSet, preds: Predictions, gt: GroundTruth) -> AssignResult:
        """Assign each anchor to a GT or to background.

        Args:
            anchors: the scene's anchors.
            preds: their detached predictions.
            gt: the scene's ground truth.

        Returns:
            The assignment.
        """

    def assign_batch(self, scenes: Sequence[tuple[AnchorSet, Predictions, GroundTruth]]) -> list[AssignResult]:
        """Assign the scenes of a batch, each on its own (same results as ``assign`` scene by scene).

        Assigners whose cost is many small tensor ops override this to evaluate every scene's pairs at once.

        Args:
            scenes: ``(anchors, predictions, ground truth)`` of each scene.

        Returns:
            One assignment per scene.
        """
        return [self.assign(anchors, preds, gt) for anchors, preds, gt in scenes]


class PredictionAwareAssigner(Assigner):
    """An assigner whose costs use the predictions, so it needs the box type (rotated IoU or not).

    ``assign`` handles the empty cases and calls ``_assign`` with at least one anchor and one GT.

    Args:
        cfg: the subclass's config (``config_class``); None = its defaults.
        rotated: boxes carry a yaw.
    """

    def __init__(self, cfg: Optional[AssignerConfig] = None, rotated: bool = False) -> None:
        self.cfg = self.config_class() if cfg is None else cfg
        self.rotated = rotated

    @torch.no_grad()
    def assign(self, anchors: AnchorSet, preds: Predictions, gt: GroundTruth) -> AssignResult:
        """See ``Assigner.assign``."""
        if len(anchors) == 0 or len(gt) == 0:
            return AssignResult.empty(len(anchors), anchors.locations.device)
        return self._assign(anchors, preds, gt)

    @abstractmethod
    def _assign(self, anchors: AnchorSet, preds: Predictions, gt: GroundTruth) -> AssignResult:
        """``assign`` for a scene with anchors and GT."""


def gather_or_nan(matrix: torch.Tensor, gt_index: torch.Tensor) -> torch.Tensor:
    """``matrix[n, gt_index[n]]`` of an ``(N, M)`` matrix, nan where ``gt_index`` is -1 (background)."""
    val = matrix.gather(1, gt_index.clamp(min=0)[:, None]).squeeze(1)
    return torch.where(gt_index >= 0, val, torch.full_like(val, float("nan")))


def resolve_conflicts(cost: torch.Tensor, chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Give each anchor chosen by one or more GTs to the GT with the lowest cost (the simOTA rule).

    Args:
        cost: ``(N, M)`` cost of anchor n for GT m.
        chosen: ``(N, M)`` bool, GT m picked anchor n.

    Returns:
        ``gt_index (N,)`` (-1 where no GT picked the anchor) and ``cost (N,)`` of the kept pair (nan for background).
    """
    masked = torch.where(chosen, cost, torch.full_like(cost, float("inf")))
    best_cost, best = masked.min(dim=1)
    picked = chosen.any(dim=1)
    gt_index = torch.where(picked, best, torch.full_like(best, -1))
    return gt_index, torch.where(picked, best_cost, torch.full_like(best_cost, float("nan")))
