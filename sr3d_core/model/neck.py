"""TR3D neck: generative transposed convs, top-down over layer4→layer3→layer2."""

from __future__ import annotations

from torch import nn

from sr3d_core.model.backbone import conv_bn_relu
from sr3d_core.sparse import SparseBatchNorm, SparseGenerativeConvTranspose3d, SparseReLU, SparseTensor


class TR3DNeck(nn.Module):
    """Two-level neck; outputs level 0 (tensor stride 16 voxels) and level 1 (stride 32).

    The backbone stage strides are 8/16/32/64 voxels (stem s2, pool s2, then each stage s2), so layer2/layer3/layer4
    are at 16/32/64 and the outputs sit at 16 and 32 voxels (16 cm / 32 cm at v = 1 cm). No pruning.

    Args:
        in_channels: channels of layer2, layer3, layer4 (all equal in TR3D: 128).
        out_channels: channels of both outputs (128).
        momentum: BN momentum.
    """

    def __init__(self, in_channels: int = 128, out_channels: int = 128, momentum: float = 0.1) -> None:
        super().__init__()
        c = in_channels
        # Index i upsamples into level i (i = 1: 64→32, i = 0: 32→16).
        self.up = nn.ModuleList(
            nn.Sequential(
                SparseGenerativeConvTranspose3d(c, c, kernel_size=3, stride=2, bias=False),
                SparseBatchNorm(c, momentum=momentum),
                SparseReLU(),
            )
            for _ in range(2)
        )
        self.lateral = nn.ModuleList(conv_bn_relu(c, c, 3, 1, momentum) for _ in range(2))
        self.out = nn.ModuleList(conv_bn_relu(c, out_channels, 3, 1, momentum) for _ in range(2))
        self.out_channels = out_channels

    def forward(self, feats: list[SparseTensor]) -> list[SparseTensor]:
        """Map the 4 backbone outputs to ``[level0 (stride 16), level1 (stride 32)]``."""
        x = feats[3]
        outs: list[SparseTensor] = [None, None]  # type: ignore[list-item]
        for i in (1, 0):
            x = self.up[i](x)
            x = feats[i + 1] + x  # union of coordinates
            x = self.lateral[i](x)
            outs[i] = self.out[i](x)
        return outs
