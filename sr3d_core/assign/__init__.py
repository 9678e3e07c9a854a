"""Label assigners: one per file, one interface (``base.Assigner``), picked by name from ``ASSIGNERS``."""

from __future__ import annotations

from sr3d_core.assign.base import Assigner, AssignResult
from sr3d_core.assign.tr3d import TR3DAssigner

# name → factory taking the AssignerConfig; SPOTA / simOTA / AlignOTA are added here.
ASSIGNERS = {
    "tr3d": lambda cfg: TR3DAssigner(cfg.top_k, cfg.label2level, cfg.global_nearest_check),
}


def build_assigner(cfg) -> Assigner:  # cfg: sr3d_core.config.AssignerConfig
    """Build the assigner named by ``cfg.name``."""
    if cfg.name not in ASSIGNERS:
        raise ValueError(f"unknown assigner.name {cfg.name!r}; known: {sorted(ASSIGNERS)}")
    return ASSIGNERS[cfg.name](cfg)


__all__ = ["ASSIGNERS", "Assigner", "AssignResult", "TR3DAssigner", "build_assigner"]
