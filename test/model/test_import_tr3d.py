"""sr3d-import-tr3d: published TR3D checkpoints in both layouts convert, load strictly and land where they belong.

The TR3D state dicts here are enumerated from TR3D's module definitions (mmdet3d MinkResNet with ME BasicBlocks,
TR3DNeck, TR3DHead; MinkowskiEngine parameter shapes), independently of our model and of the importer's name map,
so a wrong mapping fails these tests. Which module received which tensor is found from the values alone.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from sr3d_core.inference import Detector
from sr3d_core.model.checkpoint import load_checkpoint
from sr3d_core.model.import_tr3d import TR3DImportError, import_tr3d, main
from sr3d_core.sparse import SparseBatchNorm, SparseConv3d, SparseGenerativeConvTranspose3d, set_backend

REPO = Path(__file__).resolve().parents[2]

# --- TR3D as published (facts from its configs and module definitions) ----------------------------------------
DEPTHS = (3, 4, 6, 3)  # MinkResNet depth 34
PLANES = (64, 128, 128, 128)  # max_channels=128 (SamsungLabs) / num_planes=(64, 128, 128, 128) (mmdet3d)
HEADS = {  # layout: (head module, regression conv, classification conv)
    "samsunglabs": ("head", "bbox_conv", "cls_conv"),
    "mmdet3d": ("bbox_head", "conv_reg", "conv_cls"),
    # SamsungLabs' weights loaded by mmdet3d 1.x's MinkSingleStage3DDetector (which renames 'head.' to 'bbox_head.')
    # and saved again
    "samsunglabs_resaved": ("bbox_head", "bbox_conv", "cls_conv"),
}
DATASETS = {"scannet": (18, 6), "sunrgbd": (10, 8)}  # classes, regression outputs
# The class lists mmdet3d's ScanNetDataset / SUNRGBDDataset record in a checkpoint's meta, in mmdet3d's spelling.
META_CLASSES = {
    "scannet": (
        "cabinet",
        "bed",
        "chair",
        "sofa",
        "table",
        "door",
        "window",
        "bookshelf",
        "picture",
        "counter",
        "desk",
        "curtain",
        "refrigerator",
        "showercurtrain",
        "toilet",
        "sink",
        "bathtub",
        "garbagebin",
    ),
    "sunrgbd": ("bed", "table", "sofa", "chair", "toilet", "desk", "dresser", "night_stand", "bookshelf", "bathtub"),
}
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def tr3d_modules(layout: str, dataset: str):
    """Every parameterised TR3D module, in TR3D's forward order.

    Yields ``(name, kind, in, out, kernel_volume, conv_stride, input_tensor_stride)``: ``kind`` is "conv"
    (MinkowskiConvolution or generative transposed conv, no bias), "head" (1x1 MinkowskiConvolution with bias) or
    "bn" (MinkowskiBatchNorm); the last field is the tensor stride, in voxels, of what the module receives.
    """
    n_cls, n_reg = DATASETS[dataset]
    head, reg, cls = HEADS[layout]
    # Backbone: conv1 (k3 s2) norm1, maxpool (s2), then layer1..4 each starting with a stride-2 block.
    yield "backbone.conv1", "conv", 3, 64, 27, 2, 1
    yield "backbone.norm1", "bn", 64, 64, 0, 1, 2
    stride, cin = 4, 64
    for i, (planes, depth) in enumerate(zip(PLANES, DEPTHS)):
        for j in range(depth):
            p = f"backbone.layer{i + 1}.{j}"
            s = 2 if j == 0 else 1
            out_stride = stride * s
            yield f"{p}.conv1", "conv", cin, planes, 27, s, stride
            yield f"{p}.norm1", "bn", planes, planes, 0, 1, out_stride
            yield f"{p}.conv2", "conv", planes, planes, 27, 1, out_stride
            yield f"{p}.norm2", "bn", planes, planes, 0, 1, out_stride
            if j == 0:  # stride 2: downsample = Sequential(conv k1 s2, BN)
                yield f"{p}.downsample.0", "conv", cin, planes, 1, 2, stride
                yield f"{p}.downsample.1", "bn", planes, planes, 0, 1, out_stride
            stride, cin = out_stride, planes
    # Neck: inputs layer2..4 (strides 16, 32, 64); for i = 1, 0: up_block_{i+1}(x), + input i, lateral_i, out_i.
    for i in (1, 0):
        level_stride = 16 * 2**i
        yield f"neck.up_block_{i + 1}.0", "conv", 128, 128, 27, 2, 2 * level_stride
        yield f"neck.up_block_{i + 1}.1", "bn", 128, 128, 0, 1, level_stride
        yield f"neck.lateral_block_{i}.0", "conv", 128, 128, 27, 1, level_stride
        yield f"neck.lateral_block_{i}.1", "bn", 128, 128, 0, 1, level_stride
        yield f"neck.out_block_{i}.0", "conv", 128, 128, 27, 1, level_stride
        yield f"neck.out_block_{i}.1", "bn", 128, 128, 0, 1, level_stride
    # Head: per level (0 then 1), the regression then the classification 1x1 conv, with bias.
    for level_stride in (16, 32):
        yield f"{head}.{reg}", "head", 128, n_reg, 1, 1, level_stride
        yield f"{head}.{cls}", "head", 128, n_cls, 1, 1, level_stride


def tr3d_state_dict(layout: str, dataset: str, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    """A TR3D state dict with MinkowskiEngine's names and shapes and random values (unique per tensor)."""
    g = torch.Generator().manual_seed(seed)
    sd: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, kind, cin, cout, volume, stride, _ in tr3d_modules(layout, dataset):
        if kind == "bn":
            sd[f"{name}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g)
            sd[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
            sd[f"{name}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
            sd[f"{name}.bn.running_var"] = 0.5 + torch.rand(cout, generator=g)
            sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(1000 + len(sd), dtype=torch.long)
            continue
        # ME: volume-1 kernel at stride 1 is (in, out), anything else (volume, in, out).
        shape = (cin, cout) if volume == 1 and stride == 1 else (volume, cin, cout)
        # Fan-in scaling (0.01 for the head, as TR3D initialises it) keeps random activations finite.
        std = 0.01 if kind == "head" else (1.0 / (volume * cin)) ** 0.5
        sd[f"{name}.kernel"] = torch.randn(shape, generator=g) * std
        if kind == "head":
            sd[f"{name}.bias"] = 0.1 * torch.randn(1, cout, generator=g)  # ME bias is (1, out)
    return sd


def resave_through_mmdet3d(state) -> "OrderedDict[str, torch.Tensor]":
    """SamsungLabs' keys as mmdet3d 1.x's MinkSingleStage3DDetector renames them when loading ('head.' ->
    'bbox_head.' wherever it occurs), i.e. as that model saves them again."""
    return OrderedDict((k.replace("head.", "bbox_head.") if "head." in k else k, v) for k, v in state.items())


def mmdet_checkpoint(state, layout: str, dataset: str) -> dict:
    """Wrap a state dict as mmcv (SamsungLabs) or mmengine (mmdet3d 1.x) saves it, meta included; a re-saved
    SamsungLabs file keeps the original meta inside mmengine's."""
    classes = META_CLASSES[dataset]
    samsung = {"mmdet3d_version": "1.0.0rc3", "CLASSES": classes, "epoch": 12, "iter": 1000, "config": "..."}
    if layout == "samsunglabs":
        meta = samsung
    else:
        meta = {"mmengine_version": "0.7.0", "dataset_meta": {"classes": classes}, "epoch": 12, "seed": 0}
        if layout == "samsunglabs_resaved":
            meta["meta"] = samsung
    return {"meta": meta, "state_dict": state}


def save(obj, path: Path) -> Path:
    torch.save(obj, path)
    return path


def cloud(n: int = 4000, seed: int = 0) -> np.ndarray:
    """A room-sized cloud (3 x 3 x 1.5 m) so that every level down to stride 64 has voxels."""
    rng = np.random.default_rng(seed)
    xyz = rng.uniform([0, 0, 0], [3, 3, 1.5], (n, 3))
    return np.concatenate([xyz, rng.uniform(0, 1, (n, 3))], 1).astype(np.float32)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Both layouts (one dataset each), converted by the CLI: ``layout -> (state dict, src, dst, dataset, rc, out)``."""
    out = {}
    d = tmp_path_factory.mktemp("tr3d")
    for layout, dataset in (("samsunglabs", "scannet"), ("mmdet3d", "sunrgbd"), ("samsunglabs_resaved", "sunrgbd")):
        if layout == "samsunglabs_resaved":
            sd = resave_through_mmdet3d(tr3d_state_dict("samsunglabs", dataset, seed=len(out)))
        else:
            sd = tr3d_state_dict(layout, dataset, seed=len(out))
        src = save(mmdet_checkpoint(sd, layout, dataset), d / f"{layout}_{dataset}.pth")
        dst = d / f"{layout}_{dataset}_sr3d.pt"
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            rc = main([str(src), str(dst)])
        out[layout] = (sd, src, dst, dataset, rc, stdout.getvalue())
    return out


def run_main(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _key(t: torch.Tensor) -> tuple:
    return tuple(round(v, 6) for v in t.detach().flatten()[:6].tolist())


def source_of_modules(model, sd):
    """Our parameterised module → the TR3D module whose values it holds, found by value (not by name)."""
    by_value = {}
    for name, t in sd.items():
        if name.endswith(".kernel"):
            by_value[_key(t)] = name[: -len(".kernel")]
        elif name.endswith(".bn.running_mean"):
            by_value[_key(t)] = name[: -len(".bn.running_mean")]
    found = {}
    for module in model.modules():
        if isinstance(module, (SparseConv3d, SparseGenerativeConvTranspose3d)):
            found[module] = by_value.get(_key(module.weight))
        elif isinstance(module, SparseBatchNorm):
            found[module] = by_value.get(_key(module.bn.running_mean))
    return found


@pytest.mark.parametrize("layout", ["samsunglabs", "mmdet3d", "samsunglabs_resaved"])
def test_convert_and_load_strictly(converted, layout):
    sd, src, dst, dataset, rc, out = converted[layout]
    assert rc == 0
    assert f"layout: {layout}" in out
    assert ("ScanNet v2" if dataset == "scannet" else "SUN RGB-D") in out
    ckpt = load_checkpoint(dst)
    assert ckpt["imported_from"]["layout"] == layout
    n_cls, n_reg = DATASETS[dataset]
    assert len(ckpt["class_names"]) == n_cls
    assert ckpt["contract"]["voxel_size"] == 0.01 and ckpt["contract"]["use_color"] is True
    # TR3D's arithmetic: float32 points times the float32 reciprocal of the voxel size (a CUDA tensor / a number)
    assert ckpt["contract"]["quantize_dtype"] == "float32_reciprocal"
    assert ckpt["config"]["data"]["contract"]["quantize_dtype"] == "float32_reciprocal"
    assert "quantized as float32_reciprocal" in out and "classes recorded in the file (they agree)" in out
    assert ckpt["config"]["model"]["box_type"] == ("aligned" if n_reg == 6 else "rotated")
    # every TR3D tensor is used exactly once
    n_elems = sum(t.numel() for t in sd.values())
    assert n_elems == sum(t.numel() for t in ckpt["model"].values())
    assert len(sd) == len(ckpt["model"])

    det = Detector.from_checkpoint(dst)  # strict load
    state = det.model.state_dict()
    head = HEADS[layout][0]
    reg, cls = HEADS[layout][1:]
    # a few tensors, checked by value at the place TR3D's semantics put them
    assert torch.equal(state["backbone.stem.0.weight"], sd["backbone.conv1.kernel"])
    assert torch.equal(state["backbone.stages.2.4.conv2.0.weight"], sd["backbone.layer3.4.conv2.kernel"])
    assert torch.equal(state["backbone.stages.1.0.shortcut.0.weight"], sd["backbone.layer2.0.downsample.0.kernel"])
    bn = "bn.running_mean"
    assert torch.equal(state[f"backbone.stages.3.2.conv1.1.{bn}"], sd[f"backbone.layer4.2.norm1.{bn}"])
    assert torch.equal(state["neck.up.1.1.bn.running_var"], sd["neck.up_block_2.1.bn.running_var"])
    assert torch.equal(state["neck.up.0.0.weight"], sd["neck.up_block_1.0.kernel"])
    assert torch.equal(state["head.reg.weight"][0], sd[f"{head}.{reg}.kernel"])
    assert torch.equal(state["head.reg.bias"], sd[f"{head}.{reg}.bias"][0])
    assert torch.equal(state["head.cls.bias"], sd[f"{head}.{cls}.bias"][0])

    res = det.detect(cloud())
    assert res.boxes.shape[1] == 7


@pytest.mark.parametrize("layout", ["samsunglabs", "mmdet3d", "samsunglabs_resaved"])
def test_modules_run_in_tr3d_order_at_tr3d_strides(converted, layout):
    """Which module holds which TR3D tensor (by value), called in TR3D's forward order on TR3D's tensor strides.

    This checks the semantics of the mapping (e.g. that TR3D's ``up_block_2`` is the first upsampling, of layer4),
    not just names and shapes.
    """
    sd, src, dst, dataset, rc, _ = converted[layout]
    assert rc == 0
    det = Detector.from_checkpoint(dst)
    owners = source_of_modules(det.model, sd)
    assert None not in owners.values(), "a module holds values from no TR3D tensor"
    assert len(set(owners.values())) == len(owners)
    calls = []
    hooks = [
        m.register_forward_pre_hook(lambda m, args, name=name: calls.append((name, args[0].stride)))
        for m, name in owners.items()
    ]
    try:
        x, _ = det.network_input(cloud())
        with torch.no_grad():
            det.model(x)  # the network as loaded (`detect` runs a copy with the batch norms folded into the convs)
    finally:
        for h in hooks:
            h.remove()
    expected = [(name, stride) for name, *_, stride in tr3d_modules(layout, dataset)]
    assert calls == expected


def test_restricted_loading_runs_no_code(tmp_path, capsys):
    """Objects beyond tensors in the training state become inert placeholders; nothing from the file runs."""
    flag = tmp_path / "ran"
    sd = tr3d_state_dict("samsunglabs", "scannet", seed=5)
    obj = mmdet_checkpoint(sd, "samsunglabs", "scannet")
    obj["meta"]["seed"] = np.int64(7)
    obj["meta"]["hook_msgs"] = {"best": np.arange(3.0)}
    obj["meta"]["tripwire"] = Tripwire(str(flag))
    src = save(obj, tmp_path / "with_objects.pth")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(src, weights_only=True)
    rc, out, err = run_main(capsys, src, tmp_path / "out.pt")
    assert rc == 0, err
    assert not flag.exists()
    assert "inert placeholders" in out and "test_import_tr3d._touch" in out and "numpy" in out
    Detector.from_checkpoint(tmp_path / "out.pt")


class Tripwire:
    """Unpickling this with a full unpickler would create a file (a stand-in for code a pickle could run)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (_touch, (self.path,))


def _touch(path: str) -> None:
    Path(path).write_text("unpickled")


@pytest.mark.parametrize(
    "edit, needle",
    [
        ("missing", "missing tensor 'backbone.layer2.1.norm2.bn.running_var'"),
        ("extra", "unexpected tensor 'neck.extra_block.0.kernel'"),
        ("misshaped", "tensor 'neck.lateral_block_0.0.kernel' has shape (27, 128, 64), expected (27, 128, 128)"),
        ("pointwise", "tensor 'head.cls_conv.kernel' has shape (1, 128, 18), expected (128, 18)"),
    ],
)
def test_corrupted_checkpoint_is_refused(tmp_path, capsys, edit, needle):
    sd = tr3d_state_dict("samsunglabs", "scannet", seed=2)
    if edit == "missing":
        del sd["backbone.layer2.1.norm2.bn.running_var"]
    elif edit == "extra":
        sd["neck.extra_block.0.kernel"] = torch.zeros(27, 128, 128)
    elif edit == "misshaped":
        sd["neck.lateral_block_0.0.kernel"] = torch.zeros(27, 128, 64)
    else:  # a stride-1 pointwise kernel stored (1, in, out) is not how ME stores it
        sd["head.cls_conv.kernel"] = sd["head.cls_conv.kernel"][None]
    src = save(mmdet_checkpoint(sd, "samsunglabs", "scannet"), tmp_path / "bad.pth")
    dst = tmp_path / "bad_sr3d.pt"
    rc, out, err = run_main(capsys, src, dst)
    assert rc == 1 and needle in err, err
    assert not dst.exists()


def test_foreign_checkpoint_is_refused(tmp_path, capsys):
    """A torchvision-style ResNet-18 state dict: named as lacking TR3D's head."""
    g = torch.Generator().manual_seed(0)
    sd = OrderedDict(
        [
            ("conv1.weight", torch.randn(64, 3, 7, 7, generator=g)),
            ("bn1.weight", torch.ones(64)),
            ("bn1.bias", torch.zeros(64)),
            ("bn1.running_mean", torch.zeros(64)),
            ("bn1.running_var", torch.ones(64)),
            ("layer1.0.conv1.weight", torch.randn(64, 64, 3, 3)),
            ("fc.weight", torch.randn(1000, 512, generator=g)),
            ("fc.bias", torch.zeros(1000)),
        ]
    )
    for obj in (sd, {"meta": {}, "state_dict": sd}):
        src = save(obj, tmp_path / "resnet.pth")
        rc, out, err = run_main(capsys, src, tmp_path / "x.pt")
        assert rc == 1
        assert "not a TR3D checkpoint" in err and "'head.bbox_conv.kernel'" in err
        assert "'bbox_head.conv_reg.kernel'" in err and "'conv1.weight'" in err


def test_unsupported_dataset_and_junk_are_refused(tmp_path, capsys):
    sd = tr3d_state_dict("mmdet3d", "scannet", seed=3)
    sd["bbox_head.conv_cls.kernel"] = sd["bbox_head.conv_cls.kernel"][:, :5]  # TR3D's S3DIS head: 5 classes
    sd["bbox_head.conv_cls.bias"] = sd["bbox_head.conv_cls.bias"][:, :5]
    rc, _, err = run_main(
        capsys, save(mmdet_checkpoint(sd, "mmdet3d", "scannet"), tmp_path / "s3dis.pth"), tmp_path / "x.pt"
    )
    assert rc == 1 and "'bbox_head.conv_cls.kernel' (128, 5)" in err and "match no supported dataset" in err
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    rc, _, err = run_main(capsys, junk, tmp_path / "x.pt")
    assert rc == 1 and "corrupt or unreadable" in err
    with pytest.raises(FileNotFoundError):
        import_tr3d(tmp_path / "absent.pth", tmp_path / "x.pt")
    with pytest.raises(TR3DImportError, match="meta lists 3 classes"):
        obj = mmdet_checkpoint(tr3d_state_dict("samsunglabs", "scannet", seed=4), "samsunglabs", "scannet")
        obj["meta"]["CLASSES"] = ("a", "b", "c")
        import_tr3d(save(obj, tmp_path / "meta.pth"), tmp_path / "x.pt")


def test_resaved_samsunglabs_file_gives_the_same_checkpoint(tmp_path, capsys):
    """The authors' file and the same weights re-saved through mmdet3d 1.x (head renamed, mmengine meta wrapping the
    original meta) convert to the same model."""
    sd = tr3d_state_dict("samsunglabs", "scannet", seed=7)
    original = save(mmdet_checkpoint(sd, "samsunglabs", "scannet"), tmp_path / "original.pth")
    resaved = save(
        mmdet_checkpoint(resave_through_mmdet3d(sd), "samsunglabs_resaved", "scannet"), tmp_path / "resaved.pth"
    )
    assert "bbox_head.bbox_conv.kernel" in torch.load(resaved, weights_only=True)["state_dict"]
    a, b = import_tr3d(original, tmp_path / "a.pt"), import_tr3d(resaved, tmp_path / "b.pt")
    assert (a.layout.key, b.layout.key) == ("samsunglabs", "samsunglabs_resaved")
    assert a.dataset.key == b.dataset.key == "scannet" and a.meta_classes == b.meta_classes == META_CLASSES["scannet"]
    wa, wb = load_checkpoint(tmp_path / "a.pt")["model"], load_checkpoint(tmp_path / "b.pt")["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _refusal(tmp_path, capsys, obj) -> str:
    dst = tmp_path / "x.pt"
    rc, _, err = run_main(capsys, save(obj, tmp_path / "in.pth"), dst)
    assert rc == 1 and not dst.exists()
    return " ".join(err.split())


def test_class_names_in_meta_must_be_the_heads_dataset(tmp_path, capsys):
    # A ScanNet head (18 classes, 6 channels) whose meta names SUN RGB-D's classes: both are named.
    obj = mmdet_checkpoint(tr3d_state_dict("samsunglabs", "scannet", seed=8), "samsunglabs", "scannet")
    obj["meta"]["CLASSES"] = META_CLASSES["sunrgbd"]
    err = _refusal(tmp_path, capsys, obj)
    assert (
        "its meta names the classes of SUN RGB-D (10 classes, rotated boxes) (bed, table, sofa, chair, toilet, "
        "desk, dresser, night_stand, bookshelf, bathtub) but its head's shapes (18 classes, 6 regression "
        "channels) are those of ScanNet v2 (18 classes, axis-aligned boxes)"
    ) in err, err
    # The other way round, read from mmengine's dataset_meta.
    obj = mmdet_checkpoint(tr3d_state_dict("mmdet3d", "sunrgbd", seed=8), "mmdet3d", "sunrgbd")
    obj["meta"]["dataset_meta"]["classes"] = META_CLASSES["scannet"]
    err = _refusal(tmp_path, capsys, obj)
    assert "its meta names the classes of ScanNet v2" in err and "are those of SUN RGB-D" in err, err
    # Names of no supported dataset, with the head's class count: another dataset's weights.
    names = tuple(f"class{i}" for i in range(10))
    obj["meta"]["dataset_meta"]["classes"] = names
    err = _refusal(tmp_path, capsys, obj)
    assert "its meta lists 10 classes (class0, class1," in err and "which are not the classes of SUN RGB-D" in err
    assert "(10 classes, 8 regression channels) are those of SUN RGB-D" in err, err
    # The right names in another order would swap labels.
    obj["meta"]["dataset_meta"]["classes"] = tuple(reversed(META_CLASSES["sunrgbd"]))
    err = _refusal(tmp_path, capsys, obj)
    assert (
        "its meta lists the classes of SUN RGB-D (10 classes, rotated boxes), which its head's shapes give, in "
        "another order (bathtub, bookshelf,"
    ) in err, err


def test_every_class_list_in_meta_must_agree(tmp_path, capsys):
    sd = resave_through_mmdet3d(tr3d_state_dict("samsunglabs", "sunrgbd", seed=9))
    obj = mmdet_checkpoint(sd, "samsunglabs_resaved", "sunrgbd")
    obj["meta"]["meta"]["CLASSES"] = META_CLASSES["scannet"]
    err = _refusal(tmp_path, capsys, obj)
    assert (
        "meta['dataset_meta']['classes'] lists the classes bed, table," in err
        and "but meta['meta']['CLASSES'] lists cabinet, bed," in err
    ), err


def test_class_names_in_either_spelling_identify_the_dataset():
    from sr3d_core.data.classes import SCANNET_CLASSES, SUNRGBD_CLASSES
    from sr3d_core.model.import_tr3d import DATASETS as SPECS
    from sr3d_core.model.import_tr3d import check_meta_classes, dataset_of_classes, meta_classes

    assert dataset_of_classes(META_CLASSES["scannet"]) is dataset_of_classes(SCANNET_CLASSES) is SPECS["scannet"]
    assert dataset_of_classes(list(SUNRGBD_CLASSES)) is SPECS["sunrgbd"]
    assert dataset_of_classes(SUNRGBD_CLASSES[:-1]) is None
    check_meta_classes(None, SPECS["scannet"])  # nothing recorded: the head's shapes alone decide
    check_meta_classes(SCANNET_CLASSES, SPECS["scannet"])
    # mmcv's and mmengine's places; placeholders and other non-strings are not class names
    assert meta_classes({"meta": {"classes": ["bed"]}}) == ("bed",)
    assert meta_classes({"meta": {"dataset_meta": {"CLASSES": ("bed",)}}}) == ("bed",)
    assert meta_classes({"meta": {"CLASSES": [1, 2]}}) is None and meta_classes({"state_dict": {}}) is None


def test_the_presets_keep_sr3ds_quantization():
    """Only imported TR3D weights use TR3D's float32 arithmetic; the presets (which SR3D trains) keep float64."""
    from sr3d_core.config import load_config

    for preset in ("tr3d_scannet", "tr3d_sunrgbd"):
        assert load_config(preset).contract.quantize_dtype == "float64"


def test_console_script_module_runs(converted, tmp_path):
    """The module the console script points at runs as a program; setup.py declares the script."""
    entry = re.search(r'"sr3d-import-tr3d\s*=\s*([\w.]+):(\w+)"', (REPO / "setup.py").read_text())
    assert entry and entry.groups() == ("sr3d_core.model.import_tr3d", "main")
    src = converted["mmdet3d"][1]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", entry.group(1), str(src), str(tmp_path / "cli.pt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "layout: mmdet3d" in proc.stdout and "SUN RGB-D" in proc.stdout
    Detector.from_checkpoint(tmp_path / "cli.pt")


try:
    import MinkowskiEngine  # noqa: F401

    ME_ERROR = None
except Exception as exc:  # noqa: BLE001 (any import failure means the backend is unavailable)
    ME_ERROR = f"MinkowskiEngine not importable ({type(exc).__name__}: {exc}); run scripts/build_minkowski.sh"


@pytest.mark.minkowski
@pytest.mark.skipif(ME_ERROR is not None, reason=str(ME_ERROR))
@pytest.mark.parametrize("layout", ["samsunglabs", "mmdet3d"])
def test_same_detections_under_minkowski(converted, layout):
    _, _, dst, _, rc, _ = converted[layout]
    assert rc == 0
    det = Detector.from_checkpoint(dst)
    det.score_threshold = 0.05
    pts = cloud(seed=1)
    ours = det.detect(pts)
    set_backend("minkowski")
    try:
        theirs = det.detect(pts)
    finally:
        set_backend("torch")
    assert len(ours) == len(theirs) > 0
    # One to one: every detection has a counterpart with the same label, score and box (to float tolerance).
    # Detections with exactly equal scores come in the backends' own anchor order, so they are matched, not zipped.
    unused = np.ones(len(theirs), dtype=bool)
    for i in np.argsort(-ours.scores, kind="stable"):
        match = np.nonzero(
            unused
            & (theirs.labels == ours.labels[i])
            & np.isclose(theirs.scores, ours.scores[i], rtol=1e-4, atol=1e-5)
            & np.isclose(theirs.boxes, ours.boxes[i], rtol=1e-4, atol=1e-4).all(axis=1)
        )[0]
        assert len(match), f"detection {i} (class {ours.labels[i]}, score {ours.scores[i]:.5f}) has no counterpart"
        unused[match[0]] = False
