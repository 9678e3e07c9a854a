"""Scene sources: what training, evaluation and the tools read scenes from.

A source is indexable by scene and draws every random choice from the generator it is given, so whoever holds
the generator (the step loader, the evaluator) decides what is reproduced.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sr3d_core.config import Config
from sr3d_core.data.info_scenes import InfoScenes
from sr3d_core.data.infos import Sample
from sr3d_core.data.toy import ToyScenes


class SceneSource(Protocol):
    """Scenes drawn with an explicit generator."""

    def __len__(self) -> int:
        """Number of scenes."""

    def get(self, index: int, rng: np.random.Generator, train: bool) -> Sample:
        """Scene ``index`` (points ``(N, 3 + C)``, boxes ``(M, 7)``, labels ``(M,)``), augmented when ``train``."""


def build_source(cfg: Config, split: str) -> SceneSource:
    """The scene source of an experiment's split (``"train"`` or ``"val"``; toy scenes have one set for both).

    Raises:
        FileNotFoundError: The split's info file is missing.
        ValueError: An unknown split, or an info file that does not fit the config.
    """
    if cfg.data.format == "toy":
        return ToyScenes(cfg.data, rotated=cfg.model.box_type == "rotated")
    return InfoScenes.from_config(cfg, split)
