"""SPOTA: its cost terms on boxes worked by hand, and the assignment against a brute-force loop."""

import math

import pytest
import torch

from sr3d_core.assign import AnchorSet, GroundTruth, Predictions, SpotaAssigner, SpotaConfig
from sr3d_core.assign.costs import normalized_vertex_distance, points_in_boxes
from sr3d_core.assign.spota import centre_prior, spota_pair_cost


def box(x, y, z, dx, dy, dz, yaw=0.0):
    return [x, y, z, dx, dy, dz, yaw]


def test_rvd_by_hand_axis_aligned():
    # pred: cube of side 2 at the origin (corners -1..1); GT: the same shifted by 1 in x (corners 0..2, -1..1).
    # Both opposite-corner distances are 1; the enclosing box spans x -1..2, y, z -1..1: diagonal sqrt(9+4+4).
    pred = torch.tensor([box(0, 0, 0, 2, 2, 2)])
    gt = torch.tensor([box(1, 0, 0, 2, 2, 2)])
    want = (1 + 1) / (2 * math.sqrt(17))
    assert normalized_vertex_distance(pred, gt, False, "opposite").item() == pytest.approx(want, rel=1e-6)
    # All 8 corners move by 1 as well: the mean over 8 pairs gives the same value.
    assert normalized_vertex_distance(pred, gt, False, "all8").item() == pytest.approx(want, rel=1e-6)


def test_rvd_by_hand_scaled_box():
    # GT 2x2x2 at the origin, pred 4x2x2 at the origin: min corner (-2,-1,-1) vs (-1,-1,-1), max (2,1,1) vs
    # (1,1,1): distances 1 and 1; enclosure = pred, diagonal sqrt(16+4+4).
    pred = torch.tensor([box(0, 0, 0, 4, 2, 2)])
    gt = torch.tensor([box(0, 0, 0, 2, 2, 2)])
    assert normalized_vertex_distance(pred, gt, False, "opposite").item() == pytest.approx(2 / (2 * math.sqrt(24)))
    # All 8 corners: the 4 at x = ±2 each move by 1 in x, and so do the others: also 1 each.
    assert normalized_vertex_distance(pred, gt, False, "all8").item() == pytest.approx(1 / math.sqrt(24))


def test_rvd_rotated_is_zero_for_equivalent_parametrizations():
    gt = torch.tensor([box(1, 2, 0.5, 2.0, 1.0, 1.0, 0.3)] * 3)
    pred = torch.tensor(
        [
            box(1, 2, 0.5, 2.0, 1.0, 1.0, 0.3 + math.pi),  # heading flipped
            box(1, 2, 0.5, 1.0, 2.0, 1.0, 0.3 + math.pi / 2),  # w <-> l, turned a quarter
            box(1, 2, 0.5, 2.0, 1.0, 1.0, 0.3),
        ]
    )
    got = normalized_vertex_distance(pred, gt, True, "opposite")
    assert torch.allclose(got, torch.zeros(3), atol=1e-6)
    # A genuinely different box is not zero; with yaw 0 the rotated recipe equals the axis-aligned one.
    p, g = torch.tensor([box(0, 0, 0, 2, 2, 2)]), torch.tensor([box(1, 0, 0, 2, 2, 2)])
    assert normalized_vertex_distance(p, g, True, "opposite").item() == pytest.approx(1 / math.sqrt(17), rel=1e-5)


def test_centre_prior_by_hand():
    cfg = SpotaConfig(mu=1.0)
    gtb = torch.tensor([box(0, 0, 0, 1, 1, 1)] * 3)
    anchors = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [0.3, 0.4, 0]])
    got = centre_prior(cfg, anchors, gtb)
    assert got.tolist() == pytest.approx([0.0, 1 - math.exp(-0.25), 1 - math.exp(-0.25)], abs=1e-7)
    # mu scales d²; the GT-diagonal unit divides d² by the squared diagonal (3 for the unit cube).
    assert centre_prior(SpotaConfig(mu=4.0), anchors[1:2], gtb[:1]).item() == pytest.approx(1 - math.exp(-1.0))
    got = centre_prior(SpotaConfig(distance_unit="gt_diagonal"), anchors[1:2], gtb[:1]).item()
    assert got == pytest.approx(1 - math.exp(-0.25 / 3))


