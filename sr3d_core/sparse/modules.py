"""nn.Modules over SparseTensor; each call dispatches to the backend that produced its input.

Parameters are backend-independent, so one state_dict loads under either backend: a conv weight is
(K, in_ch, out_ch) with K = kernel_size**3 in MinkowskiEngine's kernel-offset order (x fastest, then y, then z;
see `coords.kernel_offsets`), a bias is (out_ch,), BatchNorm keeps ME's ``bn.`` prefix.
"""

from __future__ import annotations

import copy
import math
from typing import Optional

import torch
from torch import nn

from .backends import get_backend
from .tensor import SparseTensor


def _check_input(x: SparseTensor, in_ch: int, name: str) -> None:
    if not isinstance(x, SparseTensor):
        raise TypeError(f"{name} expects a SparseTensor, got {type(x).__name__}")
    if x.feats.shape[1] != in_ch:
        raise ValueError(f"{name}: expected {in_ch} input channels, got {x.feats.shape[1]}")


class _ConvBase(nn.Module):
    """Holds the (K, in, out) weight and optional bias; accepts ME's ``kernel`` key when loading."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, bias: bool) -> None:
        super().__init__()
        if kernel_size < 1 or stride < 1:
            raise ValueError(f"kernel_size and stride must be positive, got {kernel_size}, {stride}")
        self.in_ch, self.out_ch = in_ch, out_ch
        self.kernel_size, self.stride = kernel_size, stride
        self.weight = nn.Parameter(torch.empty(kernel_size**3, in_ch, out_ch))
        self.bias = nn.Parameter(torch.empty(out_ch)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(+-1/sqrt(fan_in)) with fan_in = in_ch * K (ME's default scale)."""
        bound = 1.0 / math.sqrt(self.in_ch * self.weight.shape[0])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def kernel(self) -> nn.Parameter:
        """MinkowskiEngine's name for the weight."""
        return self.weight

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints of MinkowskiEngine models name the weight `kernel` and store the bias as (1, out).
        if prefix + "kernel" in state_dict and prefix + "weight" not in state_dict:
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "kernel")
        w = state_dict.get(prefix + "weight")
        if w is not None and w.dim() == 2:  # ME stores a stride-1 pointwise kernel as (in, out)
            state_dict[prefix + "weight"] = w.unsqueeze(0)
        if self.bias is not None and prefix + "bias" in state_dict and state_dict[prefix + "bias"].dim() == 2:
            state_dict[prefix + "bias"] = state_dict[prefix + "bias"].reshape(-1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"{self.in_ch}, {self.out_ch}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"bias={self.bias is not None}"
        )


class SparseConv3d(_ConvBase):
    """Sparse 3-D convolution (ME semantics).

    stride 1: submanifold (output coordinates = input coordinates). stride 2: output coordinates
    unique(floor(c / 2s) * 2s) for input stride s, output stride 2s. kernel_size 1: pointwise.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, bias: bool = False) -> None:
        """Args: in_ch, out_ch: channels; kernel_size: cube edge; stride: 1 or 2; bias: add a learned bias."""
        super().__init__(in_ch, out_ch, kernel_size, stride, bias)

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Apply the convolution."""
        _check_input(x, self.in_ch, "SparseConv3d")
        return get_backend(x.backend).conv(x, self.weight, self.bias, self.kernel_size, self.stride)


class SparseGenerativeConvTranspose3d(_ConvBase):
    """Generative transposed conv (MinkowskiGenerativeConvolutionTranspose): input stride S -> output S / 2.

    Every child c + offset_k(S/2) of every input coordinate c is created; output row f receives
    in[c] @ W[k] for each (c, k) with f = c + offset_k.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 2, bias: bool = False) -> None:
        """Args: in_ch, out_ch: channels; kernel_size: cube edge; stride: must be 2; bias: learned bias."""
        super().__init__(in_ch, out_ch, kernel_size, stride, bias)

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Apply the transposed convolution."""
        _check_input(x, self.in_ch, "SparseGenerativeConvTranspose3d")
        return get_backend(x.backend).conv_transpose_generative(
            x, self.weight, self.bias, self.kernel_size, self.stride
        )


