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


@pytest.fixture(params=["compiled", "compiled-sweep", "torch"])
def iou_path(request, monkeypatch):
    """Run with the compiled greedy NMS (the CPU default for rotated boxes, where it builds), with the sweep over
    footprints and the compiled rotated IoU (beyond the compiled loop's box count), and with PyTorch alone."""
    from sr3d_core.geometry import native, nms

    if request.param != "torch" and not native.available(torch.zeros(1)):
        pytest.skip("no C compiler: pure-PyTorch path only")
    monkeypatch.setattr(native.extension, "_enabled", request.param != "torch")
    if request.param == "compiled-sweep":
        monkeypatch.setattr(nms, "_COMPILED_NMS_MAX", 0)
    return request.param


@pytest.mark.parametrize("rotated", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_matches_python_greedy(seed, rotated, iou_path):
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


def test_compiled_nms_groups_any_labels_alike():
    """Labels far apart (the compiled loop's sort instead of its counting sort) and many classes give the kept
    boxes that small labels give, at any thread count."""
    from sr3d_core.geometry import native

    if not native.available(torch.zeros(1)):
        pytest.skip("no C compiler: pure-PyTorch path only")
    rng = np.random.default_rng(7)
    boxes, _, labels = _clustered(rng, 2000, n_classes=40)
    b, lab = torch.from_numpy(boxes), torch.from_numpy(labels)
    was = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results += [native.nms_rotated_bev(b, lab, 0.3), native.nms_rotated_bev(b, lab * 10**15 - 7, 0.3)]
    finally:
        torch.set_num_threads(was)
    assert 100 < int(results[0].sum()) < 1900
    assert all(torch.equal(results[0], r) for r in results[1:])


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bounds_never_drop_a_suppressing_pair(dtype, monkeypatch):
    # The pre-filters (footprint overlap, areas, projections onto each box's axes) of the PyTorch path must keep
    # every pair whose exact IoU exceeds the threshold. Clustered, jittered, rotated boxes put many pairs right at
    # the threshold.
    from sr3d_core.geometry import native
    from sr3d_core.geometry.iou import rotated_iou_paired_diff
    from sr3d_core.geometry.nms import _suppression_pairs

    monkeypatch.setattr(native.extension, "_enabled", False)

    g = torch.Generator().manual_seed(0)
    n = 600
    centres = torch.rand(8, 2, generator=g, dtype=torch.float64) * 6
    k = torch.randint(0, 8, (n,), generator=g)
    boxes = torch.zeros(n, 7, dtype=torch.float64)
    boxes[:, :2] = centres[k] + 0.15 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    boxes[:, 3:5] = 0.4 + torch.rand(n, 2, generator=g, dtype=torch.float64)
    boxes[:, 5] = 1.0
    boxes[:, 6] = (k * 0.7) + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    boxes[::5, 6] = boxes[::5, 6].round()  # some exact multiples: near-axis-aligned pairs
    boxes = boxes.to(dtype)
    labels = torch.zeros(n, dtype=torch.long)
    for thr in (0.25, 0.5):
        got = _suppression_pairs(boxes, labels, thr, rotated=True)
        i, j = torch.triu_indices(n, n, 1)
        iou = rotated_iou_paired_diff(boxes[i], boxes[j], bev=True)
        want = torch.stack([i, j], 1)[iou > thr]
        assert len(want) > 1000  # the case is not vacuous
        assert torch.equal(got, want[torch.argsort(want[:, 0] * n + want[:, 1])])


def test_bounds_keep_float32_pairs_at_the_threshold(monkeypatch):
    # Same-yaw pairs shifted along their heading so that the IoU is 0.5 to within 5e-7: there the projection bound
    # equals the exact intersection, and only the rounding slack keeps float32 pairs whose IoU is a hair above.
    from sr3d_core.geometry import native
    from sr3d_core.geometry.iou import rotated_iou_paired_diff
    from sr3d_core.geometry.nms import _suppression_pairs

    monkeypatch.setattr(native.extension, "_enabled", False)  # the bounds belong to the PyTorch path

    g = torch.Generator().manual_seed(1)
    m = 3000
    a = torch.zeros(m, 7, dtype=torch.float64)
    a[:, :2] = torch.rand(m, 2, generator=g, dtype=torch.float64) * 8 - 4  # a room; each pair is its own class
    a[:, 3:6] = torch.cat([0.5 + torch.rand(m, 2, generator=g, dtype=torch.float64), torch.ones(m, 1)], 1)
    a[:, 6] = torch.rand(m, generator=g, dtype=torch.float64) * 6.28
    a[::2, 6] = 0.0
    b = a.clone()
    shift = (1 / 3 - (torch.rand(m, generator=g, dtype=torch.float64) - 0.5) * 1e-6) * a[:, 3]  # overlap ~2/3
    b[:, 0] += torch.cos(a[:, 6]) * shift
    b[:, 1] += torch.sin(a[:, 6]) * shift
    boxes = torch.stack([a, b], 1).reshape(-1, 7).float()  # box 2p and 2p + 1 form pair p
    iou = rotated_iou_paired_diff(boxes[0::2], boxes[1::2], bev=True)
    want = torch.nonzero(iou > 0.5).squeeze(1)
    assert 0.3 * m < len(want) < 0.7 * m
    got = _suppression_pairs(boxes, torch.arange(m).repeat_interleave(2), 0.5, rotated=True)
    assert torch.equal(got, torch.stack([2 * want, 2 * want + 1], 1))


def test_compiled_nms_compares_the_iou_in_the_boxes_dtype():
    """float32 boxes: an IoU whose float64 value lies just above a float32 threshold, but rounds to it, does not
    suppress (as the PyTorch path, which holds the IoU in float32); float64 boxes compare in float64."""
    from sr3d_core.geometry import native

    if not native.available(torch.zeros(1)):
        pytest.skip("no C compiler")
    for dx in np.linspace(0.5, 0.6, 200):
        pair = torch.tensor([[0.0, 0, 0, 2, 2, 1, 0.3], [dx, 0.1, 0, 2, 2, 1, 0.3]], dtype=torch.float64)
        iou = float(native.rotated_iou_bev(pair[:1], pair[1:])[0])
        thr = float(np.float32(iou))
        if iou > thr:
            break
    else:
        pytest.fail("no IoU above its float32 rounding found")
    scores, labels = torch.tensor([0.9, 0.8]), torch.tensor([0, 0])
    assert nms_bev(pair.float(), scores, labels, iou_threshold=thr).tolist() == [0, 1]
    assert nms_bev(pair, scores, labels, iou_threshold=thr).tolist() == [0]
    assert native.nms_rotated_bev(pair.float(), labels, thr).tolist() == [True, True]
    assert native.nms_rotated_bev(pair, labels, thr).tolist() == [True, False]
