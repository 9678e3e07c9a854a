"""Indoor 3-D detection mAP, following the VoteNet / mmdet3d ``indoor_eval`` protocol.

One evaluator serves training validation and rosbag replay: feed it scene by scene with
:meth:`IndoorMapEvaluator.add`, then call :meth:`IndoorMapEvaluator.compute`. It keeps only a few
scalars per detection, never the boxes, so memory grows with the number of detections only.

Protocol (checked against mmdetection3d ``mmdet3d/evaluation/functional/indoor_eval.py`` at HEAD
``fe25f7a5``, functions ``eval_det_cls``, ``eval_map_recall``, ``indoor_eval``, ``average_precision``):

1. Class by class, the detections of all scenes are pooled in scene order, then detection order,
   and sorted by score, descending.
2. A detection is compared only with the ground truth (GT) of its class in its own scene. It takes
   the GT with the highest 3-D IoU; on equal IoU the lower GT index wins (mmdet3d's ``iou > iou_max``
   loop keeps the first maximum).
3. It is a true positive (TP) when that IoU is strictly greater than the threshold and that GT is
   not yet matched at this threshold; otherwise a false positive (FP). There is no fallback to the
   second-best GT. Each threshold keeps its own "matched" flags.
4. recall = cumulative TP / number of GT of the class; precision = cumulative TP / (TP + FP).
   AP is the VOC "area" AP: area under the monotone precision envelope, see
   :func:`average_precision_area`. The reported recall is the last (largest) recall.
5. mAP and mAR are plain means over the *evaluated* classes, see "Classes without GT" below.

Decisions where mmdet3d is silent or accidental :

- **Classes without GT.** mmdet3d builds its class list from the GT dict, and a detection inserts
  an empty GT entry for its class. Hence: a class with neither GT nor detections anywhere is
  absent from the output and from the means; a class with GT but no detection has AP 0 and recall
  0 (``eval_map_recall`` fills ``np.zeros(1)``); a class with detections but no GT has
  ``recall = tp / 0 = nan``, so its AP is nan (``nan * 0`` in the area sum) and so are mAP and mAR
  (``np.mean`` propagates nan). This is reproduced by default. ``skip_classes_without_gt=True``
  is our documented deviation: such classes keep their nan entries but leave the means.
- **Ties in score.** mmdet3d sorts with ``np.argsort(-confidence)``, numpy's default *unstable*
  quicksort, so its order among equal scores is platform dependent (insertion sort, hence stable,
  only for up to 16 detections; SIMD sorts on newer CPUs differ). We use a *stable* sort of
  ``-score``: ties keep the pooled order, i.e. earlier scene first, then earlier detection first.
- **Ignored GT (label -1).** mmdet3d removes them before evaluation
  (``Det3DDataset._remove_dontcare``: ``filter_mask = gt_labels_3d > -1``). We drop them too:
  they are not counted as GT, cannot be matched, and a detection on one is an ordinary FP.
- **Precision.** mmdet3d stores AP in float32 and computes IoU in float32; we use float64
  throughout (differences below 1e-7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from sr3d_core.detections import Detections

#: Pairwise 3-D IoU: ``(N, 7)`` and ``(M, 7)`` boxes → ``(N, M)`` IoU matrix.
IouFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

DEFAULT_IOU_THRESHOLDS: tuple[float, ...] = (0.25, 0.5)


def default_iou_fn() -> IouFn:
    """Return the production exact 3-D IoU (rotated BEV overlap × height overlap / union).

    This is the one place where the evaluator binds to ``sr3d_core.geometry``; the import is lazy
    so that the module loads, and tests can inject another IoU, without it. Like mmdet3d's
    ``DepthInstance3DBoxes.overlaps``, every pair uses the rotated IoU, except that when all yaws
    of both sets are exactly 0 (ScanNet) the cheaper axis-aligned formula gives the same value.

    Returns:
        A function mapping ``(N, 7)`` and ``(M, 7)`` float64 boxes to an ``(N, M)`` IoU array.
    """
    from sr3d_core.geometry.iou import axis_aligned_iou_3d, rotated_iou_3d  # noqa: PLC0415 (lazy, see above)

    def iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
        axis_aligned = not boxes1[:, 6].any() and not boxes2[:, 6].any()
        fn = axis_aligned_iou_3d if axis_aligned else rotated_iou_3d
        return np.asarray(fn(boxes1, boxes2), dtype=np.float64)

    return iou


# ---------------------------------------------------------------------------------------------
# Input checking
# ---------------------------------------------------------------------------------------------


def _to_numpy(x: Any) -> np.ndarray:
    """Convert arrays, lists and (possibly CUDA) torch tensors to numpy without importing torch."""
    if hasattr(x, "tensor") and not isinstance(x, np.ndarray):  # mmdet3d-style box structures
        x = x.tensor
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_boxes(x: Any, name: str) -> np.ndarray:
    """Validate ``(N, 7)`` boxes (or ``(N, 6)`` axis-aligned, given yaw 0) and return float64."""
    a = _to_numpy(x)
    if a.size == 0:  # an empty list or array means "no boxes"
        a = np.zeros((0, 7), dtype=np.float64)
    if a.ndim != 2 or a.shape[1] not in (6, 7):
        raise ValueError(f"{name} must have shape (N, 7) or (N, 6), got {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    if (a[:, 3:6] < 0).any():
        raise ValueError(f"{name} has negative sizes (columns dx, dy, dz)")
    if a.shape[1] == 6:  # ScanNet stores axis-aligned boxes without yaw
        a = np.concatenate([a, np.zeros((len(a), 1))], axis=1)
    return a


def _check_labels(x: Any, n: int, name: str, low: int, high: int) -> np.ndarray:
    """Validate ``(n,)`` integer labels in ``[low, high)`` and return int64."""
    a = _to_numpy(x)
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the boxes, got {a.shape}")
    if n and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if n and (a.min() < low or a.max() >= high):
        raise ValueError(f"{name} must lie in [{low}, {high - 1}], got [{a.min()}, {a.max()}]")
    return a


def _check_scores(x: Any, n: int, name: str) -> np.ndarray:
    """Validate ``(n,)`` finite scores and return float64."""
    a = _to_numpy(x)
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the boxes, got {a.shape}")
    if n and not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


@dataclass(frozen=True)
class SceneGroundTruth:
    """Ground truth of one scene.

    Attributes:
        boxes: ``(G, 7)`` boxes ``(x, y, z, dx, dy, dz, yaw)``, gravity centre, full extents.
            ``(G, 6)`` axis-aligned boxes are accepted and given yaw 0.
        labels: ``(G,)`` class indices; ``-1`` marks an ignored object (dropped, as in mmdet3d).
    """

    boxes: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        boxes = _check_boxes(self.boxes, "SceneGroundTruth.boxes")
        labels = _check_labels(self.labels, len(boxes), "SceneGroundTruth.labels", -1, np.iinfo(np.int64).max)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.labels)


GroundTruthLike = Union[SceneGroundTruth, Mapping[str, Any]]
DetectionsLike = Union[Detections, Mapping[str, Any]]


def _pick(m: Mapping[str, Any], keys: Sequence[str], name: str) -> Any:
    """Return the first of ``keys`` present in ``m``."""
    for k in keys:
        if k in m:
            return m[k]
    raise ValueError(f"{name} needs one of the keys {list(keys)}, got {sorted(m)}")


def _parse_gt(gt: GroundTruthLike, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Return checked GT boxes and labels; accepts our dataclass or an ours/mmdet3d-style dict."""
    if isinstance(gt, Mapping):
        gt = SceneGroundTruth(
            _pick(gt, ("boxes", "gt_bboxes_3d"), "ground_truth"), _pick(gt, ("labels", "gt_labels_3d"), "ground_truth")
        )
    elif not isinstance(gt, SceneGroundTruth):
        raise ValueError(f"ground_truth must be a SceneGroundTruth or a mapping, got {type(gt).__name__}")
    if len(gt) and gt.labels.max() >= num_classes:
        raise ValueError(f"ground_truth.labels must be < {num_classes} (number of classes), got {gt.labels.max()}")
    return gt.boxes, gt.labels


