"""TR3D head (shared 1x1 regression / classification convs) and box decoding."""

from __future__ import annotations

import math

import torch
from torch import nn

from sr3d_core.sparse import SparseConv3d, SparseTensor


class TR3DHead(nn.Module):
    """Two 1x1x1 sparse convs with bias, shared by both levels; no centerness, no tower.

    Args:
        in_channels: neck channels (128).
        num_classes: C.
        reg_channels: R = 6 (axis-aligned) or 8 (rotated).
        prior_prob: classification prior for the bias init (0.01 → bias ≈ -4.595).
    """

    def __init__(self, in_channels: int, num_classes: int, reg_channels: int, prior_prob: float = 0.01) -> None:
        super().__init__()
        self.reg = SparseConv3d(in_channels, reg_channels, kernel_size=1, stride=1, bias=True)
        self.cls = SparseConv3d(in_channels, num_classes, kernel_size=1, stride=1, bias=True)
        self.prior_prob = prior_prob
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kernels ~ N(0, 0.01²); cls bias = -ln((1-p)/p); reg bias ~ U(±1/√in) (ME default)."""
        with torch.no_grad():
            self.reg.weight.normal_(0.0, 0.01)
            self.cls.weight.normal_(0.0, 0.01)
            self.cls.bias.fill_(-math.log((1 - self.prior_prob) / self.prior_prob))
            bound = 1.0 / math.sqrt(self.reg.weight.shape[1])
            self.reg.bias.uniform_(-bound, bound)

    def forward(self, x: SparseTensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(reg (N, R), cls_logits (N, C))`` for one level."""
        return self.reg(x).feats, self.cls(x).feats


def decode_boxes(anchors: torch.Tensor, reg: torch.Tensor, height_quirk: bool = True) -> torch.Tensor:
    """Decode raw regression outputs into ``(N, 7)`` boxes ``(x, y, z, dx, dy, dz, yaw)``.

    Axis-aligned (R = 6): centre = anchor + o[0:3] (metres, no stride scaling), size = exp(o[3:6]), yaw 0.
    Rotated (R = 8): o6 = sin(2θ)·ln q, o7 = cos(2θ)·ln q with q ≥ 1 the aspect ratio; S = e^o3 + e^o4 is split
    into w = S/(1+q), l = S·q/(1+q); the height is e^o5 + e^o4 with TR3D's quirk, else e^o5.

    Args:
        anchors: ``(N, 3)`` anchor locations in metres (min corner of the cell).
        reg: ``(N, 6)`` or ``(N, 8)`` raw outputs.
        height_quirk: reproduce TR3D's rotated height quirk.

    Returns:
        ``(N, 7)`` boxes, gravity centre.
    """
    centre = anchors + reg[:, 0:3]
    if reg.shape[1] == 6:
        size = reg[:, 3:6].exp()
        return torch.cat([centre, size, reg.new_zeros(len(reg), 1)], dim=1)
    if reg.shape[1] != 8:
        raise ValueError(f"regression output must have 6 or 8 channels, got {reg.shape[1]}")
    e3, e4, e5 = reg[:, 3].exp(), reg[:, 4].exp(), reg[:, 5].exp()
    log_q = torch.sqrt(reg[:, 6] ** 2 + reg[:, 7] ** 2)
    q = log_q.exp()
    theta = 0.5 * torch.atan2(reg[:, 6], reg[:, 7])
    s = e3 + e4
    w = s / (1 + q)
    l = s * q / (1 + q)  # noqa: E741
    h = e5 + e4 if height_quirk else e5
    return torch.stack([centre[:, 0], centre[:, 1], centre[:, 2], w, l, h, theta], dim=1)
