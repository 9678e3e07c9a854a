"""The pure-PyTorch backend: runs on CPU and CUDA, no build step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import kernel_map as km
from . import native
from .coords import CoordinateManager, KernelMap, check_coords, pack, unpack
from .tensor import SparseTensor

NAME = "torch"


# How a convolution runs over its neighbour table (see `set_conv_algorithm`).
CONV_ALGORITHMS = ("auto", "gather", "offsets", "native")
_conv_algorithm = "auto"
# "auto" gathers all K neighbours at once while the block (rows x K x C) stays this small (a few MB, cache-
# resident); larger convolutions loop over offsets, where short GEMMs run at a better rate than one long one and
# empty sites cost nothing (per-convolution timings in docs/RESULTS.md, engine speed-up).
_GATHER_ALL_MAX = 1 << 20
# An offset whose pairs cover at least the fraction C / (C + _SCATTER_COST) of the rows it writes (C: channels
# gathered) is applied densely: a padded gather and an in-place GEMM, no scatter, but GEMM rows spent on empty
# sites. A scatter-add costs about as much per output element as _SCATTER_COST multiply-adds, so narrow layers
# go dense early and wide ones only when nearly full. _DENSE_FRACTION, when set, overrides the rule (tests).
_SCATTER_COST = 32
_DENSE_FRACTION: float | None = None
# "auto" runs the compiled fused convolution up to this many channels, the widest measured: forward + backward it
# beats the per-offset GEMMs 1.6-2x at 16-128 channels and 1.15x at 256 (training/benchmark_conv.py). It runs on
# torch's thread count, with the bits of a one-thread run, so it is chosen at any thread count.
_NATIVE_MAX_CHANNELS = 256


def _dense_from(channels: int) -> float:
    """Fraction of destination rows from which an offset runs densely."""
    return _DENSE_FRACTION if _DENSE_FRACTION is not None else channels / (channels + _SCATTER_COST)


def set_conv_algorithm(name: str) -> None:
    """Choose how sparse convolutions run (all give the same result up to float rounding).

    ``gather``: one gather of all K neighbours of every output row into an (N, K*C) block and one GEMM (fewest
    ops: best for small sets and narrow channels). ``offsets``: one GEMM per kernel offset, dense for offsets that
    cover most rows, gather/scatter over the existing pairs otherwise (no work on empty sites; best for large
    sets). ``auto`` picks per convolution.

    Raises:
        ValueError: unknown name.
    """
    global _conv_algorithm
    if name not in CONV_ALGORITHMS:
        raise ValueError(f"unknown conv algorithm {name!r}; choose one of {list(CONV_ALGORITHMS)}")
    _conv_algorithm = name


def _use_native(feats: torch.Tensor, weight: torch.Tensor, input_grad: bool) -> bool:
    if _conv_algorithm not in ("auto", "native"):
        return False
    c_in, c_out = weight.shape[1], weight.shape[2]
    if _conv_algorithm == "auto" and max(c_in, c_out) > _NATIVE_MAX_CHANNELS:
        return False
    return weight.dtype == torch.float32 and native.conv_supported(feats, c_out) and (c_in % 8 == 0 or not input_grad)


def _use_gather(kmap: KernelMap, c_in: int, c_out: int) -> bool:
    if _conv_algorithm in ("gather", "offsets"):
        return _conv_algorithm == "gather"
    kvol = kmap.kernel_volume
    return kmap.n_out * kvol * c_in <= _GATHER_ALL_MAX and kmap.n_in * kvol * c_out <= _GATHER_ALL_MAX


def _padded(x: torch.Tensor) -> torch.Tensor:
    """x with a zero row appended (the row that empty neighbour sites point at)."""
    return torch.cat([x, x.new_zeros((1, x.shape[1]))])


def _gather_mm(src: torch.Tensor, table: torch.Tensor, w2d: torch.Tensor) -> torch.Tensor:
    """sum_k src[table[:, k]] @ W[k] as one gather and one GEMM (table rows point at the zero row when empty)."""
    n, kvol = table.shape
    return _padded(src).index_select(0, table.view(-1)).view(n, kvol * src.shape[1]) @ w2d


def _offsets_mm(src: torch.Tensor, kmap: KernelMap, weight: torch.Tensor, transpose: bool) -> torch.Tensor:
    """sum_k src[table[:, k]] @ W[k] one offset at a time; with ``transpose``, the backward's
    sum_k grad[table^T[:, k]] @ W[k]^T over the transposed table.

    Offsets covering enough of the destination rows (`_dense_from`) gather a full column (empty sites read the
    zero row) and accumulate in place; sparser ones gather, multiply and scatter-add their pairs only. The
    centre offset of a submanifold conv maps every row to itself and needs no gather at all.
    """
    n_dst = kmap.n_in if transpose else kmap.n_out
    counts = kmap.counts()
    dense_from = _dense_from(src.shape[1]) * n_dst
    identity = kmap.kernel_volume // 2 if kmap.symmetric else None
    out = src.new_zeros((n_dst, weight.shape[1] if transpose else weight.shape[2]))
    padded = None
    for k, count in enumerate(counts):
        if count == 0 or count < dense_from:
            continue
        w = weight[k].t() if transpose else weight[k]
        if k == identity:
            out.addmm_(src, w)
            continue
        if padded is None:
            padded = _padded(src)
        out.addmm_(padded.index_select(0, kmap.column(k, transpose)), w)
    if not any(0 < c < dense_from for c in counts):
        return out
    for k, rows_in, rows_out in kmap.pairs():
        if counts[k] < dense_from:
            rows_src, rows_dst = (rows_out, rows_in) if transpose else (rows_in, rows_out)
            out.index_add_(0, rows_dst, src.index_select(0, rows_src) @ (weight[k].t() if transpose else weight[k]))
    return out


def _conv_forward(
    feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap, use_native: bool, gather: bool
) -> torch.Tensor:
    """The convolution over a kernel map by the chosen algorithm (`_SparseConvFunction`'s forward)."""
    if use_native:
        return native.conv_forward(feats.contiguous(), kmap.pair_list(), kmap.n_out, weight.contiguous())
    if gather:
        return _gather_mm(feats, kmap.table(), weight.reshape(-1, weight.shape[2]))
    return _offsets_mm(feats, kmap, weight, transpose=False)


def _sparse_conv(feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
    """`_SparseConvFunction` where a gradient is recorded; its forward alone otherwise (inference), without
    autograd's per-call bookkeeping."""
    if torch.is_grad_enabled() and (feats.requires_grad or weight.requires_grad):
        return _SparseConvFunction.apply(feats, weight, kmap)
    use_native = _use_native(feats, weight, False)
    gather = not use_native and _use_gather(kmap, weight.shape[1], weight.shape[2])
    return _conv_forward(feats, weight, kmap, use_native, gather)


class _SparseConvFunction(torch.autograd.Function):
    """out[o] = sum_k in[cols[k, o]] @ W[k] over a cached kernel map; the backward reuses the same map."""

    @staticmethod
    def forward(ctx, feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
        ctx.native = _use_native(feats, weight, ctx.needs_input_grad[0])
        ctx.gather = not ctx.native and _use_gather(kmap, weight.shape[1], weight.shape[2])
        ctx.kmap = kmap
        ctx.save_for_backward(feats, weight)
        return _conv_forward(feats, weight, kmap, ctx.native, ctx.gather)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        feats, weight = ctx.saved_tensors
        kmap: KernelMap = ctx.kmap
        grad_out = grad_out.contiguous()
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = grad_w = None
        if ctx.native:
            if need_x:
                grad_x = native.conv_input_grad(grad_out, kmap.pair_list(), kmap.n_in, weight.contiguous())
            if need_w:
                grad_w = native.conv_weight_grad(feats.contiguous(), kmap.pair_list(), grad_out)
            return grad_x, grad_w, None
        if ctx.gather:
            if need_x:
                # grad_x[i] = sum_k grad_out[o(i, k)] @ W[k]^T: the same gather + GEMM over the transposed table.
                grad_x = _gather_mm(
                    grad_out, kmap.table(transposed=True), weight.transpose(1, 2).reshape(-1, weight.shape[1])
                )
            if need_w:
                table = kmap.table()
                n, kvol = table.shape
                cols = _padded(feats).index_select(0, table.view(-1)).view(n, kvol * feats.shape[1])
                grad_w = (cols.t() @ grad_out).view(weight.shape)
            return grad_x, grad_w, None
        if need_x:
            grad_x = _offsets_mm(grad_out, kmap, weight, transpose=True)
        if need_w:
            grad_w = torch.zeros_like(weight)
            padded = None
            dense_from = _dense_from(feats.shape[1]) * kmap.n_out  # the forward's choice, offset by offset
            sparse = None
            for k, count in enumerate(kmap.counts()):
                if count == 0:
                    continue
                if count >= dense_from:
                    if kmap.symmetric and k == kmap.kernel_volume // 2:
                        torch.mm(feats.t(), grad_out, out=grad_w[k])  # the centre: every row to itself
                        continue
                    padded = _padded(feats) if padded is None else padded
                    torch.mm(padded.index_select(0, kmap.column(k)).t(), grad_out, out=grad_w[k])
                    continue
                sparse = {k: (ri, ro) for k, ri, ro in kmap.pairs()} if sparse is None else sparse
                rows_in, rows_out = sparse[k]
                torch.mm(feats.index_select(0, rows_in).t(), grad_out.index_select(0, rows_out), out=grad_w[k])
        return grad_x, grad_w, None


def _new_manager(batch_size: int, device: torch.device) -> CoordinateManager:
    return CoordinateManager(batch_size=batch_size, device=device)


def from_sorted_unique(
    coords: torch.Tensor | None, keys: torch.Tensor, feats: torch.Tensor, batch_size: int, stride: int = 1
) -> tuple[SparseTensor, None]:
    """Wrap coordinates that are already unique and sorted by key (as `voxelize` produces); ``coords`` None:
    unpacked from the keys if ever read.

    Returns:
        The tensor and None (rows keep the input order; other backends return the row of every input row).
    """
    manager = _new_manager(batch_size, keys.device)
    set_id = manager.add_set(coords, keys, stride)
    return SparseTensor(feats, manager, set_id, stride, batch_size, NAME, coords=coords), None


def from_coords(
    coords: torch.Tensor, feats: torch.Tensor, batch_size: int | None = None, stride: int = 1
) -> tuple[SparseTensor, torch.Tensor]:
    """Build a tensor from unique integer coordinates in any order.

    Returns:
        The tensor (rows sorted by key) and the permutation: tensor row j holds input row ``perm[j]``.

    Raises:
        ValueError: duplicate coordinates, coordinates not multiples of ``stride``, bad shapes or ranges.
    """
    check_coords(coords)
    if feats.dim() != 2 or feats.shape[0] != coords.shape[0]:
        raise ValueError(f"feats must have shape ({coords.shape[0]}, C), got {tuple(feats.shape)}")
    coords = coords.long()
    if stride != 1 and coords.numel() and bool((coords[:, 1:] % stride != 0).any()):
        raise ValueError(f"coordinates must be multiples of the stride {stride}")
    keys = pack(coords)
    if batch_size is None:
        batch_size = int(coords[:, 0].max()) + 1 if coords.numel() else 0
    if keys.numel() < 2 or bool((keys[1:] > keys[:-1]).all()):
        # Already strictly ascending (e.g. the coordinates of another tensor): sorted and unique, nothing to move;
        # the coordinates are unpacked from the keys if read (the caller's tensor is not kept).
        perm = torch.arange(keys.numel(), device=keys.device)
        return from_sorted_unique(None, keys, feats, batch_size, stride)[0], perm
    keys, perm = torch.sort(keys)
    if bool((keys[1:] == keys[:-1]).any()):
        raise ValueError("coordinates must be unique")
    return from_sorted_unique(coords.index_select(0, perm), keys, feats.index_select(0, perm), batch_size, stride)[
        0
    ], perm


def coords_of(x: SparseTensor) -> torch.Tensor:
    """Coordinates of a torch-backend tensor."""
    return x.manager.get_set(x.set_id).coords


def replace(x: SparseTensor, feats: torch.Tensor) -> SparseTensor:
    """Same coordinate set, new features."""
    return SparseTensor(feats, x.manager, x.set_id, x.stride, x.batch_size, NAME, coords=x._coords)


def _derive(x: SparseTensor, set_id: int, feats: torch.Tensor) -> SparseTensor:
    cs = x.manager.get_set(set_id)
    return SparseTensor(feats, x.manager, set_id, cs.stride, x.batch_size, NAME)


def _down(x: SparseTensor) -> tuple[int, torch.Tensor]:
    """Stride-2 output set of x's set (cached) and the parent row of every input row."""
    mgr: CoordinateManager = x.manager

    def build():
        cs, inverse = km.downsample(mgr.get_set(x.set_id), 2)
        return mgr.register(cs), inverse

    return mgr.cached("derived", ("down", x.set_id), build)


def _kernel_map(x: SparseTensor, out_id: int, kernel_size: int, parent: torch.Tensor | None = None) -> KernelMap:
    mgr: CoordinateManager = x.manager
    return mgr.cached(
        "maps",
        ("conv", x.set_id, out_id, kernel_size),
        lambda: km.build_kernel_map(mgr.get_set(x.set_id), mgr.get_set(out_id), kernel_size, parent),
    )


def conv(
    x: SparseTensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel_size: int, stride: int
) -> SparseTensor:
    """Sparse conv; stride 1 is submanifold, stride 2 outputs unique(floor(c / 2s) * 2s)."""
    parent = None
    if stride == 1:
        out_id = x.set_id
    elif stride == 2:
        out_id, parent = _down(x)
    else:
        raise ValueError(f"SparseConv3d supports stride 1 or 2, got {stride}")
    if kernel_size == 1 and stride == 1:
        out = x.feats @ weight[0] if bias is None else torch.addmm(bias, x.feats, weight[0])
        return _derive(x, out_id, out)
    out = _sparse_conv(x.feats, weight, _kernel_map(x, out_id, kernel_size, parent))
    return _derive(x, out_id, _add_bias(out, bias))


def _add_bias(out: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``out + bias``; in place into the conv's fresh output when no gradient is recorded (inference)."""
    if bias is None:
        return out
    return out + bias if torch.is_grad_enabled() else out.add_(bias)


def conv_transpose_generative(
    x: SparseTensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel_size: int, stride: int
) -> SparseTensor:
    """Generative transposed conv: every child c + offset_k(S/2) of every input c exists in the output."""
    if stride != 2:
        raise ValueError(f"SparseGenerativeConvTranspose3d supports stride 2, got {stride}")
    if x.stride < 2 or x.stride % 2:
        raise ValueError(f"generative transposed conv needs an even input stride, got {x.stride}")
    mgr: CoordinateManager = x.manager

    def build():
        cs, child = km.generative_upsample(mgr.get_set(x.set_id), kernel_size, 2)
        return mgr.register(cs), KernelMap.from_children(child, cs.keys.shape[0])

    out_id, kmap = mgr.cached("maps", ("gen", x.set_id, kernel_size), build)
    if _use_native(x.feats, weight, x.feats.requires_grad):
        # The compiled pair kernels, as for any conv: no (N_in * K, C_out) product block, no scatter.
        out = _sparse_conv(x.feats, weight, kmap)
    else:
        # One GEMM for all K offsets, then one scatter-add; autograd's backward is a gather + GEMM (nothing
        # K-sized is kept besides the weight).
        kvol, c_out = weight.shape[0], weight.shape[2]
        w_cat = weight.permute(1, 0, 2).reshape(weight.shape[1], kvol * c_out)
        y = (x.feats @ w_cat).reshape(-1, c_out)
        child = kmap.transposed_cols().t()
        out = x.feats.new_zeros((kmap.n_out, c_out)).index_add(0, child.reshape(-1), y)
    return _derive(x, out_id, _add_bias(out, bias))


def max_pool(x: SparseTensor, kernel_size: int, stride: int) -> SparseTensor:
    """Max pool with kernel == stride == 2: each output takes the max over its existing children."""
    if kernel_size != 2 or stride != 2:
        raise ValueError(f"SparseMaxPool3d supports kernel_size=2, stride=2, got {kernel_size}, {stride}")
    out_id, parent = _down(x)
    n_out = x.manager.get_set(out_id).keys.shape[0]
    if x.feats.dtype == torch.float32 and native.available(x.feats):
        return _derive(x, out_id, _MaxPoolFunction.apply(x.feats, parent, n_out))
    idx = parent[:, None].expand_as(x.feats)
    out = x.feats.new_zeros((n_out, x.feats.shape[1])).scatter_reduce(0, idx, x.feats, "amax", include_self=False)
    return _derive(x, out_id, out)


class _MaxPoolFunction(torch.autograd.Function):
    """The compiled max pool: one pass forward, one scatter backward (autograd of ``scatter_reduce`` "amax" takes a
    dozen full-size ops and was ~15 % of a small model's training step)."""

    @staticmethod
    def forward(ctx, feats: torch.Tensor, parent: torch.Tensor, n_out: int) -> torch.Tensor:
        out, arg = native.max_pool(feats.contiguous(), parent.contiguous(), n_out)
        ctx.save_for_backward(arg)
        ctx.n_in = feats.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (arg,) = ctx.saved_tensors
        return native.max_pool_grad(grad_out.contiguous(), arg, ctx.n_in), None, None


def add(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    """Sum over the union of coordinates."""
    if a.set_id == b.set_id:
        return replace(a, a.feats + b.feats)
    mgr: CoordinateManager = a.manager

    def build():
        cs, ia, ib = km.union(mgr.get_set(a.set_id), mgr.get_set(b.set_id))
        return mgr.register(cs), ia, ib

    out_id, ia, ib = mgr.cached("derived", ("union", a.set_id, b.set_id), build)
    n_out = mgr.get_set(out_id).keys.shape[0]
    # In place on the fresh zeros (autograd allows it: they are no leaf that needs a gradient), so the sum
    # costs no copies of the output.
    out = a.feats.new_zeros((n_out, a.feats.shape[1])).index_add_(0, ia, a.feats).index_add_(0, ib, b.feats)
    return _derive(a, out_id, out)


def prune(x: SparseTensor, mask: torch.Tensor) -> SparseTensor:
    """Keep the rows where mask is True (a new coordinate set; order preserved, so still sorted)."""
    mgr: CoordinateManager = x.manager
    cs = mgr.get_set(x.set_id)
    out_id = mgr.add_set(None, cs.keys[mask], cs.stride)
    return _derive(x, out_id, x.feats[mask])


def batch_norm(x: SparseTensor, bn: torch.nn.BatchNorm1d) -> SparseTensor:
    """BatchNorm over all voxels of the batch (shared by both backends: it only touches features)."""
    return replace(x, bn_feats(x.feats, bn))


def bn_feats(feats: torch.Tensor, bn: torch.nn.BatchNorm1d) -> torch.Tensor:
    """BatchNorm1d on (N, C) that tolerates N <= 1 in training (an empty scene or a single coarse voxel)."""
    if feats.shape[0] > 1 or not bn.training:
        return bn(feats)
    # Empty or single row: batch statistics give exactly zero after centring (PyTorch refuses N == 1 in
    # training); the running statistics are left alone since the variance is undefined.
    out = feats - feats.mean(0, keepdim=True) if feats.shape[0] else feats * 0
    if bn.weight is not None:
        out = out * bn.weight + bn.bias  # also keeps the graph to the affine parameters for an empty tensor
    return out


def relu(x: SparseTensor) -> SparseTensor:
    """Elementwise ReLU on features."""
    return replace(x, F.relu(x.feats))


__all__ = [
    "NAME",
    "from_coords",
    "from_sorted_unique",
    "conv",
    "conv_transpose_generative",
    "max_pool",
    "add",
    "prune",
    "batch_norm",
    "relu",
    "coords_of",
    "replace",
    "unpack",
    "set_conv_algorithm",
    "CONV_ALGORITHMS",
]
