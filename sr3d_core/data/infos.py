"""Reading mmdet3d info files and their point files, with clear errors.

Layouts, as mmdetection3d writes them (``tools/create_data.py``, ``tools/dataset_converters/``):

- v1.1 (mmdet3d >= 1.1): a dict ``{metainfo, data_list}``. ``create_data.py`` writes ``metainfo = {categories,
  dataset, info_version}``; the demo and test infos mmdet3d ships (``demo/data/sunrgbd/sunrgbd_000017_infos.pkl``,
  ``tests/data/{sunrgbd,scannet}/*_infos.pkl``) have only ``{'DATASET': 'SUNRGBD'}``. Without categories the
  dataset's standard class -> label mapping is used (mmdet3d's METAINFO order, ``classes.CLASS_LISTS``). Samples
  carry ``lidar_points = {num_pts_feats, lidar_path}`` and ``instances`` with ``bbox_3d`` / ``bbox_label_3d``; the
  converters write no ``sample_idx`` for SUN RGB-D and ScanNet, so the point file's stem names the sample then.
- Before v1.1: a plain list of samples (``point_cloud``, ``pts_path``, ``annos`` with ``gt_boxes_upright_depth``,
  ``class``, ``name`` ...). Refused, with the command that converts it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from sr3d_core.data.classes import CLASS_LISTS, category_label, check_class_names


@dataclass
class Sample:
    """One loaded sample, in the library's conventions.

    Attributes:
        points: (N, 6) float32 xyz + RGB in [0, 1], gravity-aligned z-up frame.
        gt_boxes: (K, 7) float32 (x, y, z, dx, dy, dz, yaw), gravity centre; yaw = 0 for ScanNet.
        gt_labels: (K,) int64 indices into the configured class names (ignored labels removed).
        sample_idx: Identifier from the info file (``sample_id``).
    """

    points: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    sample_idx: Any


@dataclass(frozen=True)
class InfoFile:
    """An info file, read and checked.

    Attributes:
        path: The file.
        dataset: Lower-case dataset name: ``metainfo.dataset`` (or ``DATASET``, as in mmdet3d's demo and test
            infos), else the file name's prefix (``sunrgbd_*``, ``scannet_*``); None if nothing names one.
        categories: Class name -> file label (``bbox_label_3d``); -1 marks a class the file ignores.
        standard_categories: True when the metainfo has no categories and ``categories`` is the dataset's standard
            mapping.
        metainfo: The metainfo as stored.
        data_list: One dict per sample.
    """

    path: Path
    dataset: Optional[str]
    categories: dict[str, int]
    standard_categories: bool
    metainfo: dict[str, Any]
    data_list: list[dict[str, Any]]

    @property
    def class_names(self) -> tuple[str, ...]:
        """The file's classes in label order (ignored ones left out)."""
        return tuple(sorted((n for n, k in self.categories.items() if k >= 0), key=self.categories.get))

    @property
    def categories_source(self) -> str:
        """Where the categories came from, for error messages."""
        if self.standard_categories:
            return f"{self.path} (it has no metainfo.categories: the standard {self.dataset} classes)"
        return f"{self.path} (metainfo.categories)"


def _dataset_from_name(path: Path) -> Optional[str]:
    name = path.name.lower()
    return next((ds for ds in CLASS_LISTS if name.startswith(ds)), None)


def _old_layout_error(path: Path, samples: list[Any]) -> ValueError:
    """The refusal of a pre-v1.1 info file, with the command that converts it."""
    first = samples[0] if samples and isinstance(samples[0], dict) else {}
    annos = first.get("annos") if isinstance(first.get("annos"), dict) else {}
    if "calib" in first or "image" in first:
        ds = "sunrgbd"
    elif "axis_align_matrix" in annos or "pts_instance_mask_path" in first:
        ds = "scannet"
    else:
        ds = _dataset_from_name(path) or "<sunrgbd or scannet>"
    return ValueError(
        f"{path} is an mmdet3d info file from before v1.1 (a list of samples with point_cloud / pts_path / annos); "
        f"this loader reads the v1.1 layout {{metainfo, data_list}}. Convert it with mmdetection3d >= 1.1: "
        f"python tools/dataset_converters/update_infos_to_v2.py --dataset {ds} --pkl-path {path} "
        f"--out-dir <new folder>, then put the converted file (same name) in place of this one, beside points/"
    )


