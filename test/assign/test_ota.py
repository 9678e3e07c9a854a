"""simOTA and AlignOTA on scenes whose answer is known by hand or by a brute-force loop."""

import math

import pytest
import torch
import torch.nn.functional as F

from sr3d_core.assign import (
    AlignOTAAssigner,
    AlignOTAConfig,
    AnchorSet,
    GroundTruth,
    Predictions,
    SimOTAAssigner,
    SimOTAConfig,
)
from sr3d_core.assign.costs import paired_iou, points_in_boxes
from sr3d_core.assign.simota import centre_region


def box(x, y, z, dx, dy, dz, yaw=0.0):
    return [x, y, z, dx, dy, dz, yaw]


def scene(seed=5, n=50, m=3):
    g = torch.Generator().manual_seed(seed)
    locs = torch.rand(n, 3, generator=g, dtype=torch.float64) * 3
    anchors = AnchorSet(locs, torch.zeros(n, dtype=torch.long), torch.full((n,), 0.2, dtype=torch.float64))
    gtb = torch.cat(
        [
            torch.rand(m, 3, generator=g, dtype=torch.float64) * 3,
            0.8 + torch.rand(m, 3, generator=g, dtype=torch.float64),
            torch.zeros(m, 1, dtype=torch.float64),
        ],
        1,
    )
    pb = torch.cat(
        [
            locs + 0.2 * torch.randn(n, 3, generator=g, dtype=torch.float64),
            0.6 + torch.rand(n, 3, generator=g, dtype=torch.float64),
            torch.zeros(n, 1, dtype=torch.float64),
        ],
        1,
    )
    preds = Predictions(pb, torch.randn(n, 2, generator=g, dtype=torch.float64))
    return anchors, preds, GroundTruth(gtb, torch.tensor([0, 1, 1])[:m])


def test_simota_matches_brute_force():
    anchors, preds, gt = scene()
    cfg = SimOTAConfig()
    n, m = len(anchors), len(gt)
    in_box = points_in_boxes(anchors.locations, gt.boxes)
    in_ctr = centre_region(anchors, gt.boxes, cfg.center_radius)
    fg = (in_box | in_ctr).any(dim=1)
    cost = [[math.inf] * m for _ in range(n)]
    iou = [[0.0] * m for _ in range(n)]
    for i in range(n):
        if not fg[i]:
            continue
        for j in range(m):
            q = float(paired_iou(preds.boxes[i : i + 1], gt.boxes[j : j + 1], False))
            onehot = F.one_hot(gt.labels[j], 2).double()
            cls = float(F.binary_cross_entropy_with_logits(preds.cls_logits[i], onehot, reduction="sum"))
            cost[i][j] = cls + 3 * -math.log(q + 1e-8) + (0 if (in_box[i, j] and in_ctr[i, j]) else 1e5)
            iou[i][j] = q
    want = [-1] * n
    best = [math.inf] * n
    for j in range(m):
        k = max(1, int(sum(sorted((iou[i][j] for i in range(n)), reverse=True)[:10])))
        for c, i in sorted((cost[i][j], i) for i in range(n) if math.isfinite(cost[i][j]))[:k]:
            if c < best[i]:
                best[i], want[i] = c, j
    got = SimOTAAssigner(cfg).assign(anchors, preds, gt).gt_index.tolist()
    assert got == want
    assert sum(x >= 0 for x in got) >= m  # every GT gets at least one positive here


def test_simota_dynamic_k_by_hand():
    # One GT; three anchors inside it predicting boxes of IoU 1, 1 and 0.5: sum of IoUs 2.5 -> k = 2.
    gt = GroundTruth(torch.tensor([box(0, 0, 0, 2, 2, 2)]), torch.tensor([0]))
    anchors = AnchorSet(
        torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0]]), torch.zeros(3, dtype=torch.long), torch.ones(3)
    )
    preds = Predictions(
        torch.tensor([box(0, 0, 0, 2, 2, 2), box(0, 0, 0, 2, 2, 2), box(0, 0, 0, 2, 2, 1)]), torch.zeros(3, 1)
    )
    res = SimOTAAssigner().assign(anchors, preds, gt)
    assert res.gt_index.tolist() == [0, 0, -1]
    assert res.iou[:2].tolist() == pytest.approx([1.0, 1.0])


def test_alignota_prefers_aligned_score():
    # One GT; two anchors inside with the same IoU 0.5: the one whose score is near the IoU costs less
    # (the soft-label BCE scaled by |IoU − p|²), so with k = max(1, floor(0.5 + 0.5)) = 1 it wins.
    gt = GroundTruth(torch.tensor([box(0, 0, 0, 2, 2, 2)]), torch.tensor([0]))
    anchors = AnchorSet(torch.tensor([[0.1, 0, 0], [-0.1, 0, 0]]), torch.zeros(2, dtype=torch.long), torch.ones(2))
    preds = Predictions(
        torch.tensor([box(0, 0, 0.5, 2, 2, 1), box(0, 0, -0.5, 2, 2, 1)]), torch.tensor([[-4.0], [0.0]])
    )  # p = 0.018 vs 0.5
    res = AlignOTAAssigner(AlignOTAConfig()).assign(anchors, preds, gt)
    assert res.gt_index.tolist() == [-1, 0]
    # Outside every GT box: no candidates at all.
    far = AnchorSet(torch.tensor([[5.0, 5, 5]]), torch.zeros(1, dtype=torch.long), torch.ones(1))
    res = AlignOTAAssigner().assign(far, Predictions(preds.boxes[:1], preds.cls_logits[:1]), gt)
    assert res.gt_index.tolist() == [-1]
