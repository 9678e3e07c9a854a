"""The one data path from a scene source to network input: global step -> this rank's sparse batch.

Every random choice (order, augmentation, point sampling, in-voxel point choice) is drawn from generators seeded
by (seed, epoch, position in the epoch), so the batch of a step does not depend on what ran before: a resumed run,
any number of DataLoader workers and every DDP rank see exactly the data of an uninterrupted run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

import numpy as np
import torch

from sr3d_core.config import Config
from sr3d_core.data.balance import epoch_indices, repeat_factors
from sr3d_core.data.sources import SceneSource
from sr3d_core.preprocess import InputContract, prepare_points, to_sparse_batch

if TYPE_CHECKING:
    from sr3d_core.sparse import SparseTensor

# Third seed word of an epoch's permutation (item generators use the position there instead).
_ORDER_STREAM = 7


@dataclass
class Batch:
    """A collated batch: the sparse input and each scene's GT."""

    x: SparseTensor
    gt_boxes: list[torch.Tensor]
    gt_labels: list[torch.Tensor]


def item_rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    """Generator of one sample draw; independent of anything run before."""
    return np.random.default_rng([seed, epoch, position])


def iters_per_epoch(num_scenes: int, repeat: int, batch_size: int) -> int:
    """Steps in one epoch (``repeat`` passes over the scenes, the last batch wrapping around)."""
    return max(1, math.ceil(num_scenes * repeat / batch_size))


class StepDataset(torch.utils.data.Dataset):
    """Maps a global step to this rank's collated batch, so DataLoader workers stay deterministic.

    Scene ``k`` of a step's global batch goes to rank ``k % world``; the batch is collated with
    ``to_sparse_batch`` after ``prepare_points``, the path inference takes too.

    Args:
        source: The scenes (read with ``train=True``).
        contract: The input contract.
        batch_size: Scenes per step, over all ranks.
        seed: Seed of every draw.
        repeat: Passes over the scenes per epoch.
        rank / world: DDP rank and world size.
        class_balance: 0 draws every scene equally often; a threshold in (0, 1] draws scenes holding rare
            classes more often (``sr3d_core.data.balance``; the source must give ``scene_labels``).
        num_classes: Number of classes (needed with ``class_balance``).
    """

    def __init__(
        self,
        source: SceneSource,
        contract: InputContract,
        batch_size: int,
        seed: int,
        repeat: int = 1,
        rank: int = 0,
        world: int = 1,
        class_balance: float = 0.0,
        num_classes: int = 0,
    ) -> None:
        self.source, self.contract, self.batch_size, self.seed, self.repeat = source, contract, batch_size, seed, repeat
        self.rank, self.world = rank, world
        self.iters_per_epoch = iters_per_epoch(len(source), repeat, batch_size)
        self._perm_cache: dict[int, np.ndarray] = {}
        self._factors: Optional[np.ndarray] = None
        if class_balance > 0:
            labels_of = getattr(source, "scene_labels", None)
            if labels_of is None:
                raise ValueError(f"data.class_balance needs a scene source with scene_labels, not {type(source)}")
            self._factors = repeat_factors([labels_of(i) for i in range(len(source))], num_classes, class_balance)

    @classmethod
    def from_config(cls, source: SceneSource, cfg: Config, rank: int = 0, world: int = 1) -> "StepDataset":
        """The step dataset of an experiment (``train.batch_size``, ``train.seed``, ``data.repeat``,
        ``data.class_balance``)."""
        return cls(
            source,
            cfg.contract,
            cfg.train.batch_size,
            cfg.train.seed,
            cfg.data.repeat,
            rank,
            world,
            cfg.data.class_balance,
            len(cfg.class_names),
        )

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perm_cache:
            n = len(self.source) * self.repeat
            rng = np.random.default_rng([self.seed, epoch, _ORDER_STREAM])
            order = (
                rng.permutation(n)
                if self._factors is None
                else epoch_indices(np.tile(self._factors, self.repeat), n, rng)
            )
            self._perm_cache = {epoch: order}
        return self._perm_cache[epoch]

    def __len__(self) -> int:
        return 1 << 62  # indexed by global step, without end; StepSampler bounds a run

    def __getitem__(self, step: int) -> Batch:
        epoch, pos = divmod(step, self.iters_per_epoch)
        perm = self._perm(epoch)
        bs = self.batch_size
        idx = [int(perm[(pos * bs + k) % len(perm)]) for k in range(bs)]
        prepared, boxes, labels = [], [], []
        for k in range(self.rank, bs, self.world):
            rng = item_rng(self.seed, epoch, pos * bs + k)
            scene = self.source.get(idx[k] % len(self.source), rng, train=True)
            prepared.append(prepare_points(scene.points, self.contract, rng=rng))
            boxes.append(torch.as_tensor(scene.gt_boxes, dtype=torch.float32))
            labels.append(torch.as_tensor(scene.gt_labels, dtype=torch.long))
        # The in-voxel point choice has its own generator, one past the batch's items.
        voxel_seed = int(item_rng(self.seed, epoch, pos * bs + bs).integers(2**31))
        x, _ = to_sparse_batch(prepared, self.contract, reduce="random", seed=voxel_seed)
        return Batch(x, boxes, labels)


class StepSampler(torch.utils.data.Sampler):
    """Yields the global steps ``start .. total - 1``."""

    def __init__(self, start: int, total: int) -> None:
        self.start, self.total = start, total

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.total))

    def __len__(self) -> int:
        return self.total - self.start


def step_loader(dataset: StepDataset, start: int, total: int, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader yielding the batches of steps ``start .. total - 1`` (already collated by ``dataset``)."""
    return torch.utils.data.DataLoader(
        dataset, sampler=StepSampler(start, total), batch_size=None, num_workers=num_workers
    )
