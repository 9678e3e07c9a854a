"""Sparse voxel tensors and ops with MinkowskiEngine semantics.

Backends (see `backends.BACKENDS`): "torch" (default; pure PyTorch, CPU and CUDA) and "minkowski"
(MinkowskiEngine 0.5.4, optional; build it with scripts/build_minkowski.sh). Select with `set_backend(name)` or
`voxelize(..., backend=name)`; every op follows the backend of its input tensor.
"""

from .backends import BACKENDS, available_backends, default_backend, get_backend, set_backend
from .coords import kernel_offsets
from .modules import (
    FoldedConv,
    SparseBatchNorm,
    SparseConv3d,
    SparseGenerativeConvTranspose3d,
    SparseMaxPool3d,
    SparseReLU,
    fold_batch_norms,
    prune,
)
from .tensor import SparseTensor
from .voxelize import voxelize


def from_coords(coords, feats, batch_size=None, stride=1, backend=None):
    """Build a SparseTensor from unique integer coordinates (N, 4) in any order.

    Returns:
        (tensor, perm): tensor row j holds input row ``perm[j]``.
    """
    return get_backend(backend).from_coords(coords, feats, batch_size, stride)


__all__ = [
    "SparseTensor",
    "voxelize",
    "from_coords",
    "SparseConv3d",
    "SparseGenerativeConvTranspose3d",
    "SparseMaxPool3d",
    "SparseBatchNorm",
    "SparseReLU",
    "FoldedConv",
    "fold_batch_norms",
    "prune",
    "set_backend",
    "get_backend",
    "default_backend",
    "available_backends",
    "BACKENDS",
    "kernel_offsets",
]
