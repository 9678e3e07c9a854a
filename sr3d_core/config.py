"""Typed, frozen experiment configuration loaded from YAML.

One YAML file (``config/models/*.yaml``) describes one experiment: the model, the input contract, the
assigner, the losses, post-processing and the training schedule. Every default lives here and only here.
Unknown keys are errors that name the key and the file, so a typo never silently falls back to a default.

The resolved config (``Config.to_dict()``) is stored inside every checkpoint, so a checkpoint is
self-describing: ``Config.from_dict(ckpt["config"])`` rebuilds the exact model.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from sr3d_core.assign import ASSIGNERS, AssignerConfig, TR3DAssignerConfig
from sr3d_core.losses import CLS_LOSSES, ClsLossConfig, FocalConfig
from sr3d_core.preprocess import InputContract

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config" / "models"


class ConfigError(ValueError):
    """A config file or dict does not match the schema."""


def check_ranges(section: str, **checks: tuple[Any, Any, Any]) -> None:
    """Raise ``ConfigError`` naming ``section.field`` when a value lies outside its range.

    Each check is ``field=(value, low, high)`` with inclusive bounds, ``None`` for no bound; a ``None`` value
    (an optional field left unset) passes.
    """
    for name, (value, low, high) in checks.items():
        if value is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            lo = "-inf" if low is None else low
            hi = "inf" if high is None else high
            raise ConfigError(f"{section}.{name} must lie in [{lo}, {hi}], got {value}")


@dataclass(frozen=True)
class ModelConfig:
    """Network architecture (TR3D: MinkResNet34 capped at 128 channels + TR3D neck + 1x1 heads).

    Attributes:
        stem_channels: output channels of the stem conv (64 in TR3D).
        planes: output channels of the 4 residual stages (TR3D: 64, 128, 128, 128).
        depths: BasicBlocks per stage (ResNet34: 3, 4, 6, 3).
        neck_channels: channels of the two neck outputs (128).
        box_type: ``"aligned"`` (6 regression channels, yaw 0) or ``"rotated"`` (8 channels).
        tr3d_height_quirk: rotated decode uses h = exp(o5) + exp(o4) as TR3D/FCAF3D do (faithful
            baseline); False uses h = exp(o5).
        bn_momentum: BatchNorm momentum (PyTorch convention).
        cls_prior_prob: focal-loss prior for the classification bias init.
    """

    stem_channels: int = 64
    planes: tuple[int, ...] = (64, 128, 128, 128)
    depths: tuple[int, ...] = (3, 4, 6, 3)
    neck_channels: int = 128
    box_type: str = "aligned"
    tr3d_height_quirk: bool = True
    bn_momentum: float = 0.1
    cls_prior_prob: float = 0.01

    def __post_init__(self) -> None:
        if len(self.planes) != 4 or len(self.depths) != 4:
            raise ConfigError("model.planes and model.depths must each have 4 entries (the 4 ResNet stages)")
        if self.box_type not in ("aligned", "rotated"):
            raise ConfigError(f"model.box_type must be 'aligned' or 'rotated', got {self.box_type!r}")
        if self.planes[1] != self.planes[2] or self.planes[2] != self.planes[3]:
            # The TR3D neck adds layer3/layer2 to upsampled features: the channels must agree.
            raise ConfigError("model.planes[1:] must be equal (the TR3D neck adds stage outputs)")
        check_ranges(
            "model",
            stem_channels=(self.stem_channels, 1, None),
            neck_channels=(self.neck_channels, 1, None),
            planes=(min(self.planes), 1, None),
            depths=(min(self.depths), 1, None),
            bn_momentum=(self.bn_momentum, 1e-6, 1.0),
            cls_prior_prob=(self.cls_prior_prob, 1e-6, 1 - 1e-6),
        )


#: The input contract of a config that sets none of its keys (TR3D's 1 cm grid with colour).
DEFAULT_CONTRACT = InputContract(voxel_size=0.01, use_color=True)
_CONTRACT_KEYS = tuple(f.name for f in dataclasses.fields(InputContract))


@dataclass(frozen=True)
class DataConfig:
    """Dataset and input contract.

    In YAML the contract is the section ``data.contract`` (``voxel_size``, ``use_color``, ``point_range``,
    ``max_points``, ``quantize_dtype``; the keys left out keep ``DEFAULT_CONTRACT``'s values). Configs,
    overrides (``data.max_points=...``) and checkpoints written before the section existed keep those keys directly
    under ``data``; they still load, as the same keys of ``data.contract``.

    Attributes:
        format: ``"scannet"`` or ``"sunrgbd"`` (mmdet3d v1.1 info layout), or ``"toy"``: tiny in-process
            scenes (points on box surfaces) for tests and smoke runs, no files needed.
        root: data directory (relative paths are resolved against the working directory).
        train_info / val_info: info pickle names inside ``root``.
        class_names: class names, in label order (required).
        contract: what the network expects as input (``InputContract``: voxel size, colour use, crop, point cap,
            quantization arithmetic), saved with each checkpoint. Its ``max_points`` is evenly strided at
            inference and random in training; the ROS node applies it before decoding a cloud.
        train_points: optional fixed number of sampled training points (SUN RGB-D: 100000).
        train_point_fraction: optional lower bound of the random fraction for training sampling (ScanNet: 0.33).
        repeat: dataset repeat factor per epoch (TR3D: ScanNet x15, SUN RGB-D x5; default 1).
        class_balance: 0 (default) draws every training scene equally often; a threshold ``t`` in (0, 1] draws
            scenes holding rare classes more often (repeat-factor sampling: a class held by a share ``f < t`` of
            the scenes counts ``sqrt(t / f)`` times; ``sr3d_core.data.balance``). Epochs keep their length.
        augment: apply the TR3D training augmentation.
        rot_range: optional override of the augmentation's rotation about z, U(-r, r) radians (TR3D: ±30° on
            SUN RGB-D); π makes a model independent of which horizontal axis of its z-up frame points forward.
        toy_scenes / toy_seed: number of scenes and generator seed of the ``"toy"`` format.
    """

    format: str = "scannet"
    root: str = "data/scannet"
    train_info: str = "scannet_infos_train.pkl"
    val_info: str = "scannet_infos_val.pkl"
    class_names: tuple[str, ...] = ()
    contract: InputContract = field(default_factory=lambda: DEFAULT_CONTRACT)
    train_points: Optional[int] = None
    train_point_fraction: Optional[float] = 0.33
    repeat: int = 1
    class_balance: float = 0.0
    augment: bool = True
    rot_range: Optional[float] = None
    toy_scenes: int = 4
    toy_seed: int = 0

    def __post_init__(self) -> None:
        if self.format not in ("scannet", "sunrgbd", "toy"):
            raise ConfigError(f"data.format must be 'scannet', 'sunrgbd' or 'toy', got {self.format!r}")
        check_ranges(
            "data",
            train_points=(self.train_points, 1, None),
            train_point_fraction=(self.train_point_fraction, 1e-6, 1.0),
            repeat=(self.repeat, 1, None),
            class_balance=(self.class_balance, 0.0, 1.0),
            rot_range=(self.rot_range, 0.0, 3.14159266),
            toy_scenes=(self.toy_scenes, 1, None),
        )
        if not self.class_names:
            raise ConfigError(
                "data.class_names is required: the classes, in label order (no data set's list is " "assumed)"
            )
        if len(set(self.class_names)) != len(self.class_names):
            raise ConfigError("data.class_names must be unique")


@dataclass(frozen=True)
class LossConfig:
    """Losses: a classification loss picked by name, plus TR3D's DIoU box loss.

    Attributes:
        cls: the classification loss, ``{name: focal | ras | qfl | vfl, ...}``; its keys are checked against
            the config dataclass of the loss named (``sr3d_core.losses.CLS_LOSSES``).
        cls_weight / box_weight: loss weights.
        rotated_diou_quirk: TR3D's rotated DIoU centre term uses (dx, dy, dw) instead of (dx, dy, dz).
    """

    cls: ClsLossConfig = field(default_factory=FocalConfig)
    cls_weight: float = 1.0
    box_weight: float = 1.0
    rotated_diou_quirk: bool = True

    def __post_init__(self) -> None:
        check_ranges("loss", cls_weight=(self.cls_weight, 0.0, None), box_weight=(self.box_weight, 0.0, None))


#: The score a deployed detector reports boxes at: the ROS node's default ``score_threshold`` (``config/node.yaml``
#: holds the same number; a test checks that they agree) and the threshold ``sr3d-evaluate`` reports precision and
#: recall at. Experiments keep their own, lower ``postprocess.score_threshold``: mAP needs the low-score boxes too.
DEPLOY_SCORE_THRESHOLD: float = 0.3


@dataclass(frozen=True)
class PostprocessConfig:
    """Inference post-processing.

    Attributes:
        nms_pre: keep the top-N anchors by max class score before decoding (per scene).
        score_threshold: per-class score threshold (strict >).
        nms_iou: BEV IoU threshold for per-class greedy NMS.
        max_detections: optional cap after NMS (TR3D has none: ``null``).
    """

    nms_pre: int = 1000
    score_threshold: float = 0.01
    nms_iou: float = 0.5
    max_detections: Optional[int] = None

    def __post_init__(self) -> None:
        # The one rule for these values: configs, Detector.set_postprocess and the node's runtime parameters.
        if not 0.0 <= self.score_threshold < 1.0:
            raise ConfigError(f"postprocess.score_threshold must lie in [0, 1), got {self.score_threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ConfigError(f"postprocess.nms_iou must lie in (0, 1], got {self.nms_iou}")
        check_ranges("postprocess", nms_pre=(self.nms_pre, 1, None), max_detections=(self.max_detections, 1, None))


@dataclass(frozen=True)
class TrainConfig:
    """Optimization and bookkeeping.

    Attributes:
        batch_size: scenes per optimizer step (global; split across DDP ranks).
        lr / weight_decay: AdamW.
        epochs: epochs, each being ``data.repeat`` passes over the training set.
        lr_decay_epochs: epochs after which lr is multiplied by ``lr_decay``.
        warmup_iters / warmup_ratio: linear warm-up from ``lr * warmup_ratio`` (0 = off, TR3D).
        grad_clip: max L2 norm of the gradients (0 = off).
        max_iters: optional hard cap on iterations (tiny runs and tests).
        seed: global seed.
        val_interval / ckpt_interval / log_interval: in iterations (0 = only at the end).
        amp: bf16 autocast (CUDA only; ignored on CPU).
        num_workers: DataLoader workers.
    """

    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 12
    lr_decay_epochs: tuple[int, ...] = (8, 11)
    lr_decay: float = 0.1
    warmup_iters: int = 0
    warmup_ratio: float = 0.01
    grad_clip: float = 10.0
    max_iters: Optional[int] = None
    seed: int = 0
    val_interval: int = 0
    ckpt_interval: int = 1000
    log_interval: int = 10
    amp: bool = False
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_ranges(
            "train",
            batch_size=(self.batch_size, 1, None),
            lr=(self.lr, 1e-12, 10.0),
            weight_decay=(self.weight_decay, 0.0, None),
            epochs=(self.epochs, 1, None),
            lr_decay=(self.lr_decay, 1e-12, 1.0),
            warmup_iters=(self.warmup_iters, 0, None),
            warmup_ratio=(self.warmup_ratio, 1e-12, 1.0),
            grad_clip=(self.grad_clip, 0.0, None),
            max_iters=(self.max_iters, 1, None),
            val_interval=(self.val_interval, 0, None),
            ckpt_interval=(self.ckpt_interval, 0, None),
            log_interval=(self.log_interval, 0, None),
            num_workers=(self.num_workers, 0, None),
        )


@dataclass(frozen=True)
class Config:
    """One experiment."""

    name: str = "tr3d_scannet"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    assigner: AssignerConfig = field(default_factory=TR3DAssignerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        n = len(self.data.class_names)
        table = getattr(self.assigner, "label2level", ())
        if table and len(table) != n:
            raise ConfigError(f"assigner.label2level has {len(table)} entries but data.class_names has {n}")

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, in label order."""
        return self.data.class_names

    @property
    def contract(self) -> InputContract:
        """The input contract (voxel size, colour use, crop, point cap, quantization arithmetic) shared by training
        and inference: ``data.contract``."""
        return self.data.contract

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.data.class_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for tuples) suitable for YAML/JSON/torch.save."""
        return _to_plain(dataclasses.asdict(self))

    @staticmethod
    def from_dict(d: dict[str, Any], source: str = "<dict>", overrides: Optional[dict[str, str]] = None) -> "Config":
        """Build a config from a nested dict; unknown keys raise ``ConfigError`` naming key and source.

        Args:
            d: The nested dict.
            source: Where it came from (named in errors).
            overrides: Dotted keys set by overrides → the override's text, named instead of ``source`` in the
                errors about those keys.
        """
        d = _complete_contract(_nest_flat_contract(_upgrade_legacy(d)))
        return _build(Config, d, _Sources(source, overrides), "")


# Plug-in sections: the base config class → (registry of classes whose ``config_class`` is the schema).
_PLUGINS: dict[type, dict[str, Any]] = {AssignerConfig: ASSIGNERS, ClsLossConfig: CLS_LOSSES}


def _upgrade_legacy(d: dict[str, Any]) -> dict[str, Any]:
    """Map the flat loss/assigner keys of checkpoints written before the plug-in configs to today's schema."""
    loss = d.get("loss")
    if not isinstance(loss, dict) or "cls_loss" not in loss:
        return d
    d = dict(d)
    loss = dict(loss)
    name = loss.pop("cls_loss")
    gamma, alpha = loss.pop("focal_gamma", 2.0), loss.pop("focal_alpha", 0.25)
    for unused in ("box_loss", "ras_beta", "ras_tau"):
        loss.pop(unused, None)
    loss["cls"] = {"name": name, "gamma": gamma, "alpha": alpha}
    d["loss"] = loss
    if isinstance(d.get("assigner"), dict):
        d["assigner"] = {k: v for k, v in d["assigner"].items() if k != "center_prior"}
    return d


