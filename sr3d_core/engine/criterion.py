"""Training objective: assignment + classification loss + box loss, each picked by name from the config.

It takes the network's raw outputs and decodes the boxes itself, so a trainer needs nothing of the network but
its forward pass (also through a ``DistributedDataParallel`` wrapper).

The assigner and the classification loss are looked up in ``sr3d_core.assign.ASSIGNERS`` and
``sr3d_core.losses.CLS_LOSSES``, so SPOTA and RAS are config switches. The classification loss receives a typed
positive-anchor context (IoU with its GT, GT grouping) that IoU- and rank-aware losses need.
"""

from __future__ import annotations

import torch
from torch import nn

from sr3d_core.assign import AnchorSet, GroundTruth, Predictions, build_assigner
from sr3d_core.assign.costs import paired_iou
from sr3d_core.boxes import with_yaw
from sr3d_core.config import Config
from sr3d_core.geometry.iou import rotated_iou_paired_diff
from sr3d_core.losses import ClsLossContext, build_cls_loss
from sr3d_core.model.head import decode_boxes
from sr3d_core.model.network import RawOutputs

# The union floor of the rotated DIoU loss; the criterion computes its positives' IoU with it once for both the
# classification targets and the loss.
_ROTATED_IOU_EPS = 1e-6


def box_loss_fn(box_type: str, rotated_quirk: bool):
    """Per-pair DIoU loss ``(K, 7), (K, 7)[, IoU (K,)] → (K,)`` for the box type (a rotated loss reuses a given
    IoU)."""
    from sr3d_core.losses import iou as iou_losses

    if box_type == "aligned":
        return lambda p, g, iou=None: iou_losses.axis_aligned_diou_loss(p[:, :6], g[:, :6], reduction="none")
    return lambda p, g, iou=None: iou_losses.rotated_diou_loss(
        p, g, reduction="none", eps=_ROTATED_IOU_EPS, tr3d_quirk=rotated_quirk, iou=iou
    )


