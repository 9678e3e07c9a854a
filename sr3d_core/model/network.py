"""The TR3D network: backbone → neck → head, and the decoding of its box outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch
from torch import nn

from sr3d_core.config import ModelConfig
from sr3d_core.model.backbone import MinkResNet, init_sparse_module
from sr3d_core.model.head import TR3DHead, decode_boxes
from sr3d_core.model.neck import TR3DNeck
from sr3d_core.sparse import SparseTensor

if TYPE_CHECKING:  # config imports no torch model
    from sr3d_core.config import Config


@dataclass
class RawOutputs:
    """Per-anchor raw outputs of a batch, both levels concatenated (level 0 first).

    Attributes:
        cls_logits: ``(N, C)`` classification logits.
        reg: ``(N, R)`` raw regression outputs.
        anchors: ``(N, 3)`` anchor locations in metres (integer coordinate × voxel size).
        levels: ``(N,)`` int64 level index (0: stride 16, 1: stride 32).
        batch: ``(N,)`` int64 scene index in the batch.
        batch_size: number of scenes.
        strides: ``(N,)`` anchor spacing of each anchor's level in metres (tensor stride × voxel size).
    """

    cls_logits: torch.Tensor
    reg: torch.Tensor
    anchors: torch.Tensor
    levels: torch.Tensor
    batch: torch.Tensor
    batch_size: int
    strides: torch.Tensor

    def scene_masks(self) -> list[torch.Tensor]:
        """Boolean mask of the anchors of each scene."""
        return [self.batch == b for b in range(self.batch_size)]

    def scene_indices(self) -> list[torch.Tensor]:
        """Rows of the anchors of each scene, ascending."""
        return [mask.nonzero().squeeze(1) for mask in self.scene_masks()]


class TR3DNetwork(nn.Module):
    """TR3D network.

    Args:
        cfg: model config.
        num_classes: number of classes.
        voxel_size: voxel edge in metres (anchor = integer coordinate × voxel size).
        in_channels: input feature channels (3 for RGB, 1 for the constant feature).
    """

    def __init__(self, cfg: ModelConfig, num_classes: int, voxel_size: float, in_channels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        self.voxel_size = voxel_size
        self.backbone = MinkResNet(in_channels, cfg.stem_channels, cfg.planes, cfg.depths, cfg.bn_momentum)
        self.neck = TR3DNeck(cfg.planes[1], cfg.neck_channels, cfg.bn_momentum)
        reg_channels = 6 if cfg.box_type == "aligned" else 8
        init_sparse_module(self.backbone)
        init_sparse_module(self.neck)
        self.head = TR3DHead(cfg.neck_channels, num_classes, reg_channels, cfg.cls_prior_prob)

    def forward(self, x: SparseTensor) -> RawOutputs:
        """Run the network on a sparse batch."""
        levels = self.neck(self.backbone(x))
        cls, reg, anchors, lv, batch, strides = [], [], [], [], [], []
        for i, t in enumerate(levels):
            r, c = self.head(t)
            reg.append(r)
            cls.append(c)
            anchors.append(t.coords[:, 1:4].to(r.dtype) * self.voxel_size)
            lv.append(torch.full((len(r),), i, dtype=torch.long, device=r.device))
            batch.append(t.coords[:, 0].long())
            strides.append(torch.full((len(r),), t.stride * self.voxel_size, dtype=r.dtype, device=r.device))
        return RawOutputs(
            torch.cat(cls),
            torch.cat(reg),
            torch.cat(anchors),
            torch.cat(lv),
            torch.cat(batch),
            x.batch_size,
            torch.cat(strides),
        )

    def decode(self, out: RawOutputs, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Decode boxes ``(N, 7)`` of all (or the masked) anchors."""
        anchors, reg = (out.anchors, out.reg) if mask is None else (out.anchors[mask], out.reg[mask])
        return decode_boxes(anchors, reg, self.cfg.tr3d_height_quirk)


def build_network(cfg: Config) -> TR3DNetwork:
    """Build the network (untrained) described by a full experiment config."""
    return TR3DNetwork(cfg.model, cfg.num_classes, cfg.contract.voxel_size, cfg.contract.in_channels)
