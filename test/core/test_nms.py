"""Per-class BEV NMS against a plain Python greedy loop with shapely / interval IoU."""

import numpy as np
import pytest
import torch
from shapely.geometry import Polygon

from sr3d_core.boxes import bev_corners
from sr3d_core.geometry import nms_bev


def _ref_bev_iou(a, b, rotated, pa=None, pb=None):
    if rotated:
        inter = pa.intersection(pb).area
    else:  # yaw ignored
        ov = [max(0.0, min(a[d] + a[3 + d] / 2, b[d] + b[3 + d] / 2) - max(a[d] - a[3 + d] / 2, b[d] - b[3 + d] / 2))
              for d in range(2)]  # fmt: skip
        inter = ov[0] * ov[1]
    union = a[3] * a[4] + b[3] * b[4] - inter
    return inter / union if union > 0 else 0.0


def _ref_nms(boxes, scores, labels, iou_thr, score_thr=None, pre_max=None, max_out=None, rotated=True):
    polys = [Polygon(c) for c in bev_corners(boxes)]
    idx = [i for i in range(len(scores)) if score_thr is None or scores[i] > score_thr]
    idx.sort(key=lambda i: -scores[i])  # Python's sort is stable: ties keep index order
    if pre_max is not None:
        idx = idx[:pre_max]
    keep = []
    for i in idx:
        if all(
            labels[k] != labels[i] or _ref_bev_iou(boxes[k], boxes[i], rotated, polys[k], polys[i]) <= iou_thr
            for k in keep
        ):
            keep.append(i)
    return keep[:max_out] if max_out is not None else keep


def _clustered(rng, n, n_classes=3):
    centres = rng.uniform(-3, 3, (8, 2))
    xy = centres[rng.integers(0, 8, n)] + rng.normal(0, 0.25, (n, 2))
    boxes = np.concatenate(
        [xy, rng.uniform(0, 1, (n, 1)), rng.uniform(0.3, 1.2, (n, 3)), rng.uniform(-np.pi, np.pi, (n, 1))], 1
    )
    scores = rng.uniform(0, 1, n).round(2)  # rounding creates ties
    labels = rng.integers(0, n_classes, n)
    return boxes, scores, labels


@pytest.mark.parametrize("rotated", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_matches_python_greedy(seed, rotated):
    rng = np.random.default_rng(seed)
    boxes, scores, labels = _clustered(rng, 300)
    for thr in (0.1, 0.5):
        ref = _ref_nms(boxes, scores, labels, thr, rotated=rotated)
        got = nms_bev(boxes, scores, labels, iou_threshold=thr, rotated=rotated)
        assert isinstance(got, np.ndarray) and got.dtype == np.int64
        assert got.tolist() == ref
        assert 20 < len(ref) < 290  # suppression happened, and not everything was suppressed
    kw = dict(score_thr=0.3, pre_max=150, max_out=40)
    ref = _ref_nms(boxes, scores, labels, 0.25, rotated=rotated, **kw)
    got = nms_bev(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), iou_threshold=0.25,
        score_threshold=0.3, pre_max=150, max_out=40, rotated=rotated,
    )  # fmt: skip
    assert isinstance(got, torch.Tensor) and got.tolist() == ref


def test_single_class_and_six_number_boxes():
    rng = np.random.default_rng(9)
    boxes, scores, _ = _clustered(rng, 200)
    ref = _ref_nms(boxes, scores, np.zeros(200, int), 0.3, rotated=False)
    assert nms_bev(boxes, scores, iou_threshold=0.3, rotated=False).tolist() == ref
    assert nms_bev(boxes[:, :6], scores, iou_threshold=0.3, rotated=False).tolist() == ref


