"""TR3D's centre-distance assigner, original and mmdet3d-port variants."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sr3d_core.assign.base import AnchorSet, Assigner, AssignerConfig, AssignResult, GroundTruth, Predictions

# TR3D label2level tables;
# level 1 is the 32-cm level used for large classes.
SCANNET_LABEL2LEVEL: tuple[int, ...] = (0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0)
SUNRGBD_LABEL2LEVEL: tuple[int, ...] = (1, 1, 1, 0, 0, 1, 0, 0, 1, 0)

# Masked distances use this value, as TR3D does; real squared distances are far below it.
_FAR = 1e8


@dataclass(frozen=True)
class TR3DAssignerConfig(AssignerConfig):
    """TR3D assigner settings.

    Attributes:
        top_k: candidates per GT (TR3D ``top_pts_threshold`` = 6).
        label2level: level index per class (one entry per class; required, since the table depends on the
            class list).
        global_nearest_check: the original repo's step 4 (the anchor's globally nearest GT centre, ignoring
            the masks, must be the chosen GT). The mmdet3d port omits it.
    """

    name: str = "tr3d"
    top_k: int = 6
    label2level: tuple[int, ...] = ()
    global_nearest_check: bool = True

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"assigner.top_k must be >= 1, got {self.top_k}")
        if any(v not in (0, 1) for v in self.label2level):
            raise ValueError(f"assigner.label2level entries must be 0 or 1 (the two levels), got {self.label2level}")


def level_mask(levels: torch.Tensor, labels: torch.Tensor, label2level: tuple[int, ...]) -> torch.Tensor:
    """``(N, M)`` bool: anchor n sits on the level that GT m's class is assigned to by the table."""
    table = torch.as_tensor(label2level, device=levels.device, dtype=torch.long)
    return levels[:, None] == table[labels][None, :]


class TR3DAssigner(Assigner):
    """Level table + top-k nearest anchors per GT + nearest-GT resolution.

    Args:
        cfg: the settings (``TR3DAssignerConfig``).
    """

    config_class = TR3DAssignerConfig

    def __init__(self, cfg: TR3DAssignerConfig = TR3DAssignerConfig()) -> None:
        self.top_k = cfg.top_k
        self.label2level = tuple(cfg.label2level)
        self.global_nearest_check = cfg.global_nearest_check

    @torch.no_grad()
    def assign(self, anchors: AnchorSet, preds: Predictions, gt: GroundTruth) -> AssignResult:
        """See ``Assigner.assign``; predictions are ignored (a static assigner)."""
        n, m = len(anchors), len(gt)
        if n == 0 or m == 0:
            return AssignResult.empty(n, anchors.locations.device)
        loc = anchors.locations
        dist = ((loc[:, None, :].double() - gt.boxes[None, :, :3].double()) ** 2).sum(-1)  # (N, M)
        masked = dist
        if self.label2level:
            level_ok = level_mask(anchors.levels, gt.labels, self.label2level)
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