def _nest_flat_contract(d: dict[str, Any]) -> dict[str, Any]:
    """Move the input-contract keys that configs and checkpoints written before ``data.contract`` existed keep
    directly under ``data`` into that section (a flat key wins over the same key in the section)."""
    data = d.get("data")
    if not isinstance(data, dict) or not any(k in data for k in _CONTRACT_KEYS):
        return d
    nested = data.get("contract", {})
    if not isinstance(nested, dict):
        return d  # _build names the key
    data = dict(data)
    data["contract"] = {**nested, **{k: data.pop(k) for k in _CONTRACT_KEYS if k in data}}
    return {**d, "data": data}


def _complete_contract(d: dict[str, Any]) -> dict[str, Any]:
    """``data.contract`` with the keys it leaves out taken from ``DEFAULT_CONTRACT``."""
    data = d.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("contract", {}), dict):
        return d
    return {**d, "data": {**data, "contract": {**DEFAULT_CONTRACT.to_dict(), **data.get("contract", {})}}}


class _Sources:
    """Where the keys of a config dict came from, for error messages: the file, or the override that set a key.

    Args:
        file: The config file (or another description of the dict, e.g. ``<checkpoint>:config``).
        overrides: Dotted key → the ``key=value`` text of the override that set it (and everything below it).
    """

    def __init__(self, file: str, overrides: Optional[dict[str, str]] = None) -> None:
        self.file = file
        self.overrides = overrides or {}

    def __str__(self) -> str:
        return self.file

    def of(self, key: str) -> str:
        """The origin to name for the value at dotted ``key``."""
        for k, text in self.overrides.items():
            if key == k or key.startswith(k + "."):
                return f"{self.file}: override {text!r}"
        return self.file

    def note_for_section(self, prefix: str) -> str:
        """What to append to the error of a check over a whole section (``prefix`` is ``"train."``, or ``""`` for
        the checks across sections): the overrides that set values in it, if any."""
        texts = [t for k, t in self.overrides.items() if k.startswith(prefix) or prefix.startswith(k + ".")]
        if not texts:
            return ""
        return f" (with override{'s' if len(texts) > 1 else ''} {', '.join(map(repr, texts))})"