class Criterion(nn.Module):
    """TR3D loss and its SR3D variants: an assigner and a classification loss picked by name, DIoU box loss.

    Args:
        cfg: the experiment config (assigner, loss, model.box_type).
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.assigner = build_assigner(cfg.assigner, rotated=cfg.model.box_type == "rotated")
        self.cls_loss = build_cls_loss(cfg.loss.cls)
        self.box_loss = box_loss_fn(cfg.model.box_type, cfg.loss.rotated_diou_quirk)
        self.rotated = cfg.model.box_type == "rotated"
        self.cls_weight = cfg.loss.cls_weight
        self.box_weight = cfg.loss.box_weight
        self.height_quirk = cfg.model.tr3d_height_quirk
        self.amp = cfg.train.amp

    def decode(self, out: RawOutputs) -> torch.Tensor:
        """``(N, 7)`` boxes of every anchor, with grad, in float32; decoded under the autocast the forward pass ran
        in (bfloat16 with ``train.amp`` on CUDA), as the network's own decoding would be."""
        use_amp = self.amp and out.reg.device.type == "cuda"
        with torch.autocast(device_type=out.reg.device.type, dtype=torch.bfloat16, enabled=use_amp):
            boxes = decode_boxes(out.anchors, out.reg, self.height_quirk)
        return boxes.float()

    def forward(
        self,
        out: RawOutputs,
        gt_boxes: list[torch.Tensor],
        gt_labels: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Compute the losses of a batch.

        Args:
            out: raw network outputs (their boxes are decoded here).
            gt_boxes: per scene ``(M_b, 6 or 7)`` GT boxes (gravity centre).
            gt_labels: per scene ``(M_b,)`` int64 labels.

        Returns:
            ``loss`` (total), ``loss_cls``, ``loss_box``, ``num_pos``, the alignment diagnostics ``mean_iou``
            (IoU of positive predictions with their GT) and ``aic`` (mean |p − IoU| over positives), and any
            further terms the classification loss reports; all but ``loss`` detached.
        """
        pred_boxes = self.decode(out)
        n = len(out.anchors)
        device = out.anchors.device
        gt_global = torch.full((n,), -1, dtype=torch.long, device=device)
        scenes, indices, all_gt_boxes, all_gt_labels = [], [], [], []
        for b, idx in enumerate(out.scene_indices()):
            gb = with_yaw(gt_boxes[b].to(device=device, dtype=pred_boxes.dtype)[:, :7])
            gl = gt_labels[b].to(device=device, dtype=torch.long)

            def take(t: torch.Tensor, idx: torch.Tensor = idx) -> torch.Tensor:
                return t.index_select(0, idx)  # several times faster than t[idx] on the CPU

            scenes.append(
                (
                    AnchorSet(take(out.anchors), take(out.levels), take(out.strides)),
                    Predictions(take(pred_boxes.detach()), take(out.cls_logits.detach())),
                    GroundTruth(gb, gl),
                )
            )
            indices.append(idx)
            all_gt_boxes.append(gb)
            all_gt_labels.append(gl)
        results = self.assigner.assign_batch(scenes)
        # The IoU of each positive with its GT: prediction-aware assigners computed it already.
        known = all(r.iou is not None or not bool(r.pos_mask.any()) for r in results)
        iou_global = pred_boxes.new_full((n,), float("nan")) if known else None
        offset = 0
        for idx, res, gb in zip(indices, results, all_gt_boxes):
            pos = res.gt_index >= 0
            gt_global[idx[pos]] = res.gt_index[pos] + offset
            if iou_global is not None and res.iou is not None:
                iou_global[idx[pos]] = res.iou[pos].to(iou_global.dtype)
            offset += len(gb)
        gtb = torch.cat(all_gt_boxes) if all_gt_boxes else pred_boxes.new_zeros(0, 7)
        gtl = torch.cat(all_gt_labels) if all_gt_labels else gt_global.new_zeros(0)
        pos = gt_global >= 0
        num_pos = int(pos.sum())
        labels = torch.full_like(gt_global, -1)
        labels[pos] = gtl[gt_global[pos]]
        avg = float(max(num_pos, 1))
        pos_pred = pred_boxes[pos]
        pos_gt = gtb[gt_global[pos]]
        box_iou = None
        if iou_global is None and num_pos and self.rotated:
            # The rotated IoU is a large part of the criterion: computed once, with its graph, for the
            # classification targets (detached) and the box loss.
            box_iou = rotated_iou_paired_diff(
                with_yaw(pos_pred.float()), with_yaw(pos_gt.float()), eps=_ROTATED_IOU_EPS
            )
        with torch.no_grad():
            if iou_global is not None:
                pos_iou = iou_global[pos].float()
            elif box_iou is not None:
                pos_iou = box_iou.detach()
            elif num_pos:
                pos_iou = paired_iou(pos_pred.detach().float(), pos_gt.float(), self.rotated)
            else:
                pos_iou = pos_pred.new_zeros(0)
            pos_score = out.cls_logits[pos].detach().float().sigmoid().gather(1, labels[pos][:, None]).squeeze(1)
        ctx = ClsLossContext(out.cls_logits.float(), labels, avg, pos.nonzero().squeeze(1), gt_global[pos], pos_iou)
        cls_terms = self.cls_loss(ctx)
        loss_cls = cls_terms.pop("loss_cls")
        if num_pos:
            loss_box = self.box_loss(pos_pred.float(), pos_gt.float(), box_iou).mean()
        else:
            loss_box = pred_boxes.sum() * 0.0  # keeps the graph (DDP needs every parameter used)
        loss = self.cls_weight * loss_cls + self.box_weight * loss_box
        return {
            "loss": loss,
            "loss_cls": loss_cls.detach(),
            "loss_box": loss_box.detach(),
            "num_pos": torch.tensor(float(num_pos)),
            "mean_iou": pos_iou.mean() if num_pos else torch.tensor(0.0),
            "aic": (pos_score - pos_iou).abs().mean() if num_pos else torch.tensor(0.0),
            **{k: v.detach() for k, v in cls_terms.items()},
        }
