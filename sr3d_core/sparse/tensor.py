"""SparseTensor: integer coordinates + features + stride, sharing one coordinate manager per input."""

from __future__ import annotations

from typing import Any

import torch


class SparseTensor:
    """A batch of sparse voxel features.

    Attributes:
        coords: (N, 4) int64 (batch, x, y, z) in base voxels, multiples of ``stride``.
        feats: (N, C) float features, row-aligned with ``coords``.
        stride: tensor stride in base voxels.
        batch_size: number of scenes (empty scenes included).
        manager: coordinate manager shared by every tensor derived from one input.
        backend: name of the backend that produced the tensor ("torch" or "minkowski").
    """

    def __init__(
        self,
        feats: torch.Tensor,
        manager: Any,
        set_id: Any,
        stride: int,
        batch_size: int,
        backend: str = "torch",
        coords: torch.Tensor | None = None,
        native: Any = None,
    ) -> None:
        """Build a tensor from an already-registered coordinate set (use `voxelize` or `from_coords`).

        Args:
            feats: (N, C) features.
            manager: the coordinate manager.
            set_id: id of the coordinate set in the manager (backend specific).
            stride: tensor stride.
            batch_size: number of scenes.
            backend: backend name.
            coords: coordinates when known up front (otherwise fetched from the manager lazily).
            native: backend-native tensor (MinkowskiEngine SparseTensor) when the backend needs one.
        """
        self.feats = feats
        self.manager = manager
        self.set_id = set_id
        self.stride = int(stride)
        self.batch_size = int(batch_size)
        self.backend = backend
        self._coords = coords
        self.native = native

    @property
    def coords(self) -> torch.Tensor:
        """(N, 4) int64 coordinates (batch, x, y, z)."""
        if self._coords is None:
            from .backends import get_backend

            self._coords = get_backend(self.backend).coords_of(self)
        return self._coords

    @property
    def device(self) -> torch.device:
        """Device of the features."""
        return self.feats.device

    def __len__(self) -> int:
        return self.feats.shape[0]

    def replace(self, feats: torch.Tensor) -> "SparseTensor":
        """Same coordinates, stride and manager with new (N, C') features."""
        if feats.dim() != 2 or feats.shape[0] != self.feats.shape[0]:
            raise ValueError(f"replace: feats must have shape ({self.feats.shape[0]}, C), got {tuple(feats.shape)}")
        from .backends import get_backend

        return get_backend(self.backend).replace(self, feats)

    def __add__(self, other: "SparseTensor") -> "SparseTensor":
        """Sum over the union of the two coordinate sets (a missing site counts as zero)."""
        if not isinstance(other, SparseTensor):
            return NotImplemented
        if other.backend != self.backend:
            raise ValueError(f"cannot add tensors of backends {self.backend!r} and {other.backend!r}")
        if other.stride != self.stride:
            raise ValueError(f"sparse addition needs equal tensor strides, got {self.stride} and {other.stride}")
        if other.manager is not self.manager:
            raise ValueError("sparse addition needs tensors derived from the same input (one coordinate manager)")
        if other.feats.shape[1] != self.feats.shape[1]:
            raise ValueError(
                f"sparse addition needs equal channel counts, got {self.feats.shape[1]} and " f"{other.feats.shape[1]}"
            )
        from .backends import get_backend

        return get_backend(self.backend).add(self, other)

    def __repr__(self) -> str:
        return (
            f"SparseTensor(N={self.feats.shape[0]}, C={self.feats.shape[1]}, stride={self.stride}, "
            f"batch_size={self.batch_size}, backend={self.backend!r})"
        )
