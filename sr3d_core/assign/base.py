"""The label-assignment interface shared by TR3D, SPOTA, simOTA, AlignOTA, ...

An assigner works on one scene at a time and sees everything a dynamic assigner may need: anchor locations and
levels, the detached decoded predictions and classification logits, and the GT boxes/labels. Static assigners
(TR3D) ignore the predictions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class AssignResult:
    """Assignment of one scene.

    Attributes:
        gt_index: ``(N_anchors,)`` int64 index of the assigned GT, ``-1`` for background.
        extras: assigner-specific tensors (e.g. the cost matrix) for losses that want them (RAS, logging).
    """

    gt_index: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def pos_mask(self) -> torch.Tensor:
        """Boolean mask of positive anchors."""
        return self.gt_index >= 0


class Assigner(ABC):
    """Maps anchors of one scene to GT boxes."""

    @abstractmethod
    def assign(
        self,
        anchors: torch.Tensor,
        levels: torch.Tensor,
        pred_boxes: torch.Tensor,
        cls_logits: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> AssignResult:
        """Assign each anchor to a GT or to background.

        Args:
            anchors: ``(N, 3)`` anchor locations in metres.
            levels: ``(N,)`` int64 level index of each anchor.
            pred_boxes: ``(N, 7)`` decoded predictions, detached.
            cls_logits: ``(N, C)`` classification logits, detached.
            gt_boxes: ``(M, 7)`` GT boxes (gravity centre).
            gt_labels: ``(M,)`` int64 GT labels.

        Returns:
            The assignment.
        """
