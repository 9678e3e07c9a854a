"""``sr3d-import-tr3d``: convert the TR3D checkpoints published by TR3D's authors into SR3D checkpoints.

Three layouts are read, all mmdet3d checkpoints (``{"meta": ..., "state_dict": ...}``) of MinkowskiEngine modules
with the same backbone and neck names:

- ``samsunglabs``: the authors' own code (SamsungLabs/tr3d, an mmdet3d 1.0.0rc3 fork); the head is
  ``head.bbox_conv`` / ``head.cls_conv``;
- ``samsunglabs_resaved``: the authors' weights re-saved through mmdetection3d 1.x, whose
  ``MinkSingleStage3DDetector`` renames a ``head.`` prefix to ``bbox_head.`` when it loads a file: the head is
  ``bbox_head.bbox_conv`` / ``bbox_head.cls_conv``;
- ``mmdet3d``: the mmdetection3d 1.x port (``projects/TR3D``); the head is ``bbox_head.conv_reg`` /
  ``bbox_head.conv_cls``.

Our network is TR3D's to the parameter and its regression channels are in TR3D's order, so the conversion is a
renaming (`tr3d_name_map`) plus two reshapes: MinkowskiEngine stores the kernel of a stride-1, kernel-1
convolution as ``(in, out)`` and every bias as ``(1, out)``. Every tensor must be present with the exact shape
MinkowskiEngine gives it, and nothing else may be in the state dict; otherwise the file is refused, naming the
tensor. The dataset is told by the head's shapes (ScanNet v2: 18 classes and 6 regression channels, SUN RGB-D: 10
and 8) and, when the file's ``meta`` records class names, by those too: they must be that dataset's, in its order,
or the file is refused, naming both. The written checkpoint takes the config, class names and input contract of the
matching preset, with TR3D's quantization arithmetic (``data.contract.quantize_dtype: float32_reciprocal``: the float32
product with the reciprocal that PyTorch computes for TR3D's ``points / voxel_size`` on the GPU).

Opening a file never runs code from it: ``torch.load(weights_only=True)`` first; if the training state holds other
Python objects (numpy scalars, mmengine log buffers), each global the file names is mapped to an inert placeholder
class for torch's weights-only unpickler, so nothing is imported or called, and only ``state_dict`` (and the class
names in ``meta``, when they are plain strings) is read.

Example:
    sr3d-import-tr3d tr3d_scannet.pth models/tr3d_scannet_sr3d.pt
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch

from sr3d_core.config import Config, load_config
from sr3d_core.data.classes import CLASS_LISTS, MMDET3D_SPELLINGS
from sr3d_core.model.checkpoint import make_checkpoint, save_atomic
from sr3d_core.model.network import TR3DNetwork, build_network
from sr3d_core.sparse import SparseConv3d, SparseGenerativeConvTranspose3d

PROG = "sr3d-import-tr3d"
#: How TR3D's quantization is computed: ``points[:, :3] / voxel_size`` on float32 CUDA tensors, which PyTorch evaluates
#: as a product with the float32 reciprocal of the voxel size, then floored by MinkowskiEngine.
TR3D_QUANTIZE_DTYPE = "float32_reciprocal"
# Problems listed in one refusal; the rest are counted.
MAX_LISTED = 8
_BN_ENTRIES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class TR3DImportError(ValueError):
    """A file is not a TR3D checkpoint this importer can convert (the message names the tensor at fault)."""


@dataclass(frozen=True)
class Layout:
    """Where a published TR3D checkpoint keeps its head (backbone and neck names are shared).

    Attributes:
        key: short name.
        description: where the layout comes from.
        head: module name of the head.
        reg: name of the box-regression 1x1 conv inside the head.
        cls: name of the classification 1x1 conv inside the head.
    """

    key: str
    description: str
    head: str
    reg: str
    cls: str

    @property
    def reg_kernel(self) -> str:
        """Name of the regression kernel (its presence identifies the layout)."""
        return f"{self.head}.{self.reg}.kernel"

    @property
    def cls_kernel(self) -> str:
        """Name of the classification kernel."""
        return f"{self.head}.{self.cls}.kernel"


LAYOUTS: dict[str, Layout] = {
    "samsunglabs": Layout(
        "samsunglabs", "SamsungLabs/tr3d (the authors' code, an mmdet3d 1.0.0rc3 fork)", "head", "bbox_conv", "cls_conv"
    ),
    "samsunglabs_resaved": Layout(
        "samsunglabs_resaved",
        "SamsungLabs/tr3d weights re-saved through mmdetection3d " "1.x (head renamed to bbox_head)",
        "bbox_head",
        "bbox_conv",
        "cls_conv",
    ),
    "mmdet3d": Layout("mmdet3d", "mmdetection3d projects/TR3D (mmdet3d 1.x)", "bbox_head", "conv_reg", "conv_cls"),
}


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset TR3D published weights for, and the SR3D preset that describes the same model and input.

    Attributes:
        key: short name.
        description: for messages.
        preset: SR3D config preset (class names, box type, input contract).
        num_classes: classification outputs.
        reg_channels: regression outputs (6 axis-aligned, 8 rotated).
    """

    key: str
    description: str
    preset: str
    num_classes: int
    reg_channels: int

    @property
    def class_names(self) -> tuple[str, ...]:
        """The dataset's classes in label order, in our spelling (``sr3d_core.data.classes``)."""
        return CLASS_LISTS[self.key]