def test_threshold_is_strict_and_classes_independent():
    boxes = torch.tensor(
        [
            [0.0, 0.0, 0.0, 2.0, 2.0, 1.0, 0.0],
            [0.0, 0.0, 5.0, 2.0, 2.0, 1.0, 0.0],  # identical footprint, far in z: BEV ignores z -> suppressed
            [1.0, 0.0, 0.0, 2.0, 2.0, 1.0, 0.0],  # BEV IoU with box 0 is exactly 2/6
            [0.0, 0.0, 0.0, 2.0, 2.0, 1.0, 0.0],  # identical to box 0 but another class
        ],
        dtype=torch.float64,
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1])
    for rotated in (True, False):
        assert nms_bev(boxes, scores, labels, iou_threshold=0.5, rotated=rotated).tolist() == [0, 2, 3]
        # IoU equal to the threshold does not suppress; just above does
        assert nms_bev(boxes, scores, labels, iou_threshold=1 / 3, rotated=rotated).tolist() == [0, 2, 3]
        assert nms_bev(boxes, scores, labels, iou_threshold=0.33, rotated=rotated).tolist() == [0, 3]
    # a rotated copy: axis-aligned NMS ignores the yaw, rotated NMS does not
    rot = boxes[:2].clone()
    rot[1, 6] = np.pi / 4
    s2 = scores[:2]
    assert nms_bev(rot, s2, iou_threshold=0.9, rotated=False).tolist() == [0]
    assert nms_bev(rot, s2, iou_threshold=0.9, rotated=True).tolist() == [0, 1]


def test_score_threshold_is_strict_and_order():
    boxes = np.zeros((4, 7))
    boxes[:, 0] = np.arange(4) * 10
    boxes[:, 3:6] = 1
    scores = np.array([0.01, 0.5, 0.02, 0.5])
    assert nms_bev(boxes, scores, score_threshold=0.01).tolist() == [1, 3, 2]
    assert nms_bev(boxes, scores, pre_max=2).tolist() == [1, 3]
    assert nms_bev(boxes, scores, max_out=0).tolist() == []


def test_empty():
    e = nms_bev(np.zeros((0, 7)), np.zeros(0), np.zeros(0, int))
    assert isinstance(e, np.ndarray) and e.shape == (0,)
    t = nms_bev(torch.zeros(0, 7), torch.zeros(0))
    assert isinstance(t, torch.Tensor) and t.shape == (0,) and t.dtype == torch.long
    boxes = np.ones((3, 7))
    assert nms_bev(boxes, np.full(3, 0.1), score_threshold=0.5).shape == (0,)


def test_bad_inputs():
    boxes = np.ones((3, 7))
    s = np.ones(3)
    with pytest.raises(ValueError, match="boxes must have shape"):
        nms_bev(np.ones((3, 6)), s)
    with pytest.raises(ValueError, match="boxes contains NaN"):
        nms_bev(np.full((3, 7), np.nan), s)
    with pytest.raises(ValueError, match="boxes has negative sizes"):
        nms_bev(-boxes, s)
    with pytest.raises(ValueError, match="scores must be an array of shape"):
        nms_bev(boxes, np.ones(2))
    with pytest.raises(ValueError, match="scores contains NaN"):
        nms_bev(boxes, np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="labels must be an array of shape"):
        nms_bev(boxes, s, np.zeros(4, int))
    with pytest.raises(ValueError, match="labels must hold integers"):
        nms_bev(boxes, s, np.zeros(3))
    with pytest.raises(ValueError, match="pass iou_threshold"):
        nms_bev(boxes, s, 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        nms_bev(boxes, s, iou_threshold=1.5)
    with pytest.raises(ValueError, match="pre_max"):
        nms_bev(boxes, s, pre_max=-1)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("test requires a CUDA device")
    boxes, scores, labels = _clustered(np.random.default_rng(3), 500)
    b, s, lab = (torch.from_numpy(x) for x in (boxes, scores, labels))
    cpu = nms_bev(b, s, lab, iou_threshold=0.3)
    gpu = nms_bev(b.cuda(), s.cuda(), lab.cuda(), iou_threshold=0.3)
    assert gpu.is_cuda and gpu.cpu().tolist() == cpu.tolist()
