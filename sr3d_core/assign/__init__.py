"""Label assigners: one per file, one interface (``base.Assigner``), picked by name from ``ASSIGNERS``."""

from __future__ import annotations

from sr3d_core.assign.alignota import AlignOTAAssigner, AlignOTAConfig
from sr3d_core.assign.base import AnchorSet, Assigner, AssignerConfig, AssignResult, GroundTruth, Predictions
from sr3d_core.assign.simota import SimOTAAssigner, SimOTAConfig
from sr3d_core.assign.spota import SpotaAssigner, SpotaConfig
from sr3d_core.assign.tr3d import TR3DAssigner, TR3DAssignerConfig

# name → assigner class; each class names its config dataclass (``config_class``), which is its YAML schema.
ASSIGNERS: dict[str, type[Assigner]] = {
    "tr3d": TR3DAssigner,
    "spota": SpotaAssigner,
    "simota": SimOTAAssigner,
    "alignota": AlignOTAAssigner,
}


def build_assigner(cfg: AssignerConfig, rotated: bool) -> Assigner:
    """Build the assigner named by ``cfg.name`` (``rotated``: boxes carry a yaw)."""
    if cfg.name not in ASSIGNERS:
        raise ValueError(f"unknown assigner.name {cfg.name!r}; known: {sorted(ASSIGNERS)}")
    cls = ASSIGNERS[cfg.name]
    if not isinstance(cfg, cls.config_class):
        raise TypeError(f"assigner {cfg.name!r} needs a {cls.config_class.__name__}, got {type(cfg).__name__}")
    return cls(cfg) if cls is TR3DAssigner else cls(cfg, rotated=rotated)


__all__ = [
    "ASSIGNERS",
    "AlignOTAAssigner",
    "AlignOTAConfig",
    "AnchorSet",
    "Assigner",
    "AssignerConfig",
    "AssignResult",
    "GroundTruth",
    "Predictions",
    "SimOTAAssigner",
    "SimOTAConfig",
    "SpotaAssigner",
    "SpotaConfig",
    "TR3DAssigner",
    "TR3DAssignerConfig",
    "build_assigner",
]
