"""Class-balanced scene sampling: scenes holding rare classes are drawn more often (repeat-factor sampling).

A synthetic or real indoor set is dominated by a few classes (chairs, tables) while others appear in a small share
of the scenes (beds, dressers, bathtubs). Repeat-factor sampling (Gupta et al., LVIS, CVPR 2019) gives every scene
the factor ``r = max over its classes c of max(1, sqrt(t / f_c))``, where ``f_c`` is the share of the training
scenes holding class ``c`` and ``t`` the threshold below which a class counts as rare; each epoch then takes a
scene ``floor(r)`` times, plus once more with probability ``r - floor(r)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def repeat_factors(scene_labels: Sequence[np.ndarray], num_classes: int, threshold: float) -> np.ndarray:
    """Each scene's repeat factor.

    Args:
        scene_labels: Per scene, the class labels of its objects (in ``[0, num_classes)``; repeats allowed).
        num_classes: Number of classes.
        threshold: ``t`` in ``(0, 1]``: a class held by a share ``f_c < t`` of the scenes is repeated
            ``sqrt(t / f_c)`` times.

    Returns:
        ``(S,)`` float64 factors, each at least 1 (1 for a scene without objects).

    Raises:
        ValueError: ``threshold`` outside ``(0, 1]``, or a label outside ``[0, num_classes)``.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"the class-balance threshold must lie in (0, 1], got {threshold}")
    present = np.zeros((len(scene_labels), num_classes), dtype=bool)
    for s, labels in enumerate(scene_labels):
        labels = np.asarray(labels, np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"scene {s} has labels outside [0, {num_classes}): {sorted(set(labels.tolist()))}")
        present[s, labels] = True
    share = present.mean(axis=0) if len(scene_labels) else np.zeros(num_classes)
    per_class = np.where(share > 0, np.sqrt(threshold / np.maximum(share, 1e-12)), 1.0)
    per_class = np.maximum(per_class, 1.0)
    return np.where(present, per_class[None, :], 1.0).max(axis=1, initial=1.0)


def epoch_indices(factors: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's scene order: each scene ``floor(r)`` times plus once with probability ``r - floor(r)``, shuffled,
    cut or cycled to ``length`` (the epoch keeps its number of steps, so schedules stay as configured).

    Args:
        factors: ``(S,)`` repeat factors (at least 1).
        length: Scenes in the epoch.
        rng: The epoch's generator.

    Returns:
        ``(length,)`` int64 scene indices.
    """
    whole = np.floor(factors)
    counts = whole.astype(np.int64) + (rng.random(len(factors)) < factors - whole)
    order = rng.permutation(np.repeat(np.arange(len(factors)), counts))
    return np.resize(order, length) if len(order) else order
