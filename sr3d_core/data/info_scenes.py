"""The scenes of an mmdet3d v1.1 info file (real or synthetic), as a scene source for training and evaluation.

`InfoScenes.load` reads one raw sample; `InfoScenes.get` returns it as training sees it (augmented from a given
generator) or as evaluation sees it (untouched). Batching lives in `sr3d_core.data.loader`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sr3d_core.config import Config
from sr3d_core.data.augment import AugmentConfig, augment, training_augment
from sr3d_core.data.classes import CLASS_LISTS, category_label
from sr3d_core.data.infos import Sample, label_map, load_infos
from sr3d_core.data.scannet import load_scannet_sample
from sr3d_core.data.sunrgbd import load_sunrgbd_sample

# metainfo.dataset -> sample loader.
SAMPLE_LOADERS: dict[str, Callable[..., Sample]] = {
    "scannet": load_scannet_sample,
    "sunrgbd": load_sunrgbd_sample,
}

SPLITS = ("train", "val")


@dataclass(frozen=True)
class DatasetConfig:
    """Where the data is and how it is read.

    Attributes:
        data_root: Folder holding the info file and `points_dir`.
        info_file: Info file name (relative to data_root) or absolute path.
        class_names: Classes to read, in label order; each must be among the file's categories (unless
            ``allow_missing_classes``).
        points_dir: Sub-folder with the point .bin files.
        allow_missing_classes: Classes the file does not annotate are read as absent (`InfoScenes.unannotated`)
            instead of refused: a model evaluated on a data set labelled with another class list.
    """

    data_root: str
    info_file: str
    class_names: tuple[str, ...]
    points_dir: str = "points"
    allow_missing_classes: bool = False


class InfoScenes:
    """The samples of one info file, a ``SceneSource``.

    Args:
        cfg: Where the data is.
        augment: The training augmentation `get` applies when ``train`` (default: none).

    Raises:
        FileNotFoundError: No info file.
        ValueError: Not a v1.1 info file, an unsupported dataset, or unknown class names.
    """

    def __init__(self, cfg: DatasetConfig, augment: AugmentConfig = AugmentConfig()) -> None:
        path = Path(cfg.info_file)
        if not path.is_absolute():
            path = Path(cfg.data_root) / path
        infos = load_infos(path)
        if infos.dataset not in SAMPLE_LOADERS:
            raise ValueError(f"{path}: metainfo.dataset is {infos.dataset!r}; supported: {sorted(SAMPLE_LOADERS)}")
        self.cfg = cfg
        self.augment = augment
        self.loader = SAMPLE_LOADERS[infos.dataset]
        self.lut = label_map(infos.categories, cfg.class_names, infos.categories_source, cfg.allow_missing_classes)
        self.data_list: list[dict[str, Any]] = infos.data_list
        self.info_path = path
        self.dataset = infos.dataset
        #: Configured classes the file does not annotate: its ground truth says nothing about them.
        self.unannotated = tuple(n for n in cfg.class_names if category_label(infos.categories, n) is None)

    @classmethod
    def from_config(cls, cfg: Config, split: str) -> "InfoScenes":
        """The ``"train"`` or ``"val"`` split of an experiment, with its training augmentation."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        info = cfg.data.train_info if split == "train" else cfg.data.val_info
        return cls(DatasetConfig(cfg.data.root, info, cfg.class_names), training_augment(cfg.data))

    @classmethod
    def for_evaluation(
        cls,
        data_root: str | Path,
        preferred_info: str,
        split: str,
        class_names: tuple[str, ...],
        info_file: str | Path | None = None,
    ) -> "InfoScenes":
        """Scenes to evaluate a model of ``class_names`` on, whatever class list the data set is labelled with.

        The info file is ``info_file`` when given (relative to ``data_root`` unless absolute), else
        ``preferred_info`` (the model's own split file) under ``data_root``, else the one standard
        ``<dataset>_infos_<split>.pkl`` found there (a SUN RGB-D model on a ScanNet folder). Model classes the file
        does not annotate are listed in ``unannotated``; the file's other classes are not read.

        Raises:
            FileNotFoundError: No info file, naming where it was looked for.
            ValueError: Several candidate files, or the file shares no class with the model.
        """
        root = Path(data_root)
        if info_file is not None:
            path = Path(info_file) if Path(info_file).is_absolute() else root / info_file
        elif (root / preferred_info).is_file():
            path = root / preferred_info
        else:
            found = [root / f"{ds}_infos_{split}.pkl" for ds in CLASS_LISTS]
            found = [p for p in found if p.is_file()]
            if len(found) > 1:
                raise ValueError(
                    f"{root} holds several info files for split {split!r}: {[p.name for p in found]}; name one "
                    "(--info-file)"
                )
            if not found:
                raise FileNotFoundError(
                    f"info file not found: {root / preferred_info} (nor any "
                    f"{'/'.join(f'{ds}_infos_{split}.pkl' for ds in CLASS_LISTS)})"
                )
            path = found[0]
        scenes = cls(DatasetConfig(str(root), str(path.resolve()), tuple(class_names), allow_missing_classes=True))
        if len(scenes.unannotated) == len(class_names):
            raise ValueError(f"{path} annotates none of the model's classes {tuple(class_names)}")
        return scenes

    def __len__(self) -> int:
        return len(self.data_list)

    def scene_labels(self, index: int) -> np.ndarray:
        """The configured class labels of sample ``index``'s objects, from the info file alone (no points read)."""
        raw = np.asarray([i["bbox_label_3d"] for i in self.data_list[index].get("instances", [])], np.int64)
        ok = (raw >= 0) & (raw < len(self.lut))
        labels = self.lut[raw[ok]]
        return labels[labels >= 0]

    def load(self, index: int) -> Sample:
        """The raw sample ``index`` of the info file (no augmentation, no input contract).

        Raises:
            IndexError: ``index`` is outside ``[0, number of samples)``, naming the info file.
        """
        n = len(self.data_list)
        if not 0 <= index < n:
            raise IndexError(
                f"sample index {index} is out of range: {self.cfg.info_file} has {n} samples " f"(0..{n - 1})"
            )
        return self.loader(self.data_list[index], self.cfg.data_root, self.lut, self.cfg.points_dir)

    def get(self, index: int, rng: np.random.Generator, train: bool) -> Sample:
        """Sample ``index``, augmented from ``rng`` when ``train``."""
        s = self.load(index)
        if not train:
            return s
        points, boxes = augment(s.points, s.gt_boxes, self.augment, rng)
        return Sample(points, boxes, s.gt_labels, s.sample_idx)
