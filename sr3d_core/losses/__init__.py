"""Losses. Only light modules are imported here; the IoU losses live in ``sr3d_core.losses.iou``."""

from __future__ import annotations

from sr3d_core.losses.focal import FocalLoss, sigmoid_focal_loss_elementwise

# name → factory taking the LossConfig; "ras" (and QFL/VFL) are added here later.
CLS_LOSSES = {
    "focal": lambda cfg: FocalLoss(cfg.focal_gamma, cfg.focal_alpha),
}


def build_cls_loss(cfg):  # cfg: sr3d_core.config.LossConfig
    """Build the classification loss named by ``cfg.cls_loss``."""
    if cfg.cls_loss not in CLS_LOSSES:
        raise ValueError(f"unknown loss.cls_loss {cfg.cls_loss!r}; known: {sorted(CLS_LOSSES)}")
    return CLS_LOSSES[cfg.cls_loss](cfg)


__all__ = ["CLS_LOSSES", "FocalLoss", "build_cls_loss", "sigmoid_focal_loss_elementwise"]
