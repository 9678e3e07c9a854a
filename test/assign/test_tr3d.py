"""TR3D assigner against hand-worked examples and a brute-force loop reference."""

import pytest
import torch

from sr3d_core.assign import AnchorSet, GroundTruth, Predictions, TR3DAssigner, TR3DAssignerConfig


def brute_force(anchors, levels, gt, labels, k, table, check):
    """Literal per-pair loops of the TR3D assigner."""
    n, m = len(anchors), len(gt)
    d = [[float(((anchors[j] - gt[i, :3]) ** 2).sum()) for i in range(m)] for j in range(n)]
    masked = [[d[j][i] if (not table or levels[j] == table[labels[i]]) else 1e8 for i in range(m)] for j in range(n)]
    cand = [[False] * m for _ in range(n)]
    for i in range(m):
        col = sorted(masked[j][i] for j in range(n))
        t = col[min(k + 1, n) - 1]
        for j in range(n):
            cand[j][i] = masked[j][i] < t
    out = []
    for j in range(n):
        best, bi = 1e8, -1
        for i in range(m):
            if cand[j][i] and masked[j][i] < best:
                best, bi = masked[j][i], i
        if check and bi >= 0:
            nearest = min(range(m), key=lambda i: (d[j][i], i))
            if nearest != bi:
                bi = -1
        out.append(bi)
    return torch.tensor(out)


def run(assigner, anchors, levels, gt, labels):
    n = len(anchors)
    preds = Predictions(torch.zeros(n, 7), torch.zeros(n, 2))
    return assigner.assign(AnchorSet(anchors, levels, torch.ones(n)), preds, GroundTruth(gt, labels)).gt_index


def box(x, y, z):
    return [x, y, z, 1.0, 1.0, 1.0, 0.0]


def test_hand_worked_top_k_and_levels():
    # 5 anchors on a line at level 0, 2 at level 1;
    # GT 0 (class 0 → level 0) at x=0, GT 1 (class 1 → level 1) at x=10.
    anchors = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0], [9, 0, 0], [11.5, 0, 0]])
    levels = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    gt = torch.tensor([box(0, 0, 0), box(10, 0, 0)])
    labels = torch.tensor([0, 1])
    a = TR3DAssigner(TR3DAssignerConfig(top_k=2, label2level=(0, 1), global_nearest_check=False))
    # GT0: the 2 nearest level-0 anchors (x=0, x=1). GT1: both level-1 anchors qualify (level has ≤ k anchors).
    assert run(a, anchors, levels, gt, labels).tolist() == [0, 0, -1, -1, -1, 1, 1]


def test_hand_worked_global_nearest_check():
    # GT 0 (level 1) at x=0 and GT 1 (level 0) at x=3. The level-1 anchor at x=2 is GT0's candidate,
    # but its globally nearest centre is GT 1 → background in the original, positive in the port.
    anchors = torch.tensor([[2.0, 0, 0], [3.0, 0, 0]])
    levels = torch.tensor([1, 0])
    gt = torch.tensor([box(0, 0, 0), box(3, 0, 0)])
    labels = torch.tensor([1, 0])
    port = TR3DAssigner(TR3DAssignerConfig(top_k=6, label2level=(0, 1), global_nearest_check=False))
    orig = TR3DAssigner(TR3DAssignerConfig(top_k=6, label2level=(0, 1), global_nearest_check=True))
    assert run(port, anchors, levels, gt, labels).tolist() == [0, 1]
    assert run(orig, anchors, levels, gt, labels).tolist() == [-1, 1]


def test_ties_are_excluded_by_strict_threshold():
    # Four anchors at equal distance from the GT and k = 2: the 3rd smallest equals the others → nobody qualifies.
    anchors = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
    a = TR3DAssigner(TR3DAssignerConfig(top_k=2, label2level=(), global_nearest_check=False))
    out = run(a, anchors, torch.zeros(4, dtype=torch.long), torch.tensor([box(0, 0, 0)]), torch.tensor([0]))
    assert out.tolist() == [-1, -1, -1, -1]


def test_no_gt_and_no_anchor():
    a = TR3DAssigner(TR3DAssignerConfig(top_k=6, label2level=(0,), global_nearest_check=True))
    assert (
        run(
            a, torch.rand(5, 3), torch.zeros(5, dtype=torch.long), torch.zeros(0, 7), torch.zeros(0, dtype=torch.long)
        ).tolist()
        == [-1] * 5
    )
    assert (
        run(
            a, torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), torch.tensor([box(0, 0, 0)]), torch.tensor([0])
        ).tolist()
        == []
    )


@pytest.mark.parametrize("check", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force(seed, check):
    g = torch.Generator().manual_seed(seed)
    n, m, c = 60, 7, 4
    # Integer grid anchors make exact distance ties common, which exercises the strict threshold.
    anchors = torch.randint(0, 6, (n, 3), generator=g).double() * 0.5
    levels = torch.randint(0, 2, (n,), generator=g)
    gt = torch.cat([torch.randint(0, 6, (m, 3), generator=g).double() * 0.5, torch.ones(m, 4).double()], 1)
    labels = torch.randint(0, c, (m,), generator=g)
    table = (0, 1, 1, 0)
    for k in (1, 3, 6):
        a = TR3DAssigner(TR3DAssignerConfig(top_k=k, label2level=tuple(table), global_nearest_check=check))
        got = run(a, anchors, levels, gt, labels)
        ref = brute_force(anchors, levels.tolist(), gt, labels.tolist(), k, table, check)
        assert got.tolist() == ref.tolist()
