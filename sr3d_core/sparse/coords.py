"""Integer coordinate sets, int64 key packing and the coordinate manager (pure PyTorch).

Every coordinate set is stored sorted by its packed key, so neighbour look-ups are a `searchsorted` into the
set's own key array and no extra sort is ever needed. A key packs (batch, x, y, z) as
``((b * R + x + OFF) * R + y + OFF) * R + z + OFF`` with ``R = 2**18``: sorting keys sorts by batch, then x, y, z.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from . import native

AXIS_BITS = 18
RADIX = 1 << AXIS_BITS
OFFSET = 1 << (AXIS_BITS - 1)
# Neighbour keys are formed by adding offsets to packed keys; this margin keeps every neighbour of a valid
# coordinate inside its own field, so no offset can carry into the next axis.
MARGIN = 4096
COORD_LIMIT = OFFSET - MARGIN
MAX_BATCH = (1 << (63 - 3 * AXIS_BITS)) - 1


def check_coords(coords: torch.Tensor, name: str = "coords") -> None:
    """Validate an integer coordinate tensor of shape (N, 4) = (batch, x, y, z).

    Raises:
        ValueError: wrong dtype/shape, or a coordinate outside the packable range.
    """
    if coords.is_floating_point() or coords.is_complex() or coords.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor, got {coords.dtype}")
    if coords.dim() != 2 or coords.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) = (batch, x, y, z), got {tuple(coords.shape)}")
    if coords.numel() == 0:
        return
    xyz = coords[:, 1:]
    lo, hi = int(xyz.min()), int(xyz.max())
    if lo < -COORD_LIMIT or hi > COORD_LIMIT:
        raise ValueError(
            f"{name} out of range: integer coordinates must lie in [{-COORD_LIMIT}, {COORD_LIMIT}] (base voxels), got "
            f"[{lo}, {hi}]; use a larger voxel size or crop the cloud"
        )
    b_lo, b_hi = int(coords[:, 0].min()), int(coords[:, 0].max())
    if b_lo < 0 or b_hi > MAX_BATCH:
        raise ValueError(f"{name} out of range: batch index must lie in [0, {MAX_BATCH}], got [{b_lo}, {b_hi}]")


def pack(coords: torch.Tensor) -> torch.Tensor:
    """Pack (N, 4) int64 coordinates into (N,) int64 keys (no range check; see `check_coords`)."""
    c = coords.long()
    return ((c[:, 0] * RADIX + (c[:, 1] + OFFSET)) * RADIX + (c[:, 2] + OFFSET)) * RADIX + (c[:, 3] + OFFSET)


def unpack(keys: torch.Tensor) -> torch.Tensor:
    """Inverse of `pack`: (N,) keys -> (N, 4) int64 coordinates."""
    # Keys are never negative (batch >= 0, every field offset into [0, RADIX)): shifts and masks, no divisions.
    mask = RADIX - 1
    out = torch.empty((keys.shape[0], 4), dtype=torch.long, device=keys.device)
    torch.bitwise_right_shift(keys, 3 * AXIS_BITS, out=out[:, 0])
    for col in (1, 2, 3):
        field = torch.bitwise_right_shift(keys, (3 - col) * AXIS_BITS) if col < 3 else keys
        torch.bitwise_and(field, mask, out=out[:, col])
    out[:, 1:] -= OFFSET
    return out


def offset_key(dx: int, dy: int, dz: int) -> int:
    """Key difference produced by moving a coordinate by (dx, dy, dz) (valid inside the margin)."""
    return (dx * RADIX + dy) * RADIX + dz


def kernel_offsets(kernel_size: int, stride: int) -> list[tuple[int, int, int]]:
    """Kernel offsets in MinkowskiEngine's order for a hyper-cube region.

    ME (`kernel_region::coordinate_at`) enumerates kernel index k with x fastest, then y, then z; an odd kernel is
    centred (offset ``(i - ks // 2) * stride``), an even kernel starts at the coordinate (``i * stride``).

    Args:
        kernel_size: edge length of the cube.
        stride: tensor stride the offsets are expressed in (base voxels per step).

    Returns:
        K = kernel_size**3 offsets (dx, dy, dz) in base voxels.
    """
    half = kernel_size // 2 if kernel_size % 2 == 1 else 0
    steps = [(i - half) * stride for i in range(kernel_size)]
    return [
        (steps[k % kernel_size], steps[(k // kernel_size) % kernel_size], steps[k // kernel_size**2])
        for k in range(kernel_size**3)
    ]


class CoordSet:
    """One sorted, unique coordinate set at one tensor stride.

    Attributes:
        keys: (N,) int64 packed keys, ascending.
        stride: tensor stride in base voxels.
        coords: (N, 4) int64 coordinates, sorted by key; unpacked from the keys on first use when not given (most
            derived sets only ever need their keys).
    """

    def __init__(self, coords: torch.Tensor | None, keys: torch.Tensor, stride: int) -> None:
        """Args: coords: the coordinates, or None to unpack them from ``keys`` when asked; keys; stride."""
        self._coords = coords
        self.keys = keys
        self.stride = stride

    @property
    def coords(self) -> torch.Tensor:
        """(N, 4) int64 coordinates (batch, x, y, z)."""
        if self._coords is None:
            self._coords = unpack(self.keys)
        return self._coords


class KernelMap:
    """Neighbour table of one sparse convolution: which input row feeds each output row under each kernel index.

    Two equivalent forms, each built from the other on demand and cached: the table (offset-major, one contiguous
    index vector per kernel offset, the layout the per-offset PyTorch convolution reads) and the pair list (every
    existing pair, offset by offset, what the compiled convolution reads). The compiled map builder produces the
    pair list only; row-major and transposed tables are built on demand and cached too.

    Attributes:
        cols: (K, N_out) int64; ``cols[k, o]`` is the input row i with coord(i) = coord(o) + offset_k, or N_in when
            that site is empty (convolutions append a zero row at index N_in).
        n_in: rows of the input set.
        n_out: rows of the output set.
        symmetric: input and output are the same set and the kernel is odd, so the transposed table is the table
            with its offsets reversed (offset -d has index K - 1 - k).
    """

    def __init__(
        self,
        cols: torch.Tensor | None,
        n_in: int,
        n_out: int,
        symmetric: bool,
        pair_list: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """Args: cols: the table, or None when ``pair_list`` is given; n_in, n_out, symmetric: as above;
        pair_list: ``(starts, rows_in, rows_out)`` as `pair_list` returns, or None to derive it from ``cols``."""
        if cols is None and pair_list is None:
            raise ValueError("KernelMap needs its table or its pair list")
        self._cols = cols
        self.n_in, self.n_out, self.symmetric = n_in, n_out, symmetric
        self._cache: dict[str, Any] = {} if pair_list is None else {"pair_list": pair_list}

    def __repr__(self) -> str:
        return f"KernelMap(K={self.kernel_volume}, n_in={self.n_in}, n_out={self.n_out}, symmetric={self.symmetric})"

    @property
    def cols(self) -> torch.Tensor:
        """The (K, N_out) table (from the pair list when the map was built as one; cached)."""
        if self._cols is None and native.available(self._cache["pair_list"][0]):
            self._cols = native.pairs_to_table(self._cache["pair_list"], self.n_in, self.n_out)
        if self._cols is None:
            starts, rows_in, rows_out = self._cache["pair_list"]
            kvol = starts.numel() - 1
            offset = torch.repeat_interleave(torch.arange(kvol, device=starts.device), starts.diff())
            cols = torch.full((kvol, self.n_out), self.n_in, dtype=torch.long, device=starts.device)
            cols[offset, rows_out] = rows_in
            self._cols = cols
        return self._cols

    @property
    def kernel_volume(self) -> int:
        """K, the number of kernel offsets."""
        return self._cols.shape[0] if self._cols is not None else self._cache["pair_list"][0].numel() - 1

    @classmethod
    def from_children(cls, child: torch.Tensor, n_out: int) -> "KernelMap":
        """The map of a generative transposed conv from its child table.

        Args:
            child: ``(N_in, K)`` int64, the output row that input row i creates under offset k (every pair exists).
            n_out: rows of the output set.

        Within one offset, distinct inputs have distinct children; children of ascending inputs ascend (a child's
        key is its parent's key plus the offset's), so the pair list is every input in order, offset by offset.
        """
        n_in, kvol = child.shape
        by_offset = child.t().contiguous()
        inputs = torch.arange(n_in, device=child.device)
        starts = torch.arange(kvol + 1, device=child.device) * n_in
        kmap = cls(None, n_in, n_out, symmetric=False, pair_list=(starts, inputs.repeat(kvol), by_offset.view(-1)))
        kmap._cache["transposed"] = by_offset
        return kmap

    def _cached(self, name: str, build) -> Any:
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def table(self, transposed: bool = False) -> torch.Tensor:
        """Row-major (N_out, K) table, or the transposed (N_in, K) one (output row of input i under k, or N_out)."""
        return self._cached(
            f"table{transposed}", lambda: (self.transposed_cols() if transposed else self.cols).t().contiguous()
        )

    def transposed_cols(self) -> torch.Tensor:
        """(K, N_in): the output row that input row i feeds under index k, or N_out (built once, cached).

        An input feeds at most one output per offset (o = coord(i) - offset_k), so the table is well defined.
        """

        def build() -> torch.Tensor:
            if self.symmetric:
                return self.cols.flip(0)
            if native.available(self.cols):
                return native.transpose_map(self.cols.contiguous(), self.n_in)
            kvol = self.kernel_volume
            t = torch.full((kvol * self.n_in,), self.n_out, dtype=torch.long, device=self.cols.device)
            k, o = (self.cols < self.n_in).nonzero(as_tuple=True)
            t[k * self.n_in + self.cols[k, o]] = o
            return t.view(kvol, self.n_in)

        return self._cached("transposed", build)

    def column(self, k: int, transposed: bool = False) -> torch.Tensor:
        """(N,) index vector of offset k in the table or the transposed table (no copy for a symmetric map)."""
        if not transposed:
            return self.cols[k]
        if self.symmetric:
            return self.cols[self.kernel_volume - 1 - k]
        return self.transposed_cols()[k]

    def counts(self) -> list[int]:
        """Number of (input, output) pairs of every kernel index."""

        def build() -> list[int]:
            if self._cols is None:
                return self._cache["pair_list"][0].diff().tolist()
            return (self.cols < self.n_in).sum(1).tolist()

        return self._cached("counts", build)

    def pair_list(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every existing pair, offset by offset: ``(starts (K + 1,), rows_in (P,), rows_out (P,))``, offset k's pairs
        at ``[starts[k], starts[k + 1])``, out rows ascending within k (cached; see ``native.pair_list``)."""

        def build() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            if native.available(self.cols):
                return native.pair_list(self.cols.contiguous(), self.n_in)
            # One nonzero over the (K, N_out) columns lists pairs grouped by k, out rows ascending within k.
            index_k, rows_out = (self.cols < self.n_in).nonzero(as_tuple=True)
            counts = torch.tensor([0] + self.counts(), device=self.cols.device)
            return counts.cumsum(0), self.cols[index_k, rows_out], rows_out

        return self._cached("pair_list", build)

    def pairs(self) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """(k, in_rows, out_rows) for every kernel index with at least one pair; both ascending (cached)."""

        def build() -> list[tuple[int, torch.Tensor, torch.Tensor]]:
            _, rows_in, rows_out = self.pair_list()
            used = [(k, c) for k, c in enumerate(self.counts()) if c]
            sizes = [c for _, c in used]
            return list(zip([k for k, _ in used], rows_in.split(sizes), rows_out.split(sizes)))

        return self._cached("pairs", build)


@dataclass
class CoordinateManager:
    """Owns the coordinate sets derived from one input and caches everything computed on them.

    Caches (never rebuilt while the manager lives, reused by forward and backward):
      * derived coordinate sets: stride-2 downsampling, generative upsampling, unions;
      * kernel maps keyed by (input set, output set, kernel size, kind).

    Attributes:
        batch_size: number of scenes.
        device: device of all coordinate tensors.
        num_map_builds: how many kernel maps were built (for tests and profiling).
    """

    batch_size: int
    device: torch.device
    num_map_builds: int = 0
    _sets: dict[int, CoordSet] = field(default_factory=dict)
    _derived: dict[tuple, Any] = field(default_factory=dict)
    _maps: dict[tuple, Any] = field(default_factory=dict)

    def add_set(self, coords: torch.Tensor | None, keys: torch.Tensor, stride: int) -> int:
        """Register a sorted unique coordinate set and return its id (``coords`` None: unpacked when needed)."""
        return self.register(CoordSet(coords, keys, stride))

    def register(self, cs: CoordSet) -> int:
        """Register a coordinate set and return its id."""
        set_id = len(self._sets)
        self._sets[set_id] = cs
        return set_id

    def get_set(self, set_id: int) -> CoordSet:
        """Return the coordinate set with this id."""
        return self._sets[set_id]

    def cached(self, table: str, key: tuple, build) -> Any:
        """Return ``build()`` memoised under ``key`` in the 'derived' or 'maps' table."""
        store = self._maps if table == "maps" else self._derived
        if key not in store:
            store[key] = build()
            if table == "maps":
                self.num_map_builds += 1
        return store[key]