def test_pair_cost_by_hand():
    # IoU of the shifted cubes: overlap 1x2x2 = 4, union 8 + 8 - 4 = 12 -> 1/3.
    pred = torch.tensor([box(0, 0, 0, 2, 2, 2)])
    gt = torch.tensor([box(1, 0, 0, 2, 2, 2)])
    anchor = torch.tensor([[0.0, 0, 0]])  # 1 m from the GT centre: gamma = 1 - e^-1
    gamma = 1 - math.exp(-1)
    rvd = 1 / math.sqrt(17)
    cost, iou = spota_pair_cost(SpotaConfig(), anchor, pred, gt, False)
    assert iou.item() == pytest.approx(1 / 3)
    assert cost.item() == pytest.approx(gamma * (-math.log(1 / 3 + 1e-7) + rvd), rel=1e-5)
    cost, _ = spota_pair_cost(SpotaConfig(c_reg="one_minus_iou", use_rvd=False), anchor, pred, gt, False)
    assert cost.item() == pytest.approx(gamma * (2 / 3), rel=1e-5)
    # DIoU's penalty: centre distance² / diagonal² = 1 / 17.
    cost, _ = spota_pair_cost(SpotaConfig(c_reg="one_minus_diou", use_rvd=False), anchor, pred, gt, False)
    assert cost.item() == pytest.approx(gamma * (2 / 3 + 1 / 17), rel=1e-5)
    # "with C_cls": + lambda * BCE(sigmoid(logit), 1) = lambda * ln(1 + e^-logit).
    cost, _ = spota_pair_cost(
        SpotaConfig(use_rvd=False, cls_cost_weight=2.0), anchor, pred, gt, False, torch.tensor([0.5])
    )
    assert cost.item() == pytest.approx(gamma * -math.log(1 / 3 + 1e-7) + 2 * math.log(1 + math.exp(-0.5)), rel=1e-5)


def anchor_set(locs, levels=None):
    locs = torch.as_tensor(locs, dtype=torch.float32)
    lv = torch.zeros(len(locs), dtype=torch.long) if levels is None else torch.as_tensor(levels)
    return AnchorSet(locs, lv, torch.full((len(locs),), 0.32))


def test_tiny_scene_by_hand():
    # One GT, a unit cube at (2, 0, 0.5); five anchors on the x axis, k = 3. Hand-computed costs
    # gamma * (-ln IoU + R_VD): anchor 1 sits on the GT centre (gamma = 0: cost 0); anchor 0 is 2 m away but
    # predicts the GT exactly (-ln(1 + eps) ~ -1e-7); anchor 3 (IoU 0.9/1.1) beats anchor 2 (IoU 0.7/1.3) at the
    # same distance; anchor 4's prediction does not overlap (-ln eps = 16.1, the largest).
    gt = GroundTruth(torch.tensor([box(2, 0, 0.5, 1, 1, 1)]), torch.tensor([0]))
    locs = [[0.0, 0, 0.5], [2.0, 0, 0.5], [2.5, 0, 0.5], [1.5, 0, 0.5], [4.0, 0, 0.5]]
    preds = torch.tensor(
        [
            box(2, 0, 0.5, 1, 1, 1),  # 0: exact but 2 m away: gamma = 1 - e^-4, cost ~ 0
            box(2.4, 0, 0.5, 1, 1, 1),  # 1: at the centre: gamma = 0, cost 0
            box(2.3, 0, 0.5, 1, 1, 1),  # 2: 0.5 m away, IoU 0.7/1.3
            box(2.1, 0, 0.5, 1, 1, 1),  # 3: 0.5 m away, IoU 0.9/1.1
            box(3.5, 0, 0.5, 1, 1, 1),  # 4: no overlap: -ln(eps) huge
        ]
    )
    res = SpotaAssigner(SpotaConfig(k=3)).assign(anchor_set(locs), Predictions(preds, torch.zeros(5, 1)), gt)
    assert res.gt_index.tolist() == [0, 0, -1, 0, -1]
    assert res.iou[3].item() == pytest.approx(0.9 / 1.1, rel=1e-5)
    assert torch.isnan(res.cost[2]) and torch.isnan(res.iou[4])


def brute_force(cfg, anchors, preds, gt, rotated):
    """Python loops: every GT picks its k least-cost candidates; conflicts go to the least cost."""
    n, m = len(anchors), len(gt)
    cost = [[math.inf] * m for _ in range(n)]
    for j in range(m):
        for i in range(n):
            if cfg.inside_box and not bool(points_in_boxes(anchors.locations[i : i + 1], gt.boxes[j : j + 1])[0, 0]):
                continue
            if cfg.candidates == "label2level" and int(anchors.levels[i]) != cfg.label2level[int(gt.labels[j])]:
                continue
            logit = preds.cls_logits[i : i + 1, gt.labels[j]]
            c, _ = spota_pair_cost(
                cfg, anchors.locations[i : i + 1], preds.boxes[i : i + 1], gt.boxes[j : j + 1], rotated, logit
            )
            cost[i][j] = float(c)
    picked = [[False] * m for _ in range(n)]
    for j in range(m):
        order = sorted((cost[i][j], i) for i in range(n) if math.isfinite(cost[i][j]))
        for _, i in order[: cfg.k]:
            picked[i][j] = True
    out = []
    for i in range(n):
        options = [(cost[i][j], j) for j in range(m) if picked[i][j]]
        out.append(min(options)[1] if options else -1)
    return out


