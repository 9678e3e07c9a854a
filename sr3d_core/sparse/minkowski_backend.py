"""MinkowskiEngine 0.5.4 backend (optional; build with scripts/build_minkowski.sh).

Our modules own the parameters; this backend lends them to MinkowskiEngine functions, so the state_dict is the
same as under the torch backend. ME keeps its rows in its own (hash) order, so a tensor's coordinates are read
back from ME and may be ordered differently from the torch backend's; compare backends by coordinate.
"""

from __future__ import annotations

import MinkowskiEngine as ME  # noqa: N817  (ImportError here means the backend is unavailable)
import torch

from .coords import check_coords, unpack
from .tensor import SparseTensor
from .torch_backend import bn_feats

NAME = "minkowski"

# ME modules built once per (kind, in, out, kernel, stride); they hold no state of their own that we use
# (their `kernel` parameter slot is pointed at our weight on every call).
_ME_MODULES: dict[tuple, torch.nn.Module] = {}


def _wrap(native, batch_size: int) -> SparseTensor:
    return SparseTensor(
        native.F,
        native.coordinate_manager,
        native.coordinate_map_key,
        native.tensor_stride[0],
        batch_size,
        NAME,
        native=native,
    )


def _native(feats: torch.Tensor, x: SparseTensor, key=None):
    return ME.SparseTensor(
        feats,
        coordinate_map_key=x.native.coordinate_map_key if key is None else key,
        coordinate_manager=x.native.coordinate_manager,
    )


def from_sorted_unique(
    coords: torch.Tensor | None, keys: torch.Tensor | None, feats: torch.Tensor, batch_size: int, stride: int = 1
) -> tuple[SparseTensor, torch.Tensor]:
    """Wrap unique coordinates (None: unpacked from ``keys``); returns the tensor and, for every input row, its
    row in the tensor."""
    coords = unpack(keys) if coords is None else coords
    native = ME.SparseTensor(
        feats,
        coordinates=coords.int(),
        tensor_stride=stride,
        quantization_mode=ME.SparseTensorQuantizationMode.RANDOM_SUBSAMPLE,
    )
    order = native.unique_index.long()  # tensor row j holds input row order[j]
    row_of = torch.empty_like(order)
    row_of[order] = torch.arange(order.numel(), device=order.device)
    return _wrap(native, batch_size), row_of


def from_coords(
    coords: torch.Tensor, feats: torch.Tensor, batch_size: int | None = None, stride: int = 1
) -> tuple[SparseTensor, torch.Tensor]:
    """Build a tensor from unique integer coordinates; returns (tensor, perm) with row j = input row perm[j]."""
    check_coords(coords)
    if feats.dim() != 2 or feats.shape[0] != coords.shape[0]:
        raise ValueError(f"feats must have shape ({coords.shape[0]}, C), got {tuple(feats.shape)}")
    if coords.numel() and bool((coords[:, 1:] % stride != 0).any()):
        raise ValueError(f"coordinates must be multiples of the stride {stride}")
    if torch.unique(coords, dim=0).shape[0] != coords.shape[0]:
        raise ValueError("coordinates must be unique")
    if batch_size is None:
        batch_size = int(coords[:, 0].max()) + 1 if coords.numel() else 0
    x, row_of = from_sorted_unique(coords.long(), None, feats, batch_size, stride)
    perm = torch.empty_like(row_of)
    perm[row_of] = torch.arange(row_of.numel(), device=row_of.device)
    return x, perm


def coords_of(x: SparseTensor) -> torch.Tensor:
    """(N, 4) int64 coordinates in ME's row order."""
    return x.native.C.long()


def replace(x: SparseTensor, feats: torch.Tensor) -> SparseTensor:
    """Same coordinate map, new features."""
    return _wrap(_native(feats, x), x.batch_size)


def _module(kind: str, in_ch: int, out_ch: int, kernel_size: int, stride: int):
    key = (kind, in_ch, out_ch, kernel_size, stride)
    if key not in _ME_MODULES:
        cls = ME.MinkowskiConvolution if kind == "conv" else ME.MinkowskiGenerativeConvolutionTranspose
        _ME_MODULES[key] = cls(in_ch, out_ch, kernel_size=kernel_size, stride=stride, bias=False, dimension=3)
    return _ME_MODULES[key]


def _run(module, weight: torch.Tensor, x: SparseTensor):
    # Point ME's parameter slot at our weight (same Parameter object, so autograd reaches it).
    module._parameters["kernel"] = weight if module.kernel.dim() == 3 else weight[0]
    return module(x.native)


def conv(
    x: SparseTensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel_size: int, stride: int
) -> SparseTensor:
    """MinkowskiConvolution with our (K, in, out) weight."""
    if stride not in (1, 2):
        raise ValueError(f"SparseConv3d supports stride 1 or 2, got {stride}")
    if kernel_size == 1 and stride == 1:
        out = _native(x.feats @ weight[0], x)  # ME's own `use_mm` path
    else:
        out = _run(_module("conv", weight.shape[1], weight.shape[2], kernel_size, stride), weight, x)
    if bias is not None:
        out = _native(out.F + bias, x, out.coordinate_map_key)
    return _wrap(out, x.batch_size)


def conv_transpose_generative(
    x: SparseTensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel_size: int, stride: int
) -> SparseTensor:
    """MinkowskiGenerativeConvolutionTranspose with our weight."""
    if stride != 2:
        raise ValueError(f"SparseGenerativeConvTranspose3d supports stride 2, got {stride}")
    out = _run(_module("gen", weight.shape[1], weight.shape[2], kernel_size, stride), weight, x)
    if bias is not None:
        out = _native(out.F + bias, x, out.coordinate_map_key)
    return _wrap(out, x.batch_size)


def max_pool(x: SparseTensor, kernel_size: int, stride: int) -> SparseTensor:
    """MinkowskiMaxPooling."""
    if kernel_size != 2 or stride != 2:
        raise ValueError(f"SparseMaxPool3d supports kernel_size=2, stride=2, got {kernel_size}, {stride}")
    key = ("pool", kernel_size, stride)
    if key not in _ME_MODULES:
        _ME_MODULES[key] = ME.MinkowskiMaxPooling(kernel_size=kernel_size, stride=stride, dimension=3)
    return _wrap(_ME_MODULES[key](x.native), x.batch_size)


def add(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    """ME's sparse addition (union of coordinate maps)."""
    return _wrap(a.native + b.native, a.batch_size)


def prune(x: SparseTensor, mask: torch.Tensor) -> SparseTensor:
    """MinkowskiPruning."""
    if "prune" not in _ME_MODULES:
        _ME_MODULES["prune"] = ME.MinkowskiPruning()
    return _wrap(_ME_MODULES["prune"](x.native, mask), x.batch_size)


def batch_norm(x: SparseTensor, bn: torch.nn.BatchNorm1d) -> SparseTensor:
    """BatchNorm on the features (what MinkowskiBatchNorm does)."""
    return replace(x, bn_feats(x.feats, bn))


def relu(x: SparseTensor) -> SparseTensor:
    """ReLU on the features."""
    return replace(x, torch.relu(x.feats))
