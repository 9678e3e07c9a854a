"""MinkResNet34 with channels capped at 128, on the project's sparse engine."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from sr3d_core.sparse import SparseBatchNorm, SparseConv3d, SparseMaxPool3d, SparseReLU, SparseTensor


def conv_bn_relu(
    cin: int, cout: int, kernel_size: int, stride: int, momentum: float, relu: bool = True
) -> nn.Sequential:
    """Sparse conv (no bias) + BN (+ ReLU)."""
    layers: list[nn.Module] = [
        SparseConv3d(cin, cout, kernel_size=kernel_size, stride=stride, bias=False),
        SparseBatchNorm(cout, momentum=momentum),
    ]
    if relu:
        layers.append(SparseReLU())
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet BasicBlock: conv3(s) BN ReLU conv3 BN + shortcut, ReLU.

    Args:
        cin: input channels.
        cout: output channels.
        stride: 1 or 2; a 1x1 conv + BN shortcut is used when the stride or channels change.
        momentum: BN momentum.
    """

    def __init__(self, cin: int, cout: int, stride: int, momentum: float) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, stride, momentum)
        self.conv2 = conv_bn_relu(cout, cout, 3, 1, momentum, relu=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = conv_bn_relu(cin, cout, 1, stride, momentum, relu=False)
        self.relu = SparseReLU()

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Apply the block."""
        out = self.conv2(self.conv1(x))
        identity = x if self.shortcut is None else self.shortcut(x)
        # Union addition: both branches have the same coordinate set, and `+` aligns rows whatever their order.
        return self.relu(out + identity)


class MinkResNet(nn.Module):
    """Sparse ResNet returning the 4 stage outputs (tensor strides 8, 16, 32, 64 in voxels).

    Args:
        in_channels: input feature channels.
        stem_channels: stem conv output channels (64).
        planes: per-stage output channels (TR3D: 64, 128, 128, 128).
        depths: per-stage block counts (ResNet34: 3, 4, 6, 3).
        momentum: BN momentum.
    """

    def __init__(
        self,
        in_channels: int = 3,
        stem_channels: int = 64,
        planes: Sequence[int] = (64, 128, 128, 128),
        depths: Sequence[int] = (3, 4, 6, 3),
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.stem = conv_bn_relu(in_channels, stem_channels, 3, 2, momentum)
        self.pool = SparseMaxPool3d(2, 2)
        stages = []
        cin = stem_channels
        for p, d in zip(planes, depths):
            blocks = [BasicBlock(cin, p, 2, momentum)] + [BasicBlock(p, p, 1, momentum) for _ in range(d - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = p
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(planes)

    def forward(self, x: SparseTensor) -> list[SparseTensor]:
        """Return the outputs of the 4 stages."""
        x = self.pool(self.stem(x))
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


def init_sparse_module(module: nn.Module) -> None:
    """Kaiming-normal (fan_out, relu) for sparse conv kernels, BN weight 1 / bias 0.

    The kernel is stored as (K, in, out), so fan_out = K * out, as ME computes it.
    """
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif hasattr(m, "weight") and isinstance(getattr(m, "weight"), nn.Parameter) and m.weight.dim() == 3:
            k, _, cout = m.weight.shape
            std = (2.0 / (k * cout)) ** 0.5
            with torch.no_grad():
                m.weight.normal_(0.0, std)