def random_scene(seed, rotated, n=60, m=4):
    g = torch.Generator().manual_seed(seed)
    locs = torch.rand(n, 3, generator=g, dtype=torch.float64) * torch.tensor([4.0, 4.0, 1.5], dtype=torch.float64)
    gtb = torch.cat(
        [
            torch.rand(m, 3, generator=g, dtype=torch.float64) * torch.tensor([4.0, 4.0, 1.0]),
            0.5 + torch.rand(m, 3, generator=g, dtype=torch.float64),
            (torch.rand(m, 1, generator=g, dtype=torch.float64) - 0.5) * (3.0 if rotated else 0.0),
        ],
        1,
    )
    # Predictions: boxes near the anchors with random sizes, so IoUs vary and many are zero.
    pb = torch.cat(
        [
            locs + 0.3 * torch.randn(n, 3, generator=g, dtype=torch.float64),
            0.4 + torch.rand(n, 3, generator=g, dtype=torch.float64),
            torch.randn(n, 1, generator=g, dtype=torch.float64) * (1.0 if rotated else 0.0),
        ],
        1,
    )
    anchors = AnchorSet(locs, torch.randint(0, 2, (n,), generator=g), torch.full((n,), 0.32, dtype=torch.float64))
    gt = GroundTruth(gtb, torch.tensor([0, 1, 2, 1])[:m])
    return anchors, Predictions(pb, torch.randn(n, 3, generator=g, dtype=torch.float64)), gt


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize(
    "cfg",
    [
        SpotaConfig(k=4),
        SpotaConfig(k=3, vertices="all8", c_reg="one_minus_diou", mu=0.3),
        SpotaConfig(k=5, inside_box=True, cls_cost_weight=1.0),
        SpotaConfig(k=2, candidates="label2level", label2level=(0, 1, 1), use_rvd=False, c_reg="one_minus_iou"),
    ],
)
def test_matches_brute_force(cfg, rotated):
    anchors, preds, gt = random_scene(7, rotated)
    got = SpotaAssigner(cfg, rotated=rotated).assign(anchors, preds, gt).gt_index.tolist()
    assert got == brute_force(cfg, anchors, preds, gt, rotated)
    assert sum(x >= 0 for x in got) > 0


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("cfg", [SpotaConfig(k=4), SpotaConfig(k=5, inside_box=True, cls_cost_weight=1.0)])
def test_batch_matches_brute_force_per_scene(cfg, rotated):
    # Scenes of different sizes, one without GT: costed in one pass, each still assigned as if alone.
    scenes = [
        random_scene(11, rotated),
        random_scene(12, rotated, n=35, m=3),
        random_scene(13, rotated, m=0),
        random_scene(14, rotated, n=80),
    ]
    assigner = SpotaAssigner(cfg, rotated=rotated)
    batch = assigner.assign_batch(scenes)
    for scene, res in zip(scenes, batch):
        assert res.gt_index.tolist() == brute_force(cfg, *scene, rotated)
        alone = assigner.assign(*scene)
        assert torch.equal(res.gt_index, alone.gt_index)
        if len(scene[2]):
            assert torch.allclose(res.cost, alone.cost, equal_nan=True)
            assert torch.allclose(res.iou, alone.iou, equal_nan=True)
    assert batch[2].gt_index.tolist() == [-1] * 60


def test_prefilter_keeps_nearest_candidates():
    # With prefilter = 2 only the two anchors nearest the GT centre can be picked, whatever their cost.
    gt = GroundTruth(torch.tensor([box(0, 0, 0, 1, 1, 1)]), torch.tensor([0]))
    locs = [[0.1, 0, 0], [0.2, 0, 0], [0.3, 0, 0], [0.4, 0, 0]]
    preds = Predictions(torch.tensor([box(3, 3, 3, 1, 1, 1)] * 2 + [box(0, 0, 0, 1, 1, 1)] * 2), torch.zeros(4, 1))
    res = SpotaAssigner(SpotaConfig(k=2, prefilter=2)).assign(anchor_set(locs), preds, gt)
    assert res.gt_index.tolist() == [0, 0, -1, -1]
    res = SpotaAssigner(SpotaConfig(k=2)).assign(anchor_set(locs), preds, gt)
    assert res.gt_index.tolist() == [-1, -1, 0, 0]


def test_conflict_rules():
    # Two GTs, one anchor between them that both pick (k = 1 each, it is the only candidate).
    gt = GroundTruth(torch.tensor([box(0, 0, 0, 1, 1, 1), box(1, 0, 0, 1, 1, 1)]), torch.tensor([0, 0]))
    anchors = anchor_set([[0.6, 0, 0]])
    preds = Predictions(torch.tensor([box(0.05, 0, 0, 1, 1, 1)]), torch.zeros(1, 1))  # fits GT 0 far better
    assert SpotaAssigner(SpotaConfig(k=1)).assign(anchors, preds, gt).gt_index.tolist() == [0]
    # By centre distance it is nearer GT 1.
    cfg = SpotaConfig(k=1, conflict="nearest_centre")
    assert SpotaAssigner(cfg).assign(anchors, preds, gt).gt_index.tolist() == [1]


def test_config_checks():
    with pytest.raises(ValueError, match="c_reg"):
        SpotaConfig(c_reg="giou")
    with pytest.raises(ValueError, match="label2level"):
        SpotaConfig(candidates="label2level")
    with pytest.raises(ValueError, match="mu"):
        SpotaConfig(mu=0)
