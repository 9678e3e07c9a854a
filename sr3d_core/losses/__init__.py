"""Losses. Only light modules are imported here; the IoU losses live in ``sr3d_core.losses.iou``."""

from __future__ import annotations

from sr3d_core.losses.base import ClsLoss, ClsLossConfig, ClsLossContext
from sr3d_core.losses.focal import FocalConfig, FocalLoss, sigmoid_focal_loss_elementwise
from sr3d_core.losses.quality import QFLConfig, QualityFocalLoss, VarifocalLoss, VFLConfig
from sr3d_core.losses.ras import RASConfig, RASLoss

# name → classification loss class; each class names its config dataclass (``config_class``), its YAML schema.
CLS_LOSSES: dict[str, type[ClsLoss]] = {
    "focal": FocalLoss,
    "ras": RASLoss,
    "qfl": QualityFocalLoss,
    "vfl": VarifocalLoss,
}


def build_cls_loss(cfg: ClsLossConfig) -> ClsLoss:
    """Build the classification loss named by ``cfg.name``."""
    if cfg.name not in CLS_LOSSES:
        raise ValueError(f"unknown loss.cls.name {cfg.name!r}; known: {sorted(CLS_LOSSES)}")
    cls = CLS_LOSSES[cfg.name]
    if not isinstance(cfg, cls.config_class):
        raise TypeError(f"loss {cfg.name!r} needs a {cls.config_class.__name__}, got {type(cfg).__name__}")
    return cls(cfg)


__all__ = [
    "CLS_LOSSES",
    "ClsLoss",
    "ClsLossConfig",
    "ClsLossContext",
    "FocalConfig",
    "FocalLoss",
    "QFLConfig",
    "QualityFocalLoss",
    "RASConfig",
    "RASLoss",
    "VFLConfig",
    "VarifocalLoss",
    "build_cls_loss",
    "sigmoid_focal_loss_elementwise",
]