def load_infos(path: str | Path) -> InfoFile:
    """Load and check an info file (see the module docstring for the layouts).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a v1.1 `{metainfo, data_list}` dict (a pre-v1.1 list is told how to convert), or
            it has no categories and names no dataset with a standard class list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"info file not found: {path}")
    with open(path, "rb") as f:
        d = pickle.load(f)
    if isinstance(d, list):
        raise _old_layout_error(path, d)
    if not isinstance(d, dict) or "metainfo" not in d or "data_list" not in d:
        raise ValueError(
            f"{path} is not an mmdet3d v1.1 info file (expected keys metainfo, data_list); "
            "convert old infos with mmdet3d's tools/dataset_converters/update_infos_to_v2.py"
        )
    meta = dict(d["metainfo"] or {})
    named = meta.get("dataset", meta.get("DATASET"))
    dataset = str(named).lower() if named is not None else _dataset_from_name(path)
    categories = meta.get("categories")
    standard = categories is None
    if standard:
        if dataset not in CLASS_LISTS:
            raise ValueError(
                f"{path}: metainfo has no 'categories', and its dataset {dataset!r} has no standard "
                f"class list (known: {sorted(CLASS_LISTS)})"
            )
        categories = {name: k for k, name in enumerate(CLASS_LISTS[dataset])}
    return InfoFile(path, dataset, dict(categories), standard, meta, list(d["data_list"]))


def sample_id(info: dict[str, Any]) -> Any:
    """A sample's ``sample_idx``, else its point file's stem (mmdet3d's SUN RGB-D / ScanNet infos have none)."""
    if info.get("sample_idx") is not None:
        return info["sample_idx"]
    return Path(str(info.get("lidar_points", {}).get("lidar_path", ""))).stem or None


def read_points(
    data_root: str | Path, info: dict[str, Any], points_dir: str = "points", expected_feats: int = 6
) -> np.ndarray:
    """Read a float32 `.bin` point file named by `info['lidar_points']`.

    Args:
        data_root: Root holding `points_dir`.
        info: One data_list entry.
        points_dir: Sub-folder of the point files (mmdet3d's `data_prefix['pts']`).
        expected_feats: Columns the loader needs.

    Raises:
        FileNotFoundError: If the .bin file is missing.
        ValueError: If num_pts_feats is not `expected_feats` or the file size does not fit it.
    """
    lp = info["lidar_points"]
    n_feats = int(lp["num_pts_feats"])
    if n_feats != expected_feats:
        raise ValueError(
            f"sample {sample_id(info)}: lidar_points.num_pts_feats is {n_feats}, "
            f"expected {expected_feats} (xyz + RGB)"
        )
    path = Path(data_root) / points_dir / lp["lidar_path"]
    if not path.is_file():
        raise FileNotFoundError(f"point file not found: {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % n_feats:
        raise ValueError(f"{path}: {raw.size} floats is not a multiple of num_pts_feats={n_feats}")
    return raw.reshape(-1, n_feats)


def label_map(
    categories: dict[str, int], class_names: tuple[str, ...] | list[str], source: str, allow_missing: bool = False
) -> np.ndarray:
    """Lookup table file label -> configured label (-1 where the class is not configured).

    Names match under our spelling or mmdet3d's (``classes.MMDET3D_SPELLINGS``).

    Args:
        categories: The info file's class name -> file label.
        class_names: The configured classes, in label order.
        source: Where the categories came from, named in the error.
        allow_missing: Configured classes the file does not annotate are left out (a model evaluated on a data
            set labelled with another class list, e.g. a SUN RGB-D model on ScanNet) instead of refused.

    Raises:
        ValueError: A configured class is not among the categories (unless ``allow_missing``).
    """
    if not allow_missing:
        check_class_names(class_names, categories, source)
    n = max(categories.values(), default=-1) + 1
    lut = np.full(max(n, 0), -1, np.int64)
    for i, name in enumerate(class_names):
        label = category_label(categories, name)
        if label is not None:
            lut[label] = i
    return lut


def instances(info: dict[str, Any], box_dim: int, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GT boxes (K, box_dim) and remapped labels, with -1 / unconfigured labels dropped."""
    inst = info.get("instances", [])
    boxes = np.asarray([i["bbox_3d"] for i in inst], np.float32).reshape(-1, box_dim)
    raw = np.asarray([i["bbox_label_3d"] for i in inst], np.int64)
    labels = (
        np.where((raw >= 0) & (raw < len(lut)), lut[np.clip(raw, 0, max(len(lut) - 1, 0))], -1) if len(raw) else raw
    )
    keep = labels >= 0
    return boxes[keep], labels[keep]
