"""Score / localisation alignment metrics of SR3D: AIC and PCE.

AIC is the paper's formula. For PCE the paper describes the quantity and shows its distribution; which GT a
detection is compared with, and how the top detections are pooled, are our reading (see the docstring).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sr3d_core.evaluation.indoor_map import IndoorMapEvaluator

#: Slack on the [0, 1] range check, for IoUs and sigmoids that float rounding pushes just outside.
_RANGE_TOL = 1e-6


def _unit_interval_1d(x: Any, name: str, n: int | None = None) -> np.ndarray:
    """Return ``x`` as a float64 1-D array of values in [0, 1] (torch tensors, CUDA included, work)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1 or (n is not None and a.shape != (n,)):
        want = "(N,)" if n is None else f"({n},)"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must be real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    if a.size and (a.min() < -_RANGE_TOL or a.max() > 1 + _RANGE_TOL):
        raise ValueError(f"{name} must lie in [0, 1] (probabilities / IoUs), got [{a.min()}, {a.max()}]")
    return a


def average_inconsistency_coefficient(scores: Any, ious: Any) -> float:
    """AIC, Average Inconsistency Coefficient.

    ``AIC = (1/|P|) Σ_{i∈P} |p_i − IoU_i|`` over the given positives ``P``. During training, pass the
    assigned positive anchors of an iteration, with ``p`` the sigmoid score on the GT class and
    ``IoU`` the IoU of the decoded box with its assigned GT; average the values per logging
    interval. Lower is better.

    Args:
        scores: ``(N,)`` classification scores in [0, 1] (numpy, list or torch tensor).
        ious: ``(N,)`` localisation IoUs in [0, 1].

    Returns:
        The AIC, or nan when ``N == 0`` (an iteration without positives; skip it when averaging).

    Raises:
        ValueError: on shapes that are not 1-D and equal, NaN/inf, or values outside [0, 1].
    """
    p = _unit_interval_1d(scores, "scores")
    q = _unit_interval_1d(ious, "ious", len(p))
    return float(np.mean(np.abs(p - q))) if len(p) else float("nan")


def prediction_consistency_error(scores: Any, ious: Any, labels: Any, top_k: int = 30) -> float:
    """PCE, Prediction Consistency Error (the paper's description; the matching below is our reading).

    On the evaluation set, after NMS: for each class, keep the ``top_k`` detections by score over all
    scenes pooled; each has ``IoU`` = IoU with the best same-class GT in its scene (0 if none).
    ``PCE = mean |score − IoU|`` over all kept detections of all classes pooled (not a mean of
    per-class means: the prose does not say, and pooling weights every detection equally).
    Ties at the ``top_k`` cut keep the earlier detection (stable sort, as in the mAP evaluator).

    Args:
        scores: ``(D,)`` detection scores in [0, 1], in pooled order (scene, then detection).
        ious: ``(D,)`` best same-class GT IoU per detection, 0 where the scene has none.
        labels: ``(D,)`` non-negative integer class indices.
        top_k: detections kept per class.

    Returns:
        The PCE, or nan when there are no detections.

    Raises:
        ValueError: on mismatched shapes, NaN/inf, values outside [0, 1], negative labels or
            ``top_k < 1``.
    """
    if int(top_k) != top_k or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k}")
    s = _unit_interval_1d(scores, "scores")
    q = _unit_interval_1d(ious, "ious", len(s))
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    lab = np.asarray(labels)
    if lab.shape != s.shape:
        raise ValueError(f"labels must have shape {s.shape}, got {lab.shape}")
    if lab.size and (not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0):
        raise ValueError("labels must be non-negative integers")
    errors = prediction_consistency_errors(s, q, lab, top_k)
    return float(np.mean(errors)) if len(errors) else float("nan")


def prediction_consistency_errors(scores: np.ndarray, ious: np.ndarray, labels: np.ndarray, top_k: int) -> np.ndarray:
    """The per-detection ``|score − IoU|`` that PCE averages (its distribution is the paper's histogram).

    Args:
        scores / ious / labels: validated ``(D,)`` arrays (see :func:`prediction_consistency_error`).
        top_k: detections kept per class.

    Returns:
        ``(K,)`` errors of the kept detections, class by class in ascending label order.
    """
    top = top_k_per_class(scores, labels, top_k)
    return np.abs(scores[top] - ious[top])


def top_k_per_class(scores: np.ndarray, labels: np.ndarray, top_k: int) -> np.ndarray:
    """Indices of the ``top_k`` highest-scoring detections of each class, class by class in ascending label order
    (ties keep the earlier detection)."""
    picked = [np.zeros(0, dtype=np.int64)]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picked.append(idx[np.argsort(-scores[idx], kind="stable")[: int(top_k)]])
    return np.concatenate(picked)


def prediction_consistency_error_from(evaluator: IndoorMapEvaluator, top_k: int = 30) -> float:
    """PCE of every detection fed to an :class:`IndoorMapEvaluator` (one pass serves mAP and PCE).

    Args:
        evaluator: an evaluator that has seen the evaluation set (detections after NMS).
        top_k: detections kept per class.

    Returns:
        See :func:`prediction_consistency_error`.
    """
    rec = evaluator.detection_ious()
    return prediction_consistency_error(rec.scores, rec.ious, rec.labels, top_k)


def plot_alignment(evaluator: IndoorMapEvaluator, path: Any, top_k: int = 30, title: str = "") -> float:
    """Write the alignment figure of an evaluation: PCE's histogram and the confidence-vs-IoU scatter.

    Left: the distribution of ``|score − IoU|`` over the ``top_k`` detections per class (what PCE averages),
    with its mean. Right: each detection's score against its IoU with the best same-class GT (all detections in
    grey, the top-``top_k`` per class in colour); a perfectly aligned detector lies on the diagonal.

    Args:
        evaluator: an evaluator that has seen the evaluation set (detections after NMS).
        path: the PNG to write.
        top_k: detections kept per class for PCE.
        title: a line above both panels (e.g. the checkpoint).

    Returns:
        The PCE (nan without detections).
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: only files are written
    import matplotlib.pyplot as plt

    rec = evaluator.detection_ious()
    pce = prediction_consistency_error(rec.scores, rec.ious, rec.labels, top_k)
    top = np.zeros(len(rec.scores), dtype=bool)
    top[top_k_per_class(rec.scores, rec.labels, top_k)] = True
    errors = np.abs(rec.scores[top] - rec.ious[top])
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    ax[0].hist(errors, bins=np.linspace(0, 1, 21), color="tab:blue")
    ax[0].axvline(pce, color="k", ls="--", lw=1)
    ax[0].set_xlabel(f"|score − IoU| of the top {top_k} detections per class")
    ax[0].set_ylabel("detections")
    ax[0].set_title(f"PCE = {pce:.3f} ({int(top.sum())} detections)")
    ax[1].scatter(rec.ious[~top], rec.scores[~top], s=3, c="0.75", label="all detections")
    ax[1].scatter(rec.ious[top], rec.scores[top], s=6, c=rec.labels[top], cmap="tab20", label=f"top {top_k} per class")
    ax[1].plot([0, 1], [0, 1], color="k", lw=1)
    ax[1].set_xlim(0, 1)
    ax[1].set_ylim(0, 1)
    ax[1].set_xlabel("IoU with the best same-class GT")
    ax[1].set_ylabel("confidence (score)")
    ax[1].legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return pce
