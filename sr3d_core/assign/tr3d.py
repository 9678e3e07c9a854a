"""TR3D's centre-distance assigner (METHOD_SPEC §1.5), original and mmdet3d-port variants."""

from __future__ import annotations

from typing import Sequence

import torch

from sr3d_core.assign.base import Assigner, AssignResult

# TR3D label2level tables (METHOD_SPEC §1.5, the config values, in sr3d_core.data.classes order);
# level 1 is the 32-cm level used for large classes.
SCANNET_LABEL2LEVEL: tuple[int, ...] = (0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0)
SUNRGBD_LABEL2LEVEL: tuple[int, ...] = (1, 1, 1, 0, 0, 1, 0, 0, 1, 0)
LABEL2LEVEL: dict[str, tuple[int, ...]] = {"scannet": SCANNET_LABEL2LEVEL, "sunrgbd": SUNRGBD_LABEL2LEVEL}

# Masked distances use this value, as TR3D does; real squared distances are far below it.
_FAR = 1e8


class TR3DAssigner(Assigner):
    """Level table + top-k nearest anchors per GT + nearest-GT resolution.

    Args:
        top_k: candidates per GT (TR3D ``top_pts_threshold`` = 6).
        label2level: level index per class; empty = every level allowed.
        global_nearest_check: the original repo's step 4 (the anchor's globally nearest GT centre, ignoring
            the masks, must be the chosen GT). The mmdet3d port omits it.
    """

    def __init__(self, top_k: int = 6, label2level: Sequence[int] = (), global_nearest_check: bool = True) -> None:
        self.top_k = top_k
        self.label2level = tuple(label2level)
        self.global_nearest_check = global_nearest_check

    @torch.no_grad()
    def assign(
        self,
        anchors: torch.Tensor,
        levels: torch.Tensor,
        pred_boxes: torch.Tensor,
        cls_logits: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> AssignResult:
        """See ``Assigner.assign``; predictions are ignored (a static assigner)."""
        n, m = len(anchors), len(gt_boxes)
        if n == 0 or m == 0:
            return AssignResult(anchors.new_full((n,), -1, dtype=torch.long))
        dist = ((anchors[:, None, :].double() - gt_boxes[None, :, :3].double()) ** 2).sum(-1)  # (N, M)
        masked = dist
        if self.label2level:
            table = torch.as_tensor(self.label2level, device=anchors.device, dtype=torch.long)
            level_ok = levels[:, None] == table[gt_labels][None, :]
            masked = torch.where(level_ok, dist, torch.full_like(dist, _FAR))
        k = min(self.top_k + 1, n)
        thresh = masked.topk(k, dim=0, largest=False).values[-1]  # (M,) the (k+1)-th smallest
        cand = masked < thresh[None, :]
        cand_dist = torch.where(cand, masked, torch.full_like(masked, _FAR))
        best, idx = cand_dist.min(dim=1)
        gt_index = torch.where(best < _FAR, idx, torch.full_like(idx, -1))
        if self.global_nearest_check:
            nearest = dist.argmin(dim=1)
            gt_index = torch.where(nearest == gt_index, gt_index, torch.full_like(gt_index, -1))
        return AssignResult(gt_index)
