"""The learning-rate schedule: warm-up, step decay, and a state that checkpoints store as plain types."""

import copy

import pytest
import torch

from sr3d_core.config import TrainConfig
from sr3d_core.engine.schedule import lr_factor, make_optimizer, make_scheduler


def test_warmup_then_step_decay():
    cfg = TrainConfig(warmup_iters=10, warmup_ratio=0.1, lr_decay_epochs=(2, 3), lr_decay=0.1)
    assert lr_factor(0, cfg, 100) == pytest.approx(0.1)
    assert lr_factor(5, cfg, 100) == pytest.approx(0.55)
    assert lr_factor(10, cfg, 100) == 1.0
    assert lr_factor(199, cfg, 100) == 1.0
    assert lr_factor(200, cfg, 100) == pytest.approx(0.1)
    assert lr_factor(300, cfg, 100) == pytest.approx(0.01)


def test_scheduler_state_holds_no_python_objects():
    cfg = TrainConfig(lr=0.5, warmup_iters=2, warmup_ratio=0.5, lr_decay_epochs=())
    opt = make_optimizer(torch.nn.Linear(2, 2), cfg)
    sched = make_scheduler(opt, cfg, iters_per_epoch=10)
    assert opt.param_groups[0]["lr"] == 0.25
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.375
    assert sched.state_dict()["lr_lambdas"] == [None]  # checkpoints open with weights_only=True


def test_optimizer_is_fused_and_matches_plain_adamw():
    """The fused optimizer makes the same updates as torch's reference AdamW (for-loop), to float rounding."""
    torch.manual_seed(0)
    fused_model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 2))
    plain_model = copy.deepcopy(fused_model)
    start = copy.deepcopy(fused_model)
    cfg = TrainConfig(lr=0.01, weight_decay=0.05)
    fused = make_optimizer(fused_model, cfg)
    plain = torch.optim.AdamW(plain_model.parameters(), lr=0.01, weight_decay=0.05, foreach=False)
    assert fused.param_groups[0]["fused"]
    for step in range(5):
        x = torch.randn(8, 6, generator=torch.Generator().manual_seed(step))
        for model, opt in ((fused_model, fused), (plain_model, plain)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    for a, b, a0 in zip(fused_model.parameters(), plain_model.parameters(), start.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert (a - a0).abs().mean() > 5e-3  # five steps of lr 0.01 moved the weights