# A number as YAML 1.2 writes it. PyYAML follows YAML 1.1, whose floats need a dot and a signed exponent, so it
# reads ``1e-4`` or ``1.0e5`` as strings; a float field accepts them.
_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _as_float(value: Any) -> Optional[float]:
    """``value`` as a float if it is a number (or a string spelling one), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _to_plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_plain(v) for v in x]
    return x


def _coerce(tp: Any, value: Any, sources: _Sources, where: str) -> Any:
    """Convert a YAML value to the annotated type (lists→tuples, ints→floats), checking basic types."""
    origin = typing.get_origin(tp)
    source = sources.of(where)
    if tp in _PLUGINS:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{where}' must be a mapping with a 'name', got {type(value).__name__}")
        registry = _PLUGINS[tp]
        name = value.get("name", tp().name)
        if name not in registry:
            raise ConfigError(f"{source}: '{where}.name' is {name!r}; known: {', '.join(sorted(registry))}")
        return _build(registry[name].config_class, value, sources, where + ".")
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, sources, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{where}' must be a mapping, got {type(value).__name__}")
        return _build(tp, value, sources, where + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{where}' must be a list, got {type(value).__name__}")
        (elem,) = typing.get_args(tp)[:1]
        return tuple(_coerce(elem, v, sources, where) for v in value)
    if tp is float:
        number = _as_float(value)
        if number is None:
            raise ConfigError(f"{source}: '{where}' must be a number (e.g. 0.001 or 1e-3), got {value!r}")
        return number
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{where}' must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{where}' must be true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{where}' must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, d: dict[str, Any], sources: _Sources, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in names:
            raise ConfigError(
                f"{sources.of(prefix + key)}: unknown key '{prefix}{key}' " f"(allowed: {', '.join(sorted(names))})"
            )
    kwargs = {k: _coerce(hints[k], v, sources, prefix + k) for k, v in d.items()}
    try:
        return cls(**kwargs)
    except ValueError as e:  # the section's own checks (ConfigError), or a plug-in config's range check
        raise ConfigError(f"{sources.file}: {e}{sources.note_for_section(prefix)}") from None


def resolve_config_path(name_or_path: Union[str, Path]) -> Path:
    """Map a preset name (``tr3d_scannet``) or a path to an existing YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    cand = CONFIG_DIR / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    raise FileNotFoundError(
        f"config {str(name_or_path)!r} is neither a YAML file nor a preset in {CONFIG_DIR} "
        f"(presets: {', '.join(sorted(q.stem for q in CONFIG_DIR.glob('*.yaml')))})"
    )


