"""The training objective on real network outputs."""

import dataclasses

import numpy as np
import pytest
import torch

from sr3d_core.assign import SpotaAssigner
from sr3d_core.config import load_config
from sr3d_core.engine.criterion import Criterion
from sr3d_core.model.network import build_network
from sr3d_core.preprocess import prepare_points, to_sparse_batch


def random_batch(cfg, scenes: int, seed: int):
    """``scenes`` uniform 3 m clouds with colour, voxelized as one batch."""
    rng = np.random.default_rng(seed)
    clouds = [
        np.concatenate([rng.uniform(0, 3, (3000, 3)), rng.uniform(0, 1, (3000, 3))], 1).astype(np.float32)
        for _ in range(scenes)
    ]
    return to_sparse_batch([prepare_points(c, cfg.contract) for c in clouds], cfg.contract, seed=0)[0]


def test_the_criterion_decodes_as_the_network_does():
    cfg = load_config("toy_tiny")
    torch.manual_seed(0)
    model = build_network(cfg)
    out = model(random_batch(cfg, 2, 0))
    assert torch.equal(Criterion(cfg).decode(out), model.decode(out).float())


def test_losses_finite_with_empty_scene_and_grads_flow():
    cfg = load_config("toy_tiny")
    torch.manual_seed(0)
    model = build_network(cfg)
    x = random_batch(cfg, 2, 0)
    out = model(x)
    gt = [torch.tensor([[1.0, 1.0, 0.5, 0.4, 0.4, 0.4, 0.0], [2.0, 2.0, 0.5, 1.2, 1.2, 1.0, 0.0]]), torch.zeros(0, 7)]
    labels = [torch.tensor([0, 1]), torch.zeros(0, dtype=torch.long)]
    losses = Criterion(cfg)(out, gt, labels)
    assert 0 < losses["num_pos"].item() <= 2 * 6
    assert 0 <= losses["mean_iou"].item() <= 1 and 0 <= losses["aic"].item() <= 1
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    # No GT anywhere: focal over negatives only, box loss 0, still differentiable.
    out = model(x)
    losses = Criterion(cfg)(out, [torch.zeros(0, 7)] * 2, [torch.zeros(0, dtype=torch.long)] * 2)
    assert losses["num_pos"].item() == 0 and losses["loss_box"].item() == 0
    losses["loss"].backward()


def test_rotated_config_losses():
    cfg = load_config("toy_tiny", ["model.box_type=rotated"])
    torch.manual_seed(0)
    model = build_network(cfg)
    rng = np.random.default_rng(1)
    pts = np.concatenate([rng.uniform(0, 3, (3000, 3)), rng.uniform(0, 1, (3000, 3))], 1).astype(np.float32)
    x, _ = to_sparse_batch([prepare_points(pts, cfg.contract)], cfg.contract, seed=0)
    out = model(x)
    assert out.reg.shape[1] == 8
    gt = [torch.tensor([[1.0, 1.0, 0.5, 0.4, 0.8, 0.4, 0.7], [2.0, 2.0, 0.5, 1.2, 1.4, 1.0, -0.3]])]
    losses = Criterion(cfg)(out, gt, [torch.tensor([0, 1])])
    assert losses["num_pos"].item() > 0 and torch.isfinite(losses["loss"])
    losses["loss"].backward()