class SparseMaxPool3d(nn.Module):
    """Max pool over the existing children of each output voxel (kernel_size == stride == 2)."""

    def __init__(self, kernel_size: int = 2, stride: int = 2) -> None:
        """Args: kernel_size, stride: both 2."""
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Apply the pooling."""
        return get_backend(x.backend).max_pool(x, self.kernel_size, self.stride)


class SparseBatchNorm(nn.Module):
    """BatchNorm over the features of all voxels in the batch (state_dict keys ``bn.*`` as in ME)."""

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        """Args: num_features: channels; momentum, eps: as torch.nn.BatchNorm1d."""
        super().__init__()
        self.bn = nn.BatchNorm1d(num_features, eps=eps, momentum=momentum)

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Normalize the features."""
        _check_input(x, self.bn.num_features, "SparseBatchNorm")
        return get_backend(x.backend).batch_norm(x, self.bn)


class SparseReLU(nn.Module):
    """ReLU on the features."""

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Apply ReLU."""
        return get_backend(x.backend).relu(x)


def prune(x: SparseTensor, mask: torch.Tensor) -> SparseTensor:
    """Keep the voxels where ``mask`` (bool, (N,)) is True.

    Raises:
        ValueError: mask is not a bool tensor of length N.
    """
    if mask.dtype != torch.bool or mask.shape != (len(x),):
        raise ValueError(
            f"prune: mask must be a bool tensor of shape ({len(x)},), got {mask.dtype} " f"{tuple(mask.shape)}"
        )
    return get_backend(x.backend).prune(x, mask.to(x.device))


class FoldedConv(nn.Module):
    """A sparse conv with the eval-mode batch norm after it folded into its weight and bias, and the ReLU after
    that (if any) applied in place: one module where inference ran three (built by `fold_batch_norms`).

    Folding: BN(y) = (y - mean) * s + beta with s = gamma / sqrt(var + eps) is a per-output-channel affine map,
    so ``W' = W * s`` (over the output channels) and ``b' = (b - mean) * s + beta`` give the same outputs up to
    float rounding.
    """

    def __init__(self, conv: _ConvBase, bn: SparseBatchNorm, relu: bool) -> None:
        """Args: conv: the conv (either kind); bn: its batch norm (running statistics); relu: a ReLU follows."""
        super().__init__()
        b = bn.bn
        if b.running_mean is None or b.running_var is None:
            raise ValueError("fold_batch_norms: a batch norm without running statistics cannot be folded")
        with torch.no_grad():
            scale = torch.rsqrt(b.running_var + b.eps)
            if b.weight is not None:
                scale = scale * b.weight
            shift = -b.running_mean * scale
            if b.bias is not None:
                shift = shift + b.bias
            if conv.bias is not None:
                shift = shift + conv.bias * scale
            folded = copy.deepcopy(conv)  # not a new module: its initialisation would draw from torch's RNG
            folded.weight.mul_(scale)
            folded.bias = nn.Parameter(shift.to(conv.weight.dtype))
        self.conv = folded.requires_grad_(False)
        self.relu = relu

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Conv (+ ReLU)."""
        y = self.conv(x)
        if self.relu:
            y.feats.relu_()  # the conv's output is a fresh tensor nothing else holds
        return y

    def extra_repr(self) -> str:
        return f"relu={self.relu}"


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with every ``Sequential(conv, SparseBatchNorm[, SparseReLU])`` (``model``
    itself or any module inside it) replaced by a `FoldedConv`, in eval mode, without gradients. ``model`` itself
    is not changed.

    The copy computes what ``model.eval()`` computes, to float rounding, with a third of the modules in those
    chains: batch norm and ReLU are per-channel maps that were two more passes over every layer's features.
    """
    folded = copy.deepcopy(model).eval().requires_grad_(False)
    whole = _chain(folded)
    if whole is not None:
        return FoldedConv(*whole)
    for module in list(folded.modules()):
        for name, child in list(module.named_children()):
            parts = _chain(child)
            if parts is not None:
                setattr(module, name, FoldedConv(*parts))
    return folded


def _chain(module: nn.Module) -> Optional[tuple[_ConvBase, SparseBatchNorm, bool]]:
    """``(conv, batch norm, ReLU follows)`` when ``module`` is a conv + batch norm (+ ReLU) Sequential."""
    parts = list(module.children()) if isinstance(module, nn.Sequential) else []
    if (
        len(parts) in (2, 3)
        and isinstance(parts[0], _ConvBase)
        and isinstance(parts[1], SparseBatchNorm)
        and (len(parts) == 2 or isinstance(parts[2], SparseReLU))
    ):
        return parts[0], parts[1], len(parts) == 3
    return None