def config_files(name_or_path: Union[str, Path]) -> list[Path]:
    """The YAML files a config is read from: itself, then its ``base``, that file's base, and so on.

    Raises:
        FileNotFoundError: no such file or preset.
        ConfigError: a file that is not valid YAML, or a ``base`` that is missing or loops.
    """
    files = [resolve_config_path(name_or_path)]
    while True:
        with open(files[-1]) as f:
            try:
                d = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"{files[-1]}: not valid YAML: {_one_line(e)}") from None
        if not isinstance(d, dict) or "base" not in d:
            return files
        try:
            base = resolve_config_path(d["base"])
        except FileNotFoundError as e:
            raise ConfigError(f"{files[-1]}: base {d['base']!r} not found ({e})") from None
        if base in files:
            raise ConfigError(f"{files[-1]}: 'base' chain loops: {' -> '.join(str(p) for p in (*files, base))}")
        files.append(base)


def config_changes(old: Config, new: Config) -> list[str]:
    """What differs between two experiments, one ``key: old -> new`` line per dotted key (the name aside).

    A key only one of them has (a plug-in section that changed name) shows ``(none)`` on the other side.
    """

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[prefix + k] = v
        return out

    a, b = flat(old.to_dict()), flat(new.to_dict())
    missing = object()
    lines = []
    for key in sorted(a.keys() | b.keys()):
        va, vb = a.get(key, missing), b.get(key, missing)
        if key != "name" and va != vb:
            show = [("(none)" if v is missing else repr(v)) for v in (va, vb)]
            lines.append(f"{key}: {show[0]} -> {show[1]}")
    return lines