DATASETS: dict[str, DatasetSpec] = {
    "scannet": DatasetSpec("scannet", "ScanNet v2 (18 classes, axis-aligned boxes)", "tr3d_scannet", 18, 6),
    "sunrgbd": DatasetSpec("sunrgbd", "SUN RGB-D (10 classes, rotated boxes)", "tr3d_sunrgbd", 10, 8),
}


@dataclass
class ImportReport:
    """What `import_tr3d` recognised and wrote.

    Attributes:
        layout: the layout recognised.
        dataset: the dataset recognised.
        config: the SR3D config written into the checkpoint.
        num_tensors: tensors converted.
        num_parameters: trainable parameters of the model.
        meta_classes: class names found in the file's ``meta`` (None when absent or not plain strings).
        placeholders: globals of the file loaded as inert placeholders (empty when ``weights_only`` sufficed).
        sha256: digest of the source file.
    """

    layout: Layout
    dataset: DatasetSpec
    config: Config
    num_tensors: int
    num_parameters: int
    meta_classes: Optional[tuple[str, ...]] = None
    placeholders: list[str] = field(default_factory=list)
    sha256: str = ""


# --- opening a foreign checkpoint -------------------------------------------------------------------------------


class _Inert:
    """Stand-in for a global the file names: accepts any construction and state and does nothing with them."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Inert":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<placeholder for {type(self).__name__}>"


def _placeholders(names: Sequence[str]) -> list[tuple[type, str]]:
    """One placeholder class per global name, in the ``(class, "module.name")`` form torch's allow-list takes."""
    return [(type(name, (_Inert,), {}), name) for name in names]


def read_foreign_checkpoint(path: Union[str, Path]) -> tuple[Any, list[str]]:
    """Open a checkpoint written by another framework without running any code from it.

    Args:
        path: the file.

    Returns:
        ``(object, placeholders)``: the unpickled object, and the globals the file names that were replaced by
        inert placeholders (empty when plain ``weights_only`` loading sufficed).

    Raises:
        FileNotFoundError: no such file.
        TR3DImportError: unreadable, or holding objects in PyTorch's legacy (pre-1.6) format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True), []
    except pickle.UnpicklingError as e:
        # torch words every weights-only failure alike; only "Unsupported global" means a readable file with
        # Python objects in it, anything else (an unknown opcode, a bad key) a damaged or foreign file.
        if "Unsupported global" not in str(e):
            raise TR3DImportError(f"{path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
    except Exception as e:  # torch raises several types for corrupt files
        raise TR3DImportError(f"{path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
    # The file names Python globals beyond tensors and plain types (training state, log buffers). List them
    # without unpickling, and let torch's weights-only unpickler build inert placeholders in their place.
    list_globals = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if list_globals is None:
        raise TR3DImportError(
            f"{path} holds Python objects beyond tensors; opening it safely needs PyTorch 2.5 or "
            f"later (this is {torch.__version__})"
        )
    try:
        names = sorted(list_globals(path))
    except ValueError as e:
        raise TR3DImportError(
            f"{path} is in PyTorch's legacy (pre-1.6) format and holds Python objects beyond tensors, which cannot "
            "be opened without running code from it. If you trust its origin, re-save it in the current format "
            "with torch.save(torch.load(path, weights_only=False), new_path) and convert the new file"
        ) from e
    try:
        with torch.serialization.safe_globals(_placeholders(names)):
            return torch.load(path, map_location="cpu", weights_only=True), names
    except Exception as e:  # noqa: BLE001 (whatever fails here, the file is not one we can read safely)
        raise TR3DImportError(f"{path} cannot be opened safely: {type(e).__name__}: {e}") from e


def state_dict_of(obj: Any, source: str = "<checkpoint>") -> Mapping[str, Any]:
    """The weights of an mmdet / mmengine checkpoint (``obj["state_dict"]``) or of a bare state dict.

    Raises:
        TR3DImportError: neither.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        state = obj["state_dict"]
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        keys = list(obj)[:8] if isinstance(obj, Mapping) else []
        raise TR3DImportError(
            f"{source} is not an mmdet checkpoint (no 'state_dict' entry) nor a state dict of tensors; it holds "
            f"{type(obj).__name__}" + (f" with keys {keys}" if keys else "")
        )
    if not all(isinstance(k, str) for k in state):
        raise TR3DImportError(f"{source}: the state dict has non-string keys")
    return state