@pytest.mark.parametrize(
    "overrides",
    [
        ["assigner={name: spota}"],
        ["assigner={name: spota, cls_cost_weight: 1.0, inside_box: true}"],
        ["assigner={name: simota}"],
        ["assigner={name: alignota}"],
        ["loss.cls={name: ras}"],
        ["loss.cls={name: qfl}"],
        ["loss.cls={name: vfl}"],
        ["model.box_type=rotated", "assigner={name: spota, prefilter: 8}", "loss.cls={name: ras, rank_term: position}"],
    ],
)
def test_every_plugin_trains_a_real_batch(overrides):
    cfg = load_config("toy_tiny", overrides)
    torch.manual_seed(0)
    model = build_network(cfg)
    x = random_batch(cfg, 1, 0)
    out = model(x)
    gt = [torch.tensor([[1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 0.2], [2.0, 2.0, 0.5, 1.2, 1.2, 1.0, 0.0]])]
    losses = Criterion(cfg)(out, gt, [torch.tensor([0, 1])])
    assert losses["num_pos"].item() > 0 and torch.isfinite(losses["loss"])
    if cfg.loss.cls.name == "ras":
        assert {"ras_rdl", "ras_r_cls"} <= set(losses)  # the extra terms reach the training log
    losses["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


class _IouDroppingSpota(SpotaAssigner):
    """SPOTA that does not report its IoUs, so the criterion computes the positives' IoU itself."""

    def assign_batch(self, scenes):
        return [dataclasses.replace(r, iou=None) for r in super().assign_batch(scenes)]


@pytest.mark.parametrize("box_type", ["aligned", "rotated"])
def test_assigner_ious_equal_the_criterions_own(box_type):
    # The criterion takes the positives' IoU from a prediction-aware assigner instead of recomputing it: every
    # loss term (RAS uses the IoU) and diagnostic must be what the recomputation gives. Scene 2 has no GT.
    cfg = load_config("toy_tiny", [f"model.box_type={box_type}", "assigner={name: spota}", "loss.cls={name: ras}"])
    torch.manual_seed(0)
    model = build_network(cfg)
    x = random_batch(cfg, 3, 3)
    out = model(x)
    gt = [
        torch.tensor([[1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 0.2], [2.0, 2.0, 0.5, 1.2, 1.2, 1.0, 0.0]]),
        torch.zeros(0, 7),
        torch.tensor([[1.5, 0.5, 0.4, 0.8, 1.4, 0.8, -0.6]]),
    ]
    labels = [torch.tensor([0, 1]), torch.zeros(0, dtype=torch.long), torch.tensor([1])]
    crit = Criterion(cfg)
    reused = crit(out, gt, labels)
    crit.assigner = _IouDroppingSpota(crit.assigner.cfg, rotated=crit.rotated)
    recomputed = crit(out, gt, labels)
    assert reused["num_pos"].item() > 0 and reused.keys() == recomputed.keys()
    for key in reused:
        assert torch.allclose(reused[key], recomputed[key], rtol=1e-6, atol=1e-7), key


@pytest.mark.parametrize("cls_loss", ["focal", "ras"])
def test_rotated_iou_computed_once_gives_the_same_losses_and_gradients(monkeypatch, cls_loss):
    """With a rotated box type, the positives' IoU is computed once for the classification targets and the DIoU
    loss: every term and every gradient equal computing it twice (the diagnostics' IoU, then the loss's own)."""
    import sr3d_core.engine.criterion as criterion_module
    from sr3d_core.assign import costs
    from sr3d_core.geometry import iou as geometry_iou
    from sr3d_core.losses import iou as loss_iou

    cfg = load_config("toy_tiny", ["model.box_type=rotated", f"loss.cls={{name: {cls_loss}}}"])
    torch.manual_seed(0)
    model = build_network(cfg)
    x = random_batch(cfg, 2, 3)
    gt = [
        torch.tensor([[1.0, 1.0, 0.5, 0.4, 0.8, 0.4, 0.7], [2.0, 2.0, 0.5, 1.2, 1.4, 1.0, -0.3]]),
        torch.tensor([[1.5, 1.2, 0.6, 0.9, 0.5, 0.7, 1.2]]),
    ]
    labels = [torch.tensor([0, 1]), torch.tensor([1])]
    calls = []
    real = geometry_iou.rotated_iou_paired_diff
    counted = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
    for module in (costs, loss_iou):  # the diagnostics' IoU and the loss's own
        monkeypatch.setattr(module, "rotated_iou_paired_diff", counted)
    real_nograd = costs.rotated_iou_paired_nograd
    monkeypatch.setattr(costs, "rotated_iou_paired_nograd", lambda *a: calls.append(1) or real_nograd(*a))
    results = []
    for once in (True, False):
        # The reference path: no shared IoU, so the criterion's diagnostics and the loss each compute their own.
        monkeypatch.setattr(criterion_module, "rotated_iou_paired_diff", counted if once else lambda *a, **k: None)
        model.zero_grad()
        out = model(x)
        calls.clear()
        losses = Criterion(cfg)(out, gt, labels)
        losses["loss"].backward()
        results.append((losses, [p.grad.clone() for p in model.parameters()], len(calls)))
    (new, new_grads, new_calls), (ref, ref_grads, ref_calls) = results
    assert new["num_pos"].item() > 0 and (new_calls, ref_calls) == (1, 2)
    for key in ref:
        torch.testing.assert_close(new[key], ref[key], rtol=1e-6, atol=1e-7, msg=key)
    for a, b in zip(new_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