def _read_with_base(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """Read a YAML config; a top-level ``base: <preset or path>`` is read first and this file merged over it."""
    if path in chain:
        raise ConfigError(f"{path}: 'base' chain loops: {' -> '.join(str(p) for p in (*chain, path))}")
    with open(path) as f:
        try:
            d = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {_one_line(e)}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    d = _nest_flat_contract(d)  # before merging, so that a file's keys win over its base's however spelled
    if "base" not in d:
        return d
    base_name = d.pop("base")
    try:
        base_path = resolve_config_path(base_name)
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: base {base_name!r} not found ({e})") from None
    return _merge(_read_with_base(base_path, (*chain, path)), d)


def _one_line(e: Exception) -> str:
    """An exception's text on one line (YAML errors span several)."""
    return " ".join(str(e).split())


# The plug-in a section without a ``name`` means (the dataclass defaults).
_DEFAULT_PLUGIN_NAMES = {"assigner": TR3DAssignerConfig().name, "cls": FocalConfig().name}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``over`` into ``base``; a plug-in section (one with a ``name``) that changes name is replaced."""
    out = dict(base)
    for k, v in over.items():
        b = out.get(k)
        renamed = (
            isinstance(v, dict)
            and isinstance(b, dict)
            and "name" in v
            and v["name"] != b.get("name", _DEFAULT_PLUGIN_NAMES.get(k))
        )
        out[k] = _merge(b, v) if isinstance(v, dict) and isinstance(b, dict) and not renamed else v
    return out


def load_config(name_or_path: Union[str, Path], overrides: Optional[list[str]] = None) -> Config:
    """Load a config from YAML.

    A file may start from another one with ``base: <preset or path>``: the base is read first and the file's
    keys are merged over it (a plug-in section whose ``name`` changes replaces the base's section).

    Args:
        name_or_path: a YAML path or a preset name in ``config/models``.
        overrides: ``"section.key=value"`` strings (value parsed as YAML), applied before validation.

    Returns:
        The frozen config.

    Raises:
        ConfigError: unknown keys or wrongly typed values, naming the key and the file (and the override that set
            the value, if one did).
        FileNotFoundError: no such file or preset.
    """
    path = resolve_config_path(name_or_path)
    d = _read_with_base(path, ())
    origins: dict[str, str] = {}
    for item in overrides or []:
        key, val = item.split("=", 1) if "=" in item else (item, "")
        parts = key.strip().split(".")
        if "=" not in item or not all(parts):
            raise ConfigError(f"{path}: override {item!r} must look like section.key=value")
        if len(parts) == 2 and parts[0] == "data" and parts[1] in _CONTRACT_KEYS:
            parts.insert(1, "contract")  # the spelling from before data.contract existed
        try:
            value = yaml.safe_load(val)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: override {item!r}: the value is not valid YAML: {_one_line(e)}") from None
        node = d
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{path}: override {item!r}: '{'.'.join(parts[:i + 1])}' is a value, not a section")
        node[parts[-1]] = value
        key = ".".join(parts)
        # A later override of a section replaces what earlier ones set inside it.
        origins = {k: t for k, t in origins.items() if not k.startswith(key + ".")}
        origins[key] = item
    d.setdefault("name", path.stem)
    return Config.from_dict(d, source=str(path), overrides=origins)
