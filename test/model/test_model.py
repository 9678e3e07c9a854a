"""Network structure, parameter counts, initialization and box decoding."""

import math

import numpy as np
import pytest
import torch

from sr3d_core.config import load_config
from sr3d_core.model.head import decode_boxes
from sr3d_core.model.network import build_network
from sr3d_core.preprocess import prepare_points, to_sparse_batch


def count_parameters(module: torch.nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_scannet_parameter_count_matches_spec():
    m = build_network(load_config("tr3d_scannet"))
    # TR3D's counts: backbone 12,002,624 + neck 2,655,744 + head 3,096.
    assert count_parameters(m.backbone) == 12_002_624
    assert count_parameters(m.neck) == 2_655_744
    assert count_parameters(m.head) == 3_096
    assert abs(count_parameters(m) / 1e6 - 14.66) < 0.01
    assert count_parameters(build_network(load_config("tr3d_sunrgbd")).head) == 2_322


def test_head_init():
    m = build_network(load_config("tr3d_scannet"))
    assert torch.allclose(m.head.cls.bias, torch.full_like(m.head.cls.bias, -math.log(99)))
    assert abs(float(m.head.cls.weight.detach().std()) - 0.01) < 0.002
    assert float(m.head.reg.bias.detach().abs().max()) <= 1 / math.sqrt(128)
    # Kaiming fan_out for a (27, 128, 128) kernel: std = sqrt(2 / (27 * 128)).
    w = m.neck.out[0][0].weight
    assert abs(float(w.detach().std()) - math.sqrt(2 / (27 * 128))) < 0.002


def test_forward_levels_strides_and_anchors():
    cfg = load_config("toy_tiny")
    torch.manual_seed(0)
    m = build_network(cfg).eval()
    rng = np.random.default_rng(0)
    clouds = [
        np.concatenate([rng.uniform(0, 3, (3000, 3)), rng.uniform(0, 1, (3000, 3))], 1).astype(np.float32)
        for _ in range(2)
    ]
    x, _ = to_sparse_batch([prepare_points(c, cfg.contract) for c in clouds], cfg.contract, seed=0)
    with torch.no_grad():
        levels = m.neck(m.backbone(x))
        out = m(x)
    assert [t.stride for t in levels] == [16, 32]
    n0, n1 = len(levels[0].feats), len(levels[1].feats)
    assert out.cls_logits.shape == (n0 + n1, 2) and out.reg.shape == (n0 + n1, 6)
    assert (out.levels[:n0] == 0).all() and (out.levels[n0:] == 1).all()
    assert set(out.batch.tolist()) == {0, 1}
    # Anchors are integer coordinates × voxel size: multiples of stride × voxel size (min corner).
    cell = out.anchors[:n0] / (16 * cfg.contract.voxel_size)
    assert torch.allclose(cell, cell.round(), atol=1e-4)
    assert torch.allclose(out.anchors[:n0], levels[0].coords[:, 1:].float() * cfg.contract.voxel_size)


def test_decode_aligned():
    anchors = torch.tensor([[1.0, 2.0, 3.0]])
    reg = torch.tensor([[0.1, -0.2, 0.3, 0.0, math.log(2.0), math.log(0.5)]])
    box = decode_boxes(anchors, reg)[0]
    assert torch.allclose(box, torch.tensor([1.1, 1.8, 3.3, 1.0, 2.0, 0.5, 0.0]))


@pytest.mark.parametrize("quirk", [True, False])
def test_decode_rotated(quirk):
    theta, q = 0.3, 3.0
    e3, e4, e5 = 0.5, 1.5, 0.7
    reg = torch.tensor(
        [
            [
                0,
                0,
                0,
                math.log(e3),
                math.log(e4),
                math.log(e5),
                math.sin(2 * theta) * math.log(q),
                math.cos(2 * theta) * math.log(q),
            ]
        ]
    )
    box = decode_boxes(torch.zeros(1, 3), reg, height_quirk=quirk)[0]
    s = e3 + e4
    assert box[3].item() == pytest.approx(s / (1 + q), rel=1e-5)
    assert box[4].item() == pytest.approx(s * q / (1 + q), rel=1e-5)
    assert box[5].item() == pytest.approx(e5 + e4 if quirk else e5, rel=1e-5)
    assert box[6].item() == pytest.approx(theta, rel=1e-5)