# Where an mmdet checkpoint's ``meta`` records its class names: mmcv's ``CLASSES`` (SamsungLabs' mmdet3d 1.0 fork),
# mmengine's ``dataset_meta["classes"]`` (mmdet3d 1.x), and the other capitalisation of each.
_META_CLASS_PATHS: tuple[tuple[str, ...], ...] = (
    ("CLASSES",),
    ("classes",),
    ("dataset_meta", "classes"),
    ("dataset_meta", "CLASSES"),
)
# mmdet3d's spelling -> ours (its ScanNet list spells "showercurtrain").
_OUR_SPELLING = {theirs: ours for ours, theirs in MMDET3D_SPELLINGS.items()}


def _plain_names(value: Any) -> Optional[tuple[str, ...]]:
    """``value`` as a tuple of class names if it is a non-empty list or tuple of strings, else None."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(c, str) for c in value):
        return tuple(value)
    return None


def meta_classes(obj: Any, source: str = "<checkpoint>") -> Optional[tuple[str, ...]]:
    """Class names an mmdet checkpoint records in its ``meta`` (``CLASSES``, or ``dataset_meta["classes"]``).

    A file re-saved by mmdet / mmengine may keep the original ``meta`` inside its own (``meta["meta"]``); that one
    is read too, and every list found must be the same.

    Returns:
        The names as written in the file, or None when ``meta`` records none (or none as plain strings).

    Raises:
        TR3DImportError: two places in ``meta`` list different classes (both named).
    """
    found: list[tuple[str, tuple[str, ...]]] = []
    meta, where = (obj.get("meta") if isinstance(obj, Mapping) else None), "meta"
    for _ in range(2):  # the file's meta, and an original meta kept inside it
        if not isinstance(meta, Mapping):
            break
        for path in _META_CLASS_PATHS:
            node: Any = meta
            for key in path:
                node = node.get(key) if isinstance(node, Mapping) else None
            names = _plain_names(node)
            if names is not None:
                found.append((where + "".join(f"[{k!r}]" for k in path), names))
        meta, where = meta.get("meta"), f"{where}['meta']"
    for place, names in found[1:]:
        if names != found[0][1]:
            raise TR3DImportError(
                f"{source}: {found[0][0]} lists the classes {', '.join(found[0][1])} but {place} "
                f"lists {', '.join(names)}"
            )
    return found[0][1] if found else None


def dataset_of_classes(classes: Sequence[str]) -> Optional[DatasetSpec]:
    """The supported dataset whose classes these are, in its label order (mmdet3d's spellings accepted)."""
    names = tuple(_OUR_SPELLING.get(c, c) for c in classes)
    return next((spec for spec in DATASETS.values() if spec.class_names == names), None)


def check_meta_classes(classes: Optional[Sequence[str]], dataset: DatasetSpec, source: str = "<checkpoint>") -> None:
    """Refuse a file whose recorded class names are not those of the dataset its head's shapes give.

    Args:
        classes: the names from the file's ``meta`` (`meta_classes`), or None when it records none.
        dataset: the dataset the head's shapes give (`detect_dataset`).
        source: file name for messages.

    Raises:
        TR3DImportError: the names are another supported dataset's, or no supported dataset's (or in another
            order); the message names what the names say and what the head says.
    """
    if classes is None:
        return
    by_names = dataset_of_classes(classes)
    if by_names is dataset:
        return
    head = (
        f"its head's shapes ({dataset.num_classes} classes, {dataset.reg_channels} regression channels) are those "
        f"of {dataset.description}"
    )
    listed = ", ".join(classes)
    if by_names is not None:
        raise TR3DImportError(
            f"{source}: its meta names the classes of {by_names.description} ({listed}) but {head}; "
            "the file contradicts itself, so it is not converted"
        )
    if sorted(_OUR_SPELLING.get(c, c) for c in classes) == sorted(dataset.class_names):
        raise TR3DImportError(
            f"{source}: its meta lists the classes of {dataset.description}, which its head's shapes give, in another "
            f"order ({listed}; the dataset's order is {', '.join(dataset.class_names)}); converted, its detections "
            "would carry the wrong class names, so it is not converted"
        )
    raise TR3DImportError(
        f"{source}: its meta lists {len(classes)} classes ({listed}), which are not the classes of "
        f"{dataset.description} ({', '.join(dataset.class_names)}), but {head}; these weights may have been trained "
        "on another dataset, so they are not converted under that dataset's class names"
    )


# --- recognising and mapping ------------------------------------------------------------------------------------


def detect_layout(state: Mapping[str, Any], source: str = "<checkpoint>") -> Layout:
    """The layout whose regression kernel the state dict holds.

    Raises:
        TR3DImportError: none (or both) of the layouts' regression kernels is present.
    """
    found = [layout for layout in LAYOUTS.values() if layout.reg_kernel in state]
    if len(found) == 1:
        return found[0]
    if not found:
        wanted = " nor ".join(f"{lay.reg_kernel!r} ({lay.description})" for lay in LAYOUTS.values())
        first = ", ".join(repr(k) for k in list(state)[:5])
        raise TR3DImportError(
            f"{source} is not a TR3D checkpoint: it has neither {wanted}; its first tensors are " f"{first}"
        )
    both = " and ".join(repr(lay.reg_kernel) for lay in found)
    raise TR3DImportError(f"{source} mixes two TR3D layouts: it has both {both}")


def detect_dataset(state: Mapping[str, Any], layout: Layout, source: str = "<checkpoint>") -> DatasetSpec:
    """The dataset whose class count and regression channels the head's kernels have.

    Raises:
        TR3DImportError: the classification kernel is missing, or the shapes match no supported dataset.
    """
    reg, cls = state.get(layout.reg_kernel), state.get(layout.cls_kernel)
    if not isinstance(cls, torch.Tensor):
        raise TR3DImportError(f"{source}: missing tensor {layout.cls_kernel!r} (the classification kernel)")
    if not isinstance(reg, torch.Tensor) or reg.dim() < 2 or cls.dim() < 2:
        raise TR3DImportError(
            f"{source}: tensors {layout.reg_kernel!r} and {layout.cls_kernel!r} must be kernels " "(in, out)"
        )
    num_reg, num_cls = int(reg.shape[-1]), int(cls.shape[-1])
    for spec in DATASETS.values():
        if (spec.num_classes, spec.reg_channels) == (num_cls, num_reg):
            return spec
    supported = ", ".join(f"{s.description}: {s.num_classes} and {s.reg_channels}" for s in DATASETS.values())
    raise TR3DImportError(
        f"{source}: tensors {layout.reg_kernel!r} {tuple(reg.shape)} and {layout.cls_kernel!r} {tuple(cls.shape)} "
        f"give {num_cls} classes and {num_reg} regression channels, which match no supported dataset ({supported})"
    )


def tr3d_name_map(depths: Sequence[int], layout: Layout) -> dict[str, str]:
    """Our state-dict name → the TR3D checkpoint's name, for every tensor.

    TR3D's modules (MinkowskiEngine): the backbone is mmdet3d's ``MinkResNet`` (``conv1``/``norm1`` stem,
    ``layer1..4`` of ME ``BasicBlock``s with ``conv1``/``norm1``/``conv2``/``norm2`` and, in the first block, a
    ``downsample`` Sequential of conv + BN); the neck keeps ``up_block_{i}`` (generative transposed conv + BN)
    that upsamples into level ``i - 1``, ``lateral_block_{i}`` and ``out_block_{i}`` (conv + BN); every BN is an
    ``ME.MinkowskiBatchNorm`` whose ``torch.nn.BatchNorm1d`` is its ``bn`` child.

    Args:
        depths: blocks per backbone stage (3, 4, 6, 3 for TR3D).
        layout: which head names to use.
    """
    names: dict[str, str] = {}

    def conv_bn(ours: str, conv: str, bn: str) -> None:
        # ours is a Sequential (conv, BN[, ReLU]); TR3D's conv and BN may live apart (backbone) or together (neck).
        names[f"{ours}.0.weight"] = f"{conv}.kernel"
        for entry in _BN_ENTRIES:
            names[f"{ours}.1.bn.{entry}"] = f"{bn}.bn.{entry}"

    conv_bn("backbone.stem", "backbone.conv1", "backbone.norm1")
    for i, depth in enumerate(depths):
        for j in range(depth):
            ours, theirs = f"backbone.stages.{i}.{j}", f"backbone.layer{i + 1}.{j}"
            conv_bn(f"{ours}.conv1", f"{theirs}.conv1", f"{theirs}.norm1")
            conv_bn(f"{ours}.conv2", f"{theirs}.conv2", f"{theirs}.norm2")
            if j == 0:  # every stage starts with stride 2, so its first block has the 1x1 shortcut
                conv_bn(f"{ours}.shortcut", f"{theirs}.downsample.0", f"{theirs}.downsample.1")
    for i in range(2):
        # Our up[i] upsamples into level i; TR3D's up_block_{i + 1} does (it is applied to input i + 1).
        conv_bn(f"neck.up.{i}", f"neck.up_block_{i + 1}.0", f"neck.up_block_{i + 1}.1")
        conv_bn(f"neck.lateral.{i}", f"neck.lateral_block_{i}.0", f"neck.lateral_block_{i}.1")
        conv_bn(f"neck.out.{i}", f"neck.out_block_{i}.0", f"neck.out_block_{i}.1")
    for ours, theirs in (("reg", layout.reg), ("cls", layout.cls)):
        names[f"head.{ours}.weight"] = f"{layout.head}.{theirs}.kernel"
        names[f"head.{ours}.bias"] = f"{layout.head}.{theirs}.bias"
    return names


def minkowski_shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Shape of each of our tensors as MinkowskiEngine stores it.

    ME keeps a kernel as (K, in, out), except a kernel of volume 1 at stride 1, which it applies as a matrix
    product and stores as (in, out); a bias is (1, out). Everything else (BN) has our shape.
    """
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    for prefix, module in model.named_modules():
        if not isinstance(module, (SparseConv3d, SparseGenerativeConvTranspose3d)):
            continue
        k, cin, cout = module.weight.shape
        pointwise = k == 1 and module.stride == 1
        shapes[f"{prefix}.weight"] = (cin, cout) if pointwise else (k, cin, cout)
        if module.bias is not None:
            shapes[f"{prefix}.bias"] = (1, cout)
    return shapes


def convert_state_dict(
    state: Mapping[str, Any], model: TR3DNetwork, layout: Layout, source: str = "<checkpoint>"
) -> dict[str, torch.Tensor]:
    """Map a TR3D state dict onto ``model``'s names and shapes, checking every tensor.

    Args:
        state: the TR3D state dict.
        model: the SR3D model it is for (its config fixes the expected names and shapes).
        layout: the layout of ``state``.
        source: file name for messages.

    Returns:
        A state dict that ``model.load_state_dict(..., strict=True)`` accepts.

    Raises:
        TR3DImportError: a tensor is missing, extra, misshaped or of the wrong kind; the message names it.
    """
    ours = model.state_dict()
    names = tr3d_name_map(model.cfg.depths, layout)
    if set(names) != set(ours):  # a change of our model the map does not follow: a bug here, not in the file
        raise RuntimeError(f"the TR3D name map does not cover the model: {sorted(set(ours) ^ set(names))[:5]}")
    expected = minkowski_shapes(model)
    wanted = set(names.values())
    problems = []
    for mine, theirs in names.items():
        value = state.get(theirs)
        if theirs not in state:
            problems.append(f"missing tensor {theirs!r} (expected shape {expected[mine]})")
        elif not isinstance(value, torch.Tensor):
            problems.append(f"{theirs!r} is a {type(value).__name__}, not a tensor")
        elif tuple(value.shape) != expected[mine]:
            problems.append(f"tensor {theirs!r} has shape {tuple(value.shape)}, expected {expected[mine]}")
        elif value.is_floating_point() != ours[mine].is_floating_point():
            problems.append(f"tensor {theirs!r} has dtype {value.dtype}, expected {ours[mine].dtype}")
    for name in state:
        if name not in wanted:
            value = state[name]
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            problems.append(f"unexpected tensor {name!r} {shape}")
    if problems:
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise TR3DImportError(
            f"{source} does not fit TR3D ({layout.description}) with this architecture: "
            + "; ".join(problems[:MAX_LISTED])
            + more
        )
    # Same element order on both sides, so a reshape is the whole conversion (no transposition).
    return {
        mine: state[theirs].detach().to(ours[mine].dtype).reshape(ours[mine].shape).clone()
        for mine, theirs in names.items()
    }


# --- the conversion ---------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_tr3d(src: Union[str, Path], dst: Union[str, Path]) -> ImportReport:
    """Convert a published TR3D checkpoint into an SR3D checkpoint that `Detector` loads.

    Args:
        src: the TR3D checkpoint (either layout).
        dst: the SR3D checkpoint to write (atomically).

    Returns:
        What was recognised and written.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        TR3DImportError: ``src`` is not a TR3D checkpoint of a supported layout, dataset and architecture.
    """
    src, dst = Path(src), Path(dst)
    obj, placeholders = read_foreign_checkpoint(src)
    state = state_dict_of(obj, str(src))
    layout = detect_layout(state, str(src))
    dataset = detect_dataset(state, layout, str(src))
    classes = meta_classes(obj, str(src))
    check_meta_classes(classes, dataset, str(src))
    # The preset describes TR3D's model and input; only the quantization arithmetic is TR3D's own, not the preset's
    # (which SR3D trains with).
    cfg = load_config(dataset.preset, overrides=[f"data.contract.quantize_dtype={TR3D_QUANTIZE_DTYPE}"])
    if cfg.class_names != dataset.class_names:  # a preset edited out of step with the class lists: our bug
        raise RuntimeError(f"preset {dataset.preset!r} lists classes {cfg.class_names}, not {dataset.class_names}")
    model = build_network(cfg)
    model.load_state_dict(convert_state_dict(state, model, layout, str(src)), strict=True)
    ckpt = make_checkpoint(cfg, model)
    digest = _sha256(src)
    ckpt["imported_from"] = {
        "tool": PROG,
        "layout": layout.key,
        "dataset": dataset.key,
        "file": src.name,
        "sha256": digest,
    }
    save_atomic(ckpt, dst)
    return ImportReport(
        layout,
        dataset,
        cfg,
        len(ckpt["model"]),
        sum(p.numel() for p in model.parameters()),
        classes,
        placeholders,
        digest,
    )


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: ``sr3d-import-tr3d SRC DST``; returns 0, or 1 with the reason on stderr."""
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a published TR3D checkpoint (SamsungLabs/tr3d or mmdetection3d projects/TR3D; "
        "ScanNet v2 or SUN RGB-D) into an SR3D checkpoint for Detector, the ROS node and sr3d-replay.",
    )
    ap.add_argument("src", help="TR3D checkpoint (.pth)")
    ap.add_argument("dst", help="SR3D checkpoint to write (.pt)")
    a = ap.parse_args(argv)
    try:
        report = import_tr3d(a.src, a.dst)
    except (FileNotFoundError, TR3DImportError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    c = report.config.contract
    print(f"layout: {report.layout.key}: {report.layout.description}")
    print(f"dataset: {report.dataset.description}; config {report.config.name}")
    print(
        f"input contract: {c.voxel_size * 100:g} cm voxels, {'RGB in [0, 1]' if c.use_color else 'no colour'}, "
        f"point cap {c.max_points or 'none'}, coordinates quantized as {c.quantize_dtype}; classes: "
        f"{', '.join(report.config.class_names)}"
    )
    if report.meta_classes is not None:
        print(f"classes recorded in the file (they agree): {', '.join(report.meta_classes)}")
    if report.placeholders:
        print(f"Python objects outside the weights, loaded as inert placeholders: {', '.join(report.placeholders)}")
    print(f"converted {report.num_tensors} tensors ({report.num_parameters:,} parameters); wrote {a.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
