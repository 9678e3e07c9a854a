"""Tiny in-process scenes (``data.format: toy``): a floor and a few boxes whose faces carry points.

They need no files, so tests and smoke runs train and evaluate on them in seconds.
"""

from __future__ import annotations

import numpy as np

from sr3d_core.config import DataConfig
from sr3d_core.data.augment import sample_points, training_augment
from sr3d_core.data.infos import Sample

POINTS_PER_BOX = 1200
FLOOR_POINTS = 1500


class ToyScenes:
    """Deterministic toy scenes, a ``SceneSource``.

    Class 0 of the config gets small boxes (0.3–0.5 m), the last class large ones (1.0–1.4 m), others in between.
    Boxes sit on a 3×3 grid of 1.6-m slots, so they never overlap. Training draws only the configured point
    sample (no geometric augmentation: the scenes are learnt by heart).

    Args:
        cfg: Data config (``toy_scenes``, ``toy_seed``, class names, point sampling).
        rotated: Draw random yaws (rotated configs) or yaw 0.
    """

    def __init__(self, cfg: DataConfig, rotated: bool) -> None:
        # Only the point sampling applies: the toy format has no geometric augmentation in AUGMENTS.
        self.augment = training_augment(cfg)
        self.scenes = [
            make_toy_scene(np.random.default_rng([cfg.toy_seed, s]), len(cfg.class_names), rotated, s)
            for s in range(cfg.toy_scenes)
        ]

    def __len__(self) -> int:
        return len(self.scenes)

    def get(self, index: int, rng: np.random.Generator, train: bool) -> Sample:
        """Scene ``index``; training draws the configured point sample from ``rng``."""
        scene = self.scenes[index]
        if not train:
            return scene
        return Sample(sample_points(scene.points, self.augment, rng), scene.gt_boxes, scene.gt_labels, scene.sample_idx)


def make_toy_scene(rng: np.random.Generator, num_classes: int, rotated: bool, index: int = 0) -> Sample:
    """One toy scene: 2–4 boxes on the 3×3 slot grid, their 5 visible faces sampled, and a floor.

    Args:
        rng: The scene's generator.
        num_classes: Number of classes (a box's size and colour follow its class).
        rotated: Random yaw in [-π/2, π/2) instead of 0.
        index: The scene's ``sample_idx``.

    Returns:
        The scene, points ``(N, 6)`` xyz + RGB.
    """
    n_boxes = int(rng.integers(2, 5))
    slots = rng.choice(9, n_boxes, replace=False)
    boxes, labels, pts = [], [], []
    for slot in slots:
        c = int(rng.integers(num_classes))
        frac = c / max(num_classes - 1, 1)
        size = (0.3 + 0.9 * frac + rng.uniform(0, 0.2, 3)).astype(np.float32)
        size[2] = 0.4 + 0.6 * frac
        cx, cy = 0.8 + 1.6 * (slot % 3), 0.8 + 1.6 * (slot // 3)
        yaw = float(rng.uniform(-np.pi / 2, np.pi / 2)) if rotated else 0.0
        box = np.array([cx, cy, size[2] / 2, *size, yaw], np.float32)
        # Points on the 5 visible faces (no bottom), then rotated into place.
        u = rng.uniform(-0.5, 0.5, (POINTS_PER_BOX, 3)) * size
        face = rng.integers(0, 5, POINTS_PER_BOX)
        axis, sign = np.array([0, 0, 1, 1, 2])[face], np.array([-1, 1, -1, 1, 1])[face]
        u[np.arange(POINTS_PER_BOX), axis] = sign * size[axis] / 2
        cs, sn = np.cos(yaw), np.sin(yaw)
        xy = np.stack([u[:, 0] * cs - u[:, 1] * sn, u[:, 0] * sn + u[:, 1] * cs], 1)
        p = np.concatenate([xy + [cx, cy], u[:, 2:3] + size[2] / 2], 1)
        colour = np.clip(np.array([frac, 1 - frac, 0.5]) + rng.normal(0, 0.05, (POINTS_PER_BOX, 3)), 0, 1)
        pts.append(np.concatenate([p, colour], 1))
        boxes.append(box)
        labels.append(c)
    floor = np.concatenate(
        [rng.uniform(0, 4.8, (FLOOR_POINTS, 2)), np.zeros((FLOOR_POINTS, 1)), np.full((FLOOR_POINTS, 3), 0.3)], 1
    )
    pts.append(floor)
    return Sample(
        np.concatenate(pts).astype(np.float32), np.stack(boxes).astype(np.float32), np.asarray(labels, np.int64), index
    )
