"""A torch Dataset over an mmdet3d v1.1 info file (real or synthetic) and its sparse collate.

Item (dict): `points` float32 (N, 6|3) after `prepare_points`, `gt_boxes` float32 (K, 7),
`gt_labels` int64 (K,), `sample_idx`. Batch (dict): `sparse` (SparseTensor from
`preprocess.to_sparse_batch`), `point2voxel` (sum N,) int64, `points` (list of arrays),
`gt_boxes` / `gt_labels` (lists of tensors), `sample_idx` (list).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from sr3d_core.data.infos import Sample, label_map, load_infos
from sr3d_core.data.scannet import load_scannet_sample
from sr3d_core.data.sunrgbd import load_sunrgbd_sample
from sr3d_core.data.transforms import AUGMENTS, AugmentConfig, augment
from sr3d_core.preprocess import InputContract, prepare_points, to_sparse_batch

# metainfo.dataset -> sample loader.
SAMPLE_LOADERS: dict[str, Callable[..., Sample]] = {
    "scannet": load_scannet_sample,
    "sunrgbd": load_sunrgbd_sample,
}


@dataclass(frozen=True)
class DatasetConfig:
    """Where the data is and how it is read.

    Attributes:
        data_root: Folder holding the info file and `points_dir`.
        info_file: Info file name (relative to data_root) or absolute path.
        class_names: Classes to train on, in label order; each must be in metainfo.categories.
        points_dir: Sub-folder with the point .bin files.
        augment: Key of transforms.AUGMENTS ("scannet", "sunrgbd" or "none").
        repeat: Times the sample list is repeated per epoch (TR3D: ScanNet x15, SUN RGB-D x5).
    """

    data_root: str
    info_file: str
    class_names: tuple[str, ...]
    points_dir: str = "points"
    augment: str = "none"
    repeat: int = 1


class InfoDataset(Dataset):
    """Samples of one info file, augmented (training) and prepared by the input contract."""

    def __init__(self, cfg: DatasetConfig, contract: InputContract, seed: int = 0) -> None:
        """Load the info file and check the class names.

        Args:
            cfg: Dataset config.
            contract: Input contract passed to `prepare_points`.
            seed: Base seed; item i of epoch e uses SeedSequence([seed, e, i]) (see `set_epoch`).
        """
        if cfg.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {sorted(AUGMENTS)}, got {cfg.augment!r}")
        path = Path(cfg.info_file)
        if not path.is_absolute():
            path = Path(cfg.data_root) / path
        infos = load_infos(path)
        ds = infos["metainfo"].get("dataset")
        if ds not in SAMPLE_LOADERS:
            raise ValueError(f"{path}: metainfo.dataset is {ds!r}; supported: {sorted(SAMPLE_LOADERS)}")
        self.cfg = cfg
        self.contract = contract
        self.aug: AugmentConfig = AUGMENTS[cfg.augment]
        self.loader = SAMPLE_LOADERS[ds]
        self.lut = label_map(infos["metainfo"]["categories"], cfg.class_names, str(path))
        self.data_list: list[dict[str, Any]] = infos["data_list"]
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw per epoch while staying reproducible."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.data_list) * self.cfg.repeat

    def load(self, index: int) -> Sample:
        """The raw sample ``index`` of the info file (no augmentation, no contract).

        Raises:
            IndexError: ``index`` is outside ``[0, number of samples)``, naming the info file.
        """
        n = len(self.data_list)
        if not 0 <= index < n:
            raise IndexError(f"sample index {index} is out of range: {self.cfg.info_file} has {n} samples "
                             f"(0..{n - 1})")
        return self.loader(self.data_list[index], self.cfg.data_root, self.lut, self.cfg.points_dir)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.load(index % len(self.data_list))  # the repeat factor wraps here, and only here
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))
        pts, boxes = augment(s.points, s.gt_boxes, self.aug, rng)
        pts = prepare_points(pts, self.contract, rng if self.cfg.augment != "none" else None)
        return {"points": pts, "gt_boxes": boxes, "gt_labels": s.gt_labels, "sample_idx": s.sample_idx}


class SparseCollate:
    """Collate items into one sparse batch through `preprocess.to_sparse_batch`.

    A class rather than a closure so it pickles into DataLoader worker processes.
    """

    def __init__(self, contract: InputContract, reduce: str = "random", seed: int | None = None) -> None:
        self.contract = contract
        self.reduce = reduce
        self.seed = seed

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        pts = [it["points"] for it in items]
        sparse, p2v = to_sparse_batch(pts, self.contract, reduce=self.reduce, seed=self.seed)
        return {
            "sparse": sparse,
            "point2voxel": p2v,
            "points": pts,
            "gt_boxes": [torch.from_numpy(np.asarray(it["gt_boxes"], np.float32)) for it in items],
            "gt_labels": [torch.from_numpy(np.asarray(it["gt_labels"], np.int64)) for it in items],
            "sample_idx": [it["sample_idx"] for it in items],
        }
