"""Precision and recall at one score threshold: what a user of the detector sees.

mAP ranks the detections and integrates over every score; a deployed detector instead reports the boxes above one
threshold (the node's ``score_threshold``). These counts take every reported box of every class, classes without
ground truth (GT) included: a chair reported in a bedroom without chairs is a false positive here, while the mAP
(``skip_classes_without_gt``) never sees it.

Counting, scene by scene:

1. Detections with a score at or above the score threshold are kept, the others dropped. (The node keeps scores
   strictly above its threshold; the two differ only for a score exactly equal to it.)
2. The kept detections are visited in descending score (ties: earlier detection first). Each takes the unmatched
   GT of its class with the highest 3-D IoU (ties: the lower GT index), if that IoU is at least the IoU threshold.
   Every GT is matched at most once; each IoU threshold matches on its own.
3. Matched detections are true positives (TP), the other kept detections false positives (FP), unmatched GT false
   negatives (FN). precision = TP / (TP + FP), recall = TP / (TP + FN); undefined (nan, ``None`` in JSON) when
   the denominator is 0.

Unlike mmdet3d's AP matching (``indoor_map``), a detection whose best GT is already taken may still take the next
free one, and the IoU threshold is inclusive: these are the usual counting rules of a detector's user, not the
ranking rules of the benchmark. The IoU is the mAP's (:func:`~sr3d_core.evaluation.indoor_map.default_iou_fn`),
and ignored GT (label -1) are dropped as there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from sr3d_core.evaluation.indoor_map import (
    DEFAULT_IOU_THRESHOLDS,
    DetectionsLike,
    GroundTruthLike,
    IouFn,
    _parse_det,
    _parse_gt,
    _thr_key,
    default_iou_fn,
)

#: Name of the row that sums every class.
ALL_CLASSES = "all classes"


def greedy_match(iou: np.ndarray, threshold: float) -> np.ndarray:
    """Match detections, already in rank order, to GT greedily; each GT is matched at most once.

    Args:
        iou: ``(D, G)`` IoU of each detection with each GT; ``-inf`` where a pair must never match (other class).
        threshold: inclusive IoU threshold.

    Returns:
        ``(D,)`` index of the matched GT, -1 where the detection matched none.
    """
    free = np.ones(iou.shape[1], dtype=bool)
    match = np.full(iou.shape[0], -1, dtype=np.int64)
    for d in range(iou.shape[0]):
        candidates = np.where(free, iou[d], -np.inf)
        if len(candidates) == 0:
            break
        g = int(np.argmax(candidates))  # first maximum: the lower GT index wins ties
        if candidates[g] >= threshold:
            match[d] = g
            free[g] = False
    return match


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as float64, nan where ``den`` is 0."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def json_number(x: float) -> Optional[float]:
    """A float for JSON: ``None`` for nan (strict JSON has no NaN)."""
    return None if np.isnan(x) else float(x)


@dataclass(frozen=True)
class PrecisionRecallResult:
    """TP / FP / FN per class and IoU threshold at one score threshold.

    Attributes:
        class_names: ``C`` class names.
        score_threshold: detections with a score at or above it were counted.
        iou_thresholds: ``T`` inclusive IoU thresholds.
        tp: ``(T, C)`` true positives.
        fp: ``(T, C)`` false positives.
        fn: ``(T, C)`` false negatives.
        num_scenes: number of scenes counted.
    """

    class_names: tuple[str, ...]
    score_threshold: float
    iou_thresholds: tuple[float, ...]
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    num_scenes: int

    def _index(self, iou_threshold: float) -> int:
        for i, t in enumerate(self.iou_thresholds):
            if abs(t - iou_threshold) < 1e-12:
                return i
        raise ValueError(f"IoU threshold {iou_threshold} was not counted; have {self.iou_thresholds}")

    @property
    def reported(self) -> np.ndarray:
        """``(C,)`` True where a class has GT or kept detections (the classes the rows list)."""
        return (self.tp[0] + self.fp[0] + self.fn[0]) > 0

    def precision(self, iou_threshold: float) -> np.ndarray:
        """``(C,)`` precision per class (nan without kept detections)."""
        i = self._index(iou_threshold)
        return _ratio(self.tp[i], self.tp[i] + self.fp[i])

    def recall(self, iou_threshold: float) -> np.ndarray:
        """``(C,)`` recall per class (nan without GT)."""
        i = self._index(iou_threshold)
        return _ratio(self.tp[i], self.tp[i] + self.fn[i])

    def rows(self, iou_threshold: float) -> dict[str, dict[str, Any]]:
        """Per-class rows of the reported classes, then the :data:`ALL_CLASSES` row that sums every class.

        Returns:
            ``{name: {"tp", "fp", "fn", "precision", "recall"}}``; precision / recall are nan when undefined.
        """
        i = self._index(iou_threshold)
        out: dict[str, dict[str, Any]] = {}
        for c in np.flatnonzero(self.reported):
            out[self.class_names[c]] = _row(self.tp[i, c], self.fp[i, c], self.fn[i, c])
        out[ALL_CLASSES] = _row(self.tp[i].sum(), self.fp[i].sum(), self.fn[i].sum())
        return out

    def to_dict(self) -> dict[str, Any]:
        """The numbers for JSON: ``{"score_threshold", "num_scenes", "iou_<t>": rows}``, ``None`` for undefined."""
        out: dict[str, Any] = {"score_threshold": self.score_threshold, "num_scenes": self.num_scenes}
        for t in self.iou_thresholds:
            out[f"iou_{_thr_key(t)}"] = {
                name: {k: (json_number(v) if isinstance(v, float) else v) for k, v in row.items()}
                for name, row in self.rows(t).items()
            }
        return out

    def as_table(self) -> str:
        """A fixed-width table: one row per reported class, then "all classes"; "-" where undefined."""
        keys = [_thr_key(t) for t in self.iou_thresholds]
        header = ["classes"] + [f"{m}@{k}" for k in keys for m in ("TP", "FP", "FN", "P", "R")]
        per_t = [self.rows(t) for t in self.iou_thresholds]
        names = list(per_t[0])

        def cells(row: dict[str, Any]) -> list[str]:
            return [str(row["tp"]), str(row["fp"]), str(row["fn"])] + [
                "-" if np.isnan(row[k]) else f"{row[k]:.4f}" for k in ("precision", "recall")
            ]

        body = [[name] + [c for rows in per_t for c in cells(rows[name])] for name in names]
        widths = [max(len(r[j]) for r in [header] + body) for j in range(len(header))]

        def fmt(r: list[str]) -> str:
            return "| " + " | ".join(s.ljust(w) for s, w in zip(r, widths)) + " |"

        rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        title = (
            f"precision / recall of every box scored >= {self.score_threshold:g} "
            f"({self.num_scenes} scenes; IoU >= {', '.join(keys)})"
        )
        return "\n".join([title, rule, fmt(header), rule] + [fmt(r) for r in body[:-1]] + [rule, fmt(body[-1]), rule])


def _row(tp: Any, fp: Any, fn: Any) -> dict[str, Any]:
    tp, fp, fn = int(tp), int(fp), int(fn)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": float(_ratio(tp, tp + fp)), "recall": float(_ratio(tp, tp + fn))}


class PrecisionRecallCounter:
    """Streaming TP / FP / FN at one score threshold (see the module docstring for the rules).

    Example:
        >>> pr = PrecisionRecallCounter(("chair", "table"), score_threshold=0.3)
        >>> for gt, det in scenes:       # doctest: +SKIP
        ...     pr.add(gt, det)
        >>> print(pr.compute().as_table())  # doctest: +SKIP

    Args:
        class_names: names of the ``C`` classes; labels index into them.
        score_threshold: detections scored at or above it are counted, in [0, 1).
        iou_thresholds: inclusive IoU thresholds, each in (0, 1].
        iou_fn: pairwise 3-D IoU; ``None`` binds the mAP's :func:`default_iou_fn` at the first scene.

    Raises:
        ValueError: on empty or duplicate class names, or thresholds out of range.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        score_threshold: float,
        iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
        iou_fn: Optional[IouFn] = None,
    ) -> None:
        names = tuple(str(n) for n in class_names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"class_names must be non-empty and unique, got {names}")
        if not (np.isfinite(score_threshold) and 0.0 <= score_threshold < 1.0):
            raise ValueError(f"score_threshold must lie in [0, 1), got {score_threshold}")
        thrs = tuple(float(t) for t in iou_thresholds)
        if not thrs or not all(np.isfinite(t) and 0.0 < t <= 1.0 for t in thrs):
            raise ValueError(f"iou_thresholds must be a non-empty sequence of values in (0, 1], got {thrs}")
        if len({_thr_key(t) for t in thrs}) != len(thrs):
            raise ValueError(f"iou_thresholds must differ at 2 decimals (they name the rows), got {thrs}")
        self.class_names = names
        self.score_threshold = float(score_threshold)
        self.iou_thresholds = thrs
        self._iou_fn = iou_fn
        self.reset()

    def reset(self) -> None:
        """Forget all scenes."""
        shape = (len(self.iou_thresholds), len(self.class_names))
        self._tp = np.zeros(shape, np.int64)
        self._fp = np.zeros(shape, np.int64)
        self._num_gt = np.zeros(len(self.class_names), np.int64)
        self._num_scenes = 0

    def add(self, ground_truth: GroundTruthLike, detections: DetectionsLike) -> None:
        """Count one scene.

        Args:
            ground_truth: as :meth:`IndoorMapEvaluator.add` takes it; label -1 is ignored.
            detections: as :meth:`IndoorMapEvaluator.add` takes them, after NMS, at any score.

        Raises:
            ValueError: on bad input (the message names the argument), or an ``iou_fn`` of the wrong shape.
        """
        gt_boxes, gt_labels = _parse_gt(ground_truth, len(self.class_names))
        det_boxes, det_scores, det_labels = _parse_det(detections, self.class_names)
        keep = gt_labels >= 0
        gt_boxes, gt_labels = gt_boxes[keep], gt_labels[keep]
        kept = np.flatnonzero(det_scores >= self.score_threshold)
        order = kept[np.argsort(-det_scores[kept], kind="stable")]
        boxes, labels = det_boxes[order], det_labels[order]

        iou = np.full((len(order), len(gt_labels)), -np.inf)
        has_gt = np.isin(labels, gt_labels)
        if has_gt.any():  # one IoU call per scene, as in the mAP
            d = np.flatnonzero(has_gt)
            if self._iou_fn is None:
                self._iou_fn = default_iou_fn()
            pair = np.asarray(self._iou_fn(boxes[d], gt_boxes), dtype=np.float64)
            if pair.shape != (len(d), len(gt_labels)):
                raise ValueError(f"iou_fn returned shape {pair.shape}, expected {(len(d), len(gt_labels))}")
            if not np.isfinite(pair).all():
                raise ValueError("iou_fn returned NaN or inf (degenerate boxes?)")
            iou[d] = np.where(labels[d][:, None] == gt_labels[None, :], pair, -np.inf)
        for i, t in enumerate(self.iou_thresholds):
            tp = greedy_match(iou, t) >= 0
            np.add.at(self._tp[i], labels[tp], 1)
            np.add.at(self._fp[i], labels[~tp], 1)
        self._num_gt += np.bincount(gt_labels, minlength=len(self.class_names))
        self._num_scenes += 1

    def compute(self) -> PrecisionRecallResult:
        """The counts over every scene added since the last reset."""
        return PrecisionRecallResult(
            class_names=self.class_names,
            score_threshold=self.score_threshold,
            iou_thresholds=self.iou_thresholds,
            tp=self._tp.copy(),
            fp=self._fp.copy(),
            fn=self._num_gt[None, :] - self._tp,
            num_scenes=self._num_scenes,
        )


__all__ = ["ALL_CLASSES", "PrecisionRecallCounter", "PrecisionRecallResult", "greedy_match"]
