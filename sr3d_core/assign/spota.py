"""SPOTA: spatial-prioritized optimal transport assignment (SR3D, Eqs. 3-5).

The cost of anchor j for GT i is ``C = γ_c · (C_reg + R_VD)`` with the centre prior ``γ_c = 1 − exp(−μ d²)``
(d: anchor-to-GT-centre distance), the regression cost ``C_reg`` of the detached decoded prediction (−ln IoU by
default, UnitBox's IoU loss) and the normalized vertex distance ``R_VD``. There is no classification term. Each
GT takes its ``k`` least-cost candidates (the YOLOX top-k selection, not Sinkhorn); an anchor picked by several
GTs keeps one by the conflict rule.

What the paper leaves open is a switch here (the defaults are marked): the form of ``C_reg``, which vertices
``R_VD`` pairs, the unit of d, the conflict rule, the candidate set, the inside-box restriction, and the
classification cost of the "with C_cls" ablation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from sr3d_core.assign.base import (
    AnchorSet,
    AssignerConfig,
    AssignResult,
    GroundTruth,
    PredictionAwareAssigner,
    Predictions,
    gather_or_nan,
    resolve_conflicts,
)
from sr3d_core.assign.costs import (
    centre_distance_sq_over_diag_sq,
    normalized_vertex_distance,
    paired_iou,
    points_in_boxes,
)
from sr3d_core.assign.tr3d import level_mask

_C_REG = ("neg_log_iou", "one_minus_iou", "one_minus_diou")
_VERTICES = ("opposite", "all8")
_UNITS = ("metre", "gt_diagonal")
_CONFLICTS = ("min_cost", "nearest_centre")
_CANDIDATES = ("all", "label2level")


@dataclass(frozen=True)
class SpotaConfig(AssignerConfig):
    """SPOTA settings.

    Attributes:
        k: positives per GT (6).
        mu: centre-prior scale μ of Eq. 4 (1).
        distance_unit: unit of d in Eq. 4: ``"metre"`` (default) or ``"gt_diagonal"`` (d over the GT's diagonal).
        c_reg: ``"neg_log_iou"`` (default, −ln(IoU + ε)), ``"one_minus_iou"`` or ``"one_minus_diou"``.
        use_rvd: add R_VD (False: the "without R_VD" ablation).
        vertices: R_VD vertex pairs: ``"opposite"`` (two opposite corners, default) or ``"all8"``.
        cls_cost_weight: λ of the "with C_cls" ablation: ``+ λ · BCE(p_gt_class, 1)`` (0 = SPOTA, no C_cls).
        conflict: an anchor picked by several GTs goes to the ``"min_cost"`` GT (default) or the
            ``"nearest_centre"`` one.
        candidates: ``"all"`` anchors of both levels (default) or TR3D's ``"label2level"`` table.
        label2level: the table for ``candidates: label2level`` (one entry per class).
        inside_box: only anchors inside the GT box are candidates.
        prefilter: keep only the ``prefilter`` anchors nearest each GT centre as candidates before computing
            IoUs (0 = off); makes rotated IoUs affordable on dense levels.
        eps: ε of −ln(IoU + ε).
    """

    name: str = "spota"
    k: int = 6
    mu: float = 1.0
    distance_unit: str = "metre"
    c_reg: str = "neg_log_iou"
    use_rvd: bool = True
    vertices: str = "opposite"
    cls_cost_weight: float = 0.0
    conflict: str = "min_cost"
    candidates: str = "all"
    label2level: tuple[int, ...] = ()
    inside_box: bool = False
    prefilter: int = 0
    eps: float = 1e-7

    def __post_init__(self) -> None:
        for field_name, value, allowed in (
            ("c_reg", self.c_reg, _C_REG),
            ("vertices", self.vertices, _VERTICES),
            ("distance_unit", self.distance_unit, _UNITS),
            ("conflict", self.conflict, _CONFLICTS),
            ("candidates", self.candidates, _CANDIDATES),
        ):
            if value not in allowed:
                raise ValueError(f"assigner.{field_name} must be one of {allowed}, got {value!r}")
        if self.k < 1:
            raise ValueError(f"assigner.k must be >= 1, got {self.k}")
        if self.mu <= 0:
            raise ValueError(f"assigner.mu must be > 0, got {self.mu}")
        if self.cls_cost_weight < 0 or self.prefilter < 0 or not 0 < self.eps < 1:
            raise ValueError("assigner.cls_cost_weight and assigner.prefilter must be >= 0, assigner.eps in (0, 1)")
        if self.candidates == "label2level" and not self.label2level:
            raise ValueError("assigner.candidates: label2level needs assigner.label2level (one entry per class)")


def candidate_mask(cfg: SpotaConfig, anchors: AnchorSet, gt: GroundTruth) -> torch.Tensor:
    """``(N, M)`` bool: anchor n may be assigned to GT m (level table, inside-box rule, nearest-M prefilter)."""
    loc = anchors.locations
    cand = torch.ones(len(loc), len(gt), dtype=torch.bool, device=loc.device)
    if cfg.candidates == "label2level":
        cand &= level_mask(anchors.levels, gt.labels, cfg.label2level)
    if cfg.inside_box:
        cand &= points_in_boxes(loc, gt.boxes)
    if cfg.prefilter and cfg.prefilter < len(loc):
        d2 = ((loc[:, None, :] - gt.boxes[None, :, :3]) ** 2).sum(-1)
        d2 = torch.where(cand, d2, torch.full_like(d2, float("inf")))
        near = d2.topk(cfg.prefilter, dim=0, largest=False).indices  # (P, M)
        keep = torch.zeros_like(cand)
        keep.scatter_(0, near, True)
        cand &= keep
    return cand


def centre_prior(cfg: SpotaConfig, anchors: torch.Tensor, gt_boxes: torch.Tensor) -> torch.Tensor:
    """γ_c of Eq. 4 for ``(K, 3)`` anchors paired with ``(K, 7)`` GT boxes."""
    d2 = ((anchors - gt_boxes[:, :3]) ** 2).sum(dim=1)
    if cfg.distance_unit == "gt_diagonal":
        d2 = d2 / (gt_boxes[:, 3:6] ** 2).sum(dim=1).clamp(min=1e-12)
    return 1.0 - torch.exp(-cfg.mu * d2)


def spota_pair_cost(
    cfg: SpotaConfig,
    anchors: torch.Tensor,
    pred_boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    rotated: bool,
    gt_class_logit: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The SPOTA cost (Eq. 5) of anchor/GT pairs.

    Args:
        cfg: the settings.
        anchors: ``(K, 3)`` anchor locations.
        pred_boxes: ``(K, 7)`` detached predictions of those anchors.
        gt_boxes: ``(K, 7)`` the paired GT boxes.
        rotated: rotated boxes (IoU, vertices and enclosure with yaw).
        gt_class_logit: ``(K,)`` logit of the GT's class, needed when ``cls_cost_weight > 0``.

    Returns:
        ``cost (K,)`` and ``iou (K,)``.
    """
    iou = paired_iou(pred_boxes, gt_boxes, rotated)
    if cfg.c_reg == "neg_log_iou":
        c_reg = -torch.log(iou + cfg.eps)
    elif cfg.c_reg == "one_minus_iou":
        c_reg = 1.0 - iou
    else:
        c_reg = 1.0 - iou + centre_distance_sq_over_diag_sq(pred_boxes, gt_boxes, rotated)
    if cfg.use_rvd:
        c_reg = c_reg + normalized_vertex_distance(pred_boxes, gt_boxes, rotated, cfg.vertices)
    cost = centre_prior(cfg, anchors, gt_boxes) * c_reg
    if cfg.cls_cost_weight > 0:
        if gt_class_logit is None:
            raise ValueError("cls_cost_weight > 0 needs the GT-class logits")
        # Cross-entropy of the GT class, Eq. 2's C_cls, added back outside the centre prior.
        cost = cost + cfg.cls_cost_weight * F.binary_cross_entropy_with_logits(
            gt_class_logit, torch.ones_like(gt_class_logit), reduction="none"
        )
    return cost, iou


def top_k_per_gt(cost: torch.Tensor, k: int) -> torch.Tensor:
    """``(N, M)`` bool: the ``k`` least finite costs of each GT column (fewer when fewer are finite)."""
    n = cost.shape[0]
    kk = min(k, n)
    vals, idx = cost.topk(kk, dim=0, largest=False)
    chosen = torch.zeros_like(cost, dtype=torch.bool)
    chosen.scatter_(0, idx, torch.isfinite(vals))
    return chosen


class SpotaAssigner(PredictionAwareAssigner):
    """SR3D's assigner.

    Args:
        cfg: the settings (``SpotaConfig``).
        rotated: boxes carry a yaw (SUN RGB-D-like data).
    """

    config_class = SpotaConfig

    cfg: SpotaConfig

    def _assign(self, anchors: AnchorSet, preds: Predictions, gt: GroundTruth) -> AssignResult:
        return self.assign_batch([(anchors, preds, gt)])[0]

    @torch.no_grad()
    def assign_batch(self, scenes: Sequence[tuple[AnchorSet, Predictions, GroundTruth]]) -> list[AssignResult]:
        """See ``Assigner.assign_batch``: the candidate pairs of all scenes are costed in one pass.

        The pair cost is some hundred small tensor ops (rotated IoU, R_VD over four parametrizations); per-op
        overhead, not arithmetic, dominates it, so one pass over the batch costs about as much as one scene.
        """
        results: list[Optional[AssignResult]] = [None] * len(scenes)
        todo: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        for i, (anchors, preds, gt) in enumerate(scenes):
            if len(anchors) == 0 or len(gt) == 0:
                results[i] = AssignResult.empty(len(anchors), anchors.locations.device)
                continue
            ai, gi = candidate_mask(self.cfg, anchors, gt).nonzero(as_tuple=True)
            todo.append((i, ai, gi))
        if todo:
            logits = None
            if self.cfg.cls_cost_weight > 0:
                logits = torch.cat([scenes[i][1].cls_logits[ai, scenes[i][2].labels[gi]] for i, ai, gi in todo])
            pair_cost, pair_iou = spota_pair_cost(
                self.cfg,
                torch.cat([scenes[i][0].locations[ai] for i, ai, _ in todo]),
                torch.cat([scenes[i][1].boxes[ai] for i, ai, _ in todo]),
                torch.cat([scenes[i][2].boxes[gi] for i, _, gi in todo]),
                self.rotated,
                logits,
            )
            sizes = [len(ai) for _, ai, _ in todo]
            for (i, ai, gi), cost, iou in zip(todo, pair_cost.split(sizes), pair_iou.split(sizes)):
                results[i] = self._select(scenes[i][0], scenes[i][2], ai, gi, cost, iou)
        return results  # type: ignore[return-value]

    def _select(
        self,
        anchors: AnchorSet,
        gt: GroundTruth,
        ai: torch.Tensor,
        gi: torch.Tensor,
        pair_cost: torch.Tensor,
        pair_iou: torch.Tensor,
    ) -> AssignResult:
        """Top-k per GT and the conflict rule, from the costs of one scene's candidate pairs ``(ai, gi)``."""
        n, m = len(anchors), len(gt)
        cost = torch.full((n, m), float("inf"), dtype=pair_cost.dtype, device=pair_cost.device)
        cost[ai, gi] = pair_cost
        iou = torch.zeros_like(cost)
        iou[ai, gi] = pair_iou
        chosen = top_k_per_gt(cost, self.cfg.k)
        if self.cfg.conflict == "min_cost":
            gt_index, kept_cost = resolve_conflicts(cost, chosen)
        else:
            d2 = ((anchors.locations[:, None, :] - gt.boxes[None, :, :3]) ** 2).sum(-1)
            gt_index, _ = resolve_conflicts(d2, chosen)
            kept_cost = gather_or_nan(cost, gt_index)
        return AssignResult(gt_index, cost=kept_cost, iou=gather_or_nan(iou, gt_index))