def _parse_det(det: DetectionsLike, class_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return checked detection boxes, scores and labels; accepts Detections or a dict."""
    if isinstance(det, Detections):
        if tuple(det.class_names) != class_names:
            raise ValueError(
                f"detections.class_names {tuple(det.class_names)} differ from the evaluator's {class_names}"
            )
        boxes, scores, labels = det.boxes, det.scores, det.labels
    elif isinstance(det, Mapping):
        boxes = _pick(det, ("boxes", "bboxes_3d"), "detections")
        scores = _pick(det, ("scores", "scores_3d"), "detections")
        labels = _pick(det, ("labels", "labels_3d"), "detections")
    else:
        raise ValueError(f"detections must be a Detections or a mapping, got {type(det).__name__}")
    b = _check_boxes(boxes, "detections.boxes")
    s = _check_scores(scores, len(b), "detections.scores")
    lab = _check_labels(labels, len(b), "detections.labels", 0, len(class_names))
    return b, s, lab


# ---------------------------------------------------------------------------------------------
# AP
# ---------------------------------------------------------------------------------------------


def average_precision_area(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC "area" AP (all-point interpolation), as mmdet3d's ``average_precision(mode='area')``.

    The curve is closed with the points (0, 0) in front and (1, 0) behind; precision is replaced by
    its envelope ``p̂_i = max_{j >= i} p_j``; AP = Σ (r_{i+1} − r_i) · p̂_{i+1} over the points where
    recall changes.

    Args:
        recall: ``(D,)`` non-decreasing recall after each ranked detection.
        precision: ``(D,)`` precision after each ranked detection.

    Returns:
        The AP (nan if any recall is nan, as in mmdet3d).

    Raises:
        ValueError: if the two arrays are not 1-D of equal length.
    """
    r = np.asarray(recall, dtype=np.float64)
    p = np.asarray(precision, dtype=np.float64)
    if r.ndim != 1 or r.shape != p.shape:
        raise ValueError(f"recall and precision must be 1-D of equal length, got {r.shape} and {p.shape}")
    mrec = np.concatenate([[0.0], r, [1.0]])
    mpre = np.concatenate([[0.0], p, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    step = np.flatnonzero(mrec[1:] != mrec[:-1])  # nan != nan is True, so nan propagates like mmdet3d
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


def _tp_flags(gt_ids: np.ndarray, ious: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy TP flags of detections already in rank order.

    A detection whose best GT clears the threshold is a TP iff no earlier detection claimed the same
    GT; detections below the threshold claim nothing. This equals mmdet3d's sequential loop.

    Args:
        gt_ids: ``(D,)`` global id of each detection's best same-class GT, -1 where there is none.
        ious: ``(D,)`` IoU with that GT.
        threshold: strict IoU threshold.

    Returns:
        ``(D,)`` bool TP flags.
    """
    claims = np.flatnonzero((gt_ids >= 0) & (ious > threshold))
    _, first = np.unique(gt_ids[claims], return_index=True)  # first claim of each GT in rank order
    tp = np.zeros(len(gt_ids), dtype=bool)
    tp[claims[first]] = True
    return tp


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def _thr_key(threshold: float) -> str:
    return f"{threshold:.2f}"


@dataclass(frozen=True)
class IndoorMapResult:
    """Per-class AP and recall at each IoU threshold, with their means.

    Attributes:
        class_names: ``C`` class names.
        iou_thresholds: ``T`` IoU thresholds.
        ap: ``(T, C)`` AP; nan for classes that were not evaluated or have detections but no GT.
        recall: ``(T, C)`` final recall, nan in the same places as ``ap``.
        num_gt: ``(C,)`` number of (non-ignored) GT objects per class.
        num_det: ``(C,)`` number of detections per class.
        evaluated: ``(C,)`` True where the class has GT or detections (mmdet3d reports only these).
        in_mean: ``(C,)`` True where the class enters mAP / mAR.
        mean_ap: ``(T,)`` mAP per threshold.
        mean_recall: ``(T,)`` mAR per threshold.
        num_scenes: number of scenes evaluated.
    """

    class_names: tuple[str, ...]
    iou_thresholds: tuple[float, ...]
    ap: np.ndarray
    recall: np.ndarray
    num_gt: np.ndarray
    num_det: np.ndarray
    evaluated: np.ndarray
    in_mean: np.ndarray
    mean_ap: np.ndarray
    mean_recall: np.ndarray
    num_scenes: int

    def _index(self, threshold: float) -> int:
        for i, t in enumerate(self.iou_thresholds):
            if abs(t - threshold) < 1e-12:
                return i
        raise ValueError(f"threshold {threshold} was not evaluated; have {self.iou_thresholds}")

    def map_at(self, threshold: float) -> float:
        """mAP at one of the evaluated thresholds."""
        return float(self.mean_ap[self._index(threshold)])

    def mar_at(self, threshold: float) -> float:
        """mAR at one of the evaluated thresholds."""
        return float(self.mean_recall[self._index(threshold)])

    def to_dict(self) -> dict[str, float]:
        """Flat metrics with mmdet3d's keys and order.

        Returns:
            For each threshold ``t`` (formatted ``%.2f``): ``{class}_AP_t`` for the evaluated classes,
            ``mAP_t``, ``{class}_rec_t``, ``mAR_t``.
        """
        out: dict[str, float] = {}
        classes = np.flatnonzero(self.evaluated)
        for i, t in enumerate(self.iou_thresholds):
            k = _thr_key(t)
            for c in classes:
                out[f"{self.class_names[c]}_AP_{k}"] = float(self.ap[i, c])
            out[f"mAP_{k}"] = float(self.mean_ap[i])
            for c in classes:
                out[f"{self.class_names[c]}_rec_{k}"] = float(self.recall[i, c])
            out[f"mAR_{k}"] = float(self.mean_recall[i])
        return out

    def as_table(self) -> str:
        """A fixed-width table like mmdet3d's log: one row per evaluated class, then "Overall"."""
        header = ["classes"] + [f"{m}_{_thr_key(t)}" for t in self.iou_thresholds for m in ("AP", "AR")] + ["n_gt"]
        rows = []
        for c in np.flatnonzero(self.evaluated):
            vals = [f"{v:.4f}" for i in range(len(self.iou_thresholds)) for v in (self.ap[i, c], self.recall[i, c])]
            rows.append([self.class_names[c] + ("" if self.in_mean[c] else " *")] + vals + [str(self.num_gt[c])])
        overall = [f"{v:.4f}" for i in range(len(self.iou_thresholds)) for v in (self.mean_ap[i], self.mean_recall[i])]
        rows.append(["Overall"] + overall + [str(int(self.num_gt[self.in_mean].sum()))])
        widths = [max(len(r[j]) for r in [header] + rows) for j in range(len(header))]

        def fmt(r: list[str]) -> str:
            return "| " + " | ".join(s.ljust(w) for s, w in zip(r, widths)) + " |"

        rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        lines = [rule, fmt(header), rule] + [fmt(r) for r in rows[:-1]] + [rule, fmt(rows[-1]), rule]
        if not self.in_mean[self.evaluated].all():
            lines.append("* not in the means (no GT, skip_classes_without_gt=True)")
        return "\n".join(lines)


@dataclass(frozen=True)
class DetectionIous:
    """Every detection seen by an evaluator with the IoU of its best same-class GT.

    Attributes:
        scores: ``(D,)`` scores, in the order the detections were added.
        labels: ``(D,)`` class indices.
        ious: ``(D,)`` IoU with the best same-class, non-ignored GT of its scene; 0 where there is none.
        scene: ``(D,)`` index of the scene (order of :meth:`IndoorMapEvaluator.add` calls).
    """

    scores: np.ndarray
    labels: np.ndarray
    ious: np.ndarray
    scene: np.ndarray


# ---------------------------------------------------------------------------------------------
# Evaluator
# ---------------------------------------------------------------------------------------------


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """Concatenate per-scene arrays; an evaluator without scenes gives an empty array."""
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


class IndoorMapEvaluator:
    """Streaming indoor mAP / mAR (VoteNet / mmdet3d protocol) over many scenes.

    Example:
        >>> ev = IndoorMapEvaluator(("chair", "table"))
        >>> for gt, det in scenes:          # doctest: +SKIP
        ...     ev.add(gt, det)
        >>> print(ev.compute().as_table())  # doctest: +SKIP

    Args:
        class_names: names of the ``C`` classes; labels index into them.
        iou_thresholds: strict IoU thresholds, each in [0, 1).
        iou_fn: pairwise 3-D IoU; ``None`` binds :func:`default_iou_fn` at the first scene.
        skip_classes_without_gt: if True, classes with zero GT leave mAP / mAR (a deviation from
            mmdet3d, where a class with detections but no GT makes the means nan).

    Raises:
        ValueError: on empty or duplicate class names, or thresholds outside [0, 1).
    """

    def __init__(
        self,
        class_names: Sequence[str],
        iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
        iou_fn: Optional[IouFn] = None,
        skip_classes_without_gt: bool = False,
    ) -> None:
        names = tuple(str(n) for n in class_names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"class_names must be non-empty and unique, got {names}")
        thrs = tuple(float(t) for t in iou_thresholds)
        if not thrs or not all(np.isfinite(t) and 0.0 <= t < 1.0 for t in thrs):
            raise ValueError(f"iou_thresholds must be a non-empty sequence of values in [0, 1), got {thrs}")
        if len({_thr_key(t) for t in thrs}) != len(thrs):
            raise ValueError(f"iou_thresholds must differ at 2 decimals (they name the metrics), got {thrs}")
        self.class_names = names
        self.iou_thresholds = thrs
        self.skip_classes_without_gt = bool(skip_classes_without_gt)
        self._iou_fn = iou_fn
        self.reset()

    def reset(self) -> None:
        """Forget all scenes."""
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._ious: list[np.ndarray] = []
        self._gt_ids: list[np.ndarray] = []
        self._scene: list[np.ndarray] = []
        self._num_gt = np.zeros(len(self.class_names), dtype=np.int64)
        self._num_scenes = 0

    @property
    def num_scenes(self) -> int:
        """Number of scenes added since the last reset."""
        return self._num_scenes

    def _pairwise_iou(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self._iou_fn is None:
            self._iou_fn = default_iou_fn()
        iou = np.asarray(self._iou_fn(a, b), dtype=np.float64)
        if iou.shape != (len(a), len(b)):
            raise ValueError(f"iou_fn returned shape {iou.shape}, expected {(len(a), len(b))}")
        if not np.isfinite(iou).all():
            raise ValueError("iou_fn returned NaN or inf (degenerate boxes?)")
        return iou

    def add(self, ground_truth: GroundTruthLike, detections: DetectionsLike) -> None:
        """Add one scene.

        Args:
            ground_truth: a :class:`SceneGroundTruth`, or a mapping with ``boxes``/``labels``
                (or mmdet3d's ``gt_bboxes_3d``/``gt_labels_3d``). Label -1 is ignored.
            detections: a :class:`~sr3d_core.detections.Detections` (its ``class_names`` must equal
                the evaluator's), or a mapping with ``boxes``/``scores``/``labels`` (or mmdet3d's
                ``bboxes_3d``/``scores_3d``/``labels_3d``). Give them after NMS.

        Raises:
            ValueError: on wrong shapes, NaN/inf, mismatched lengths or labels out of range; the
                message names the argument.
        """
        gt_boxes, gt_labels = _parse_gt(ground_truth, len(self.class_names))
        det_boxes, det_scores, det_labels = _parse_det(detections, self.class_names)

        keep = gt_labels >= 0  # mmdet3d's _remove_dontcare
        gt_boxes, gt_labels = gt_boxes[keep], gt_labels[keep]
        # Global GT ids: offset by the number of GT seen so far, so ids never collide across scenes.
        gt_offset = int(self._num_gt.sum())
        best_iou = np.zeros(len(det_scores))
        best_gt = np.full(len(det_scores), -1, dtype=np.int64)
        # Detections that have same-class GT in this scene; one IoU call per scene, since the
        # call overhead outweighs the pairs saved by calling per class.
        has_gt = np.isin(det_labels, gt_labels)
        if has_gt.any():
            d = np.flatnonzero(has_gt)
            iou = self._pairwise_iou(det_boxes[d], gt_boxes)
            iou[det_labels[d][:, None] != gt_labels[None, :]] = -np.inf  # other classes never match
            j = np.argmax(iou, axis=1)  # first maximum, like mmdet3d's strict ">" scan
            best_iou[d] = iou[np.arange(len(d)), j]
            best_gt[d] = gt_offset + j

        self._scores.append(det_scores)
        self._labels.append(det_labels)
        self._ious.append(best_iou)
        self._gt_ids.append(best_gt)
        self._scene.append(np.full(len(det_scores), self._num_scenes, dtype=np.int64))
        self._num_gt += np.bincount(gt_labels, minlength=len(self.class_names))
        self._num_scenes += 1

    def add_many(self, ground_truths: Sequence[GroundTruthLike], detections: Sequence[DetectionsLike]) -> None:
        """Add several scenes; ``ground_truths[i]`` pairs with ``detections[i]``.

        Raises:
            ValueError: if the two sequences differ in length, or as :meth:`add`.
        """
        if len(ground_truths) != len(detections):
            raise ValueError(f"detections has {len(detections)} scenes but ground_truths has {len(ground_truths)}")
        for gt, det in zip(ground_truths, detections):
            self.add(gt, det)

    def detection_ious(self) -> DetectionIous:
        """All detections added so far with their best same-class GT IoU (input of PCE)."""
        return DetectionIous(
            _concat(self._scores, np.float64),
            _concat(self._labels, np.int64),
            _concat(self._ious, np.float64),
            _concat(self._scene, np.int64),
        )

    def compute(self) -> IndoorMapResult:
        """Compute AP and recall per class and threshold, and their means, over all added scenes."""
        rec = self.detection_ious()
        gt_ids = _concat(self._gt_ids, np.int64)
        num_c, num_t = len(self.class_names), len(self.iou_thresholds)
        ap = np.full((num_t, num_c), np.nan)
        recall = np.full((num_t, num_c), np.nan)
        num_det = np.bincount(rec.labels, minlength=num_c)
        evaluated = (self._num_gt > 0) | (num_det > 0)

        for c in np.flatnonzero(evaluated):
            npos = int(self._num_gt[c])
            if npos == 0:
                continue  # detections but no GT: mmdet3d's tp / 0 gives nan AP and recall
            if num_det[c] == 0:
                ap[:, c] = 0.0  # GT but no detection: mmdet3d fills zeros
                recall[:, c] = 0.0
                continue
            idx = np.flatnonzero(rec.labels == c)  # pooled order: scene, then detection
            order = idx[np.argsort(-rec.scores[idx], kind="stable")]
            for i, t in enumerate(self.iou_thresholds):
                tp = _tp_flags(gt_ids[order], rec.ious[order], t)
                tp_cum = np.cumsum(tp, dtype=np.float64)
                fp_cum = np.cumsum(~tp, dtype=np.float64)
                r = tp_cum / npos
                p = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
                ap[i, c] = average_precision_area(r, p)
                recall[i, c] = r[-1]

        in_mean = evaluated & ((self._num_gt > 0) if self.skip_classes_without_gt else True)
        if in_mean.any():
            mean_ap, mean_rec = ap[:, in_mean].mean(axis=1), recall[:, in_mean].mean(axis=1)
        else:  # nothing to evaluate: mmdet3d's np.mean([]) is nan too
            mean_ap, mean_rec = np.full(num_t, np.nan), np.full(num_t, np.nan)
        return IndoorMapResult(
            class_names=self.class_names,
            iou_thresholds=self.iou_thresholds,
            ap=ap,
            recall=recall,
            num_gt=self._num_gt.copy(),
            num_det=num_det,
            evaluated=evaluated,
            in_mean=in_mean,
            mean_ap=mean_ap,
            mean_recall=mean_rec,
            num_scenes=self._num_scenes,
        )


def indoor_eval(
    ground_truths: Sequence[GroundTruthLike],
    detections: Sequence[DetectionsLike],
    class_names: Sequence[str],
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    iou_fn: Optional[IouFn] = None,
    skip_classes_without_gt: bool = False,
) -> IndoorMapResult:
    """One-shot equivalent of mmdet3d's ``indoor_eval`` (see :class:`IndoorMapEvaluator`).

    Args:
        ground_truths: per-scene ground truth.
        detections: per-scene detections, after NMS, in the same scene order.
        class_names: names of the classes.
        iou_thresholds: strict IoU thresholds.
        iou_fn: pairwise 3-D IoU; ``None`` uses :func:`default_iou_fn`.
        skip_classes_without_gt: see :class:`IndoorMapEvaluator`.

    Returns:
        The metrics; ``.to_dict()`` has mmdet3d's keys.

    Raises:
        ValueError: on mismatched scene counts or bad input (the message names the argument).
    """
    ev = IndoorMapEvaluator(class_names, iou_thresholds, iou_fn, skip_classes_without_gt)
    ev.add_many(ground_truths, detections)
    return ev.compute()
