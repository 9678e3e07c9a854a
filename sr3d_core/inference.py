"""Load a checkpoint and detect objects in a point cloud: the API used by scripts and the ROS node.

Example:
    >>> det = Detector.from_checkpoint("models/tr3d_synth.pt", device="cuda")
    >>> det.score_threshold = 0.3
    >>> result = det.detect(points)  # (N, 6) xyz + RGB in [0, 1]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
import torch

from sr3d_core.config import Config, PostprocessConfig, load_config
from sr3d_core.detections import Detections
from sr3d_core.model.checkpoint import CheckpointError, config_of, load_checkpoint, make_checkpoint, save_atomic
from sr3d_core.postprocess import PostprocessCounts, postprocess_scene, with_overrides
from sr3d_core.preprocess import (
    InputContract,
    PrepareStats,
    prepare_points_with_stats,
    sparse_to,
    to_sparse_batch,
)
from sr3d_core.runtime import resolve_device

if TYPE_CHECKING:  # the network and the sparse package load with a model, not at import
    from sr3d_core.model.network import TR3DNetwork
    from sr3d_core.sparse import SparseTensor

# Fixed seed for the random in-voxel point choice at inference: detect() is deterministic.
INFERENCE_VOXEL_SEED = 0


class Detector:
    """A loaded detector: ``detect(points) -> Detections``.

    Args:
        model: the network (already loaded).
        cfg: its experiment config.
        device: where it runs.
    """

    def __init__(self, model: torch.nn.Module, cfg: Config, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.config = cfg
        self.device = device
        self._post = cfg.postprocess
        self._contract = cfg.contract
        self._folded: Optional[torch.nn.Module] = None
        self._folded_from: tuple[torch.Tensor, ...] = ()
        self._folded_stamp: tuple[int, ...] = ()
        self._counts = PostprocessCounts()

    @property
    def non_finite_boxes(self) -> int:
        """Predicted boxes dropped since this detector was made because the network gave a NaN score or a NaN or
        infinite box for them (the rest of each frame is detected as usual); non-zero points at broken weights or
        input far outside what the model was trained on."""
        return self._counts.non_finite

    def inference_network(self) -> torch.nn.Module:
        """The network ``detect`` runs: a copy of ``model`` with its batch norms folded into the convs
        (`sparse.fold_batch_norms`), made again whenever ``model``'s weights or statistics change in place (e.g. by
        ``load_state_dict``)."""
        stamp = tuple(t._version for t in self._folded_from)
        if self._folded is None or stamp != self._folded_stamp:
            from sr3d_core.sparse import fold_batch_norms

            self._folded = fold_batch_norms(self.model)
            self._folded_from = (*self.model.parameters(), *self.model.buffers())
            self._folded_stamp = tuple(t._version for t in self._folded_from)
        return self._folded

    @classmethod
    def from_checkpoint(
        cls,
        path: Union[str, Path],
        device: Union[str, torch.device] = "cpu",
        config: Union[str, Path, Config, None] = None,
    ) -> "Detector":
        """Load a checkpoint written by training (or ``write_random_checkpoint``).

        Args:
            path: checkpoint file.
            device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; CUDA falls back to the CPU with a warning.
            config: optional config (preset name, YAML path or ``Config``) the checkpoint must agree with on the
                class names.

        Raises:
            FileNotFoundError: no such checkpoint.
            CheckpointError: corrupt file, wrong format, or weights that do not fit the stored config.
            ValueError: class names differ from ``config``.
        """
        from sr3d_core.model.network import build_network

        ckpt = load_checkpoint(path)
        cfg = config_of(ckpt, source=f"{path}:config")
        if tuple(ckpt["class_names"]) != cfg.class_names:
            raise CheckpointError(f"{path}: class_names entry disagrees with its own config")
        if config is not None:
            want = config if isinstance(config, Config) else load_config(config)
            if want.class_names != cfg.class_names:
                raise ValueError(
                    f"class mismatch: checkpoint {path} has classes {list(cfg.class_names)} but the requested "
                    f"config {want.name!r} has {list(want.class_names)}"
                )
        model = build_network(cfg)
        try:
            model.load_state_dict(ckpt["model"], strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint {path}: weights do not match its config: {e}") from e
        return cls(model, cfg, resolve_device(device))

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names, in label order."""
        return self.config.class_names

    @property
    def contract(self) -> InputContract:
        """The input contract the model was trained with."""
        return self._contract

    @property
    def postprocess(self) -> PostprocessConfig:
        """Current post-processing settings."""
        return self._post

    def set_postprocess(self, **kw: Optional[float]) -> None:
        """Change ``score_threshold``, ``nms_iou``, ``max_detections`` or ``nms_pre`` without reloading."""
        self._post = with_overrides(self._post, **kw)

    @property
    def score_threshold(self) -> float:
        """Per-class score threshold."""
        return self._post.score_threshold

    @score_threshold.setter
    def score_threshold(self, v: float) -> None:
        self.set_postprocess(score_threshold=float(v))

    @property
    def nms_iou(self) -> float:
        """BEV NMS IoU threshold."""
        return self._post.nms_iou

    @nms_iou.setter
    def nms_iou(self, v: float) -> None:
        self.set_postprocess(nms_iou=float(v))

    @property
    def max_detections(self) -> Optional[int]:
        """Cap on detections per frame (None = no cap)."""
        return self._post.max_detections

    @max_detections.setter
    def max_detections(self, v: Optional[int]) -> None:
        self.set_postprocess(max_detections=None if v is None else int(v))

    def detect(
        self, points: np.ndarray, *, rng: Optional[np.random.Generator] = None, voxel_seed: int = INFERENCE_VOXEL_SEED
    ) -> Detections:
        """Detect objects in one cloud.

        Args:
            points: ``(N, 3 + C)`` float array in the gravity-aligned z-up frame; with ``contract.use_color`` the
                columns 3:6 are RGB in [0, 1]. Colours in 0-255 (any value above 1) are divided by 255, as the
                ROS node does; rows with NaN/inf, outside the contract's ``point_range`` or beyond the sparse
                grid's reach are dropped (``detect_with_stats`` counts them).
            rng: Draws the contract's ``max_points`` cap at random (evaluation repeats of a test-time sampling);
                None keeps the deterministic strided cap.
            voxel_seed: Seed of the random in-voxel point choice (fixed by default: ``detect`` is deterministic).

        Returns:
            Detections in the frame of the points. A predicted box that is NaN or infinite, or has a NaN score, is
            left out (``non_finite_boxes`` counts them); the other boxes are unaffected.

        Raises:
            ValueError: wrong shape, column count or dtype (from ``prepare_points``).
        """
        return self.detect_with_stats(points, rng=rng, voxel_seed=voxel_seed)[0]

    @torch.no_grad()
    def detect_with_stats(
        self, points: np.ndarray, *, rng: Optional[np.random.Generator] = None, voxel_seed: int = INFERENCE_VOXEL_SEED
    ) -> tuple[Detections, PrepareStats]:
        """``detect``, plus the counts of what preprocessing removed or rescaled."""
        x, stats = self.network_input(points, rng=rng, voxel_seed=voxel_seed)
        return self.detect_input(x), stats

    @torch.no_grad()
    def detect_input(self, x: Optional[SparseTensor]) -> Detections:
        """Network and post-processing on a batch from ``network_input`` (empty detections for None).

        ``detect`` is ``network_input`` followed by this; a pipeline can run the two on different threads.
        """
        if x is None:
            return Detections.empty(self.class_names)
        return predict(self.inference_network(), x, self._post, self.class_names, self._counts)[0]

    def network_input(
        self, points: np.ndarray, *, rng: Optional[np.random.Generator] = None, voxel_seed: int = INFERENCE_VOXEL_SEED
    ) -> tuple[Optional[SparseTensor], PrepareStats]:
        """The one-scene sparse batch ``detect`` feeds the network, on the detector's device.

        Args:
            points: The cloud, as for ``detect``.
            rng: Random ``max_points`` cap, as for ``detect``.
            voxel_seed: In-voxel point choice, as for ``detect``.

        Returns:
            The batch (None when preprocessing leaves no point) and the preprocessing counts.
        """
        prepared, stats = prepare_points_with_stats(points, self._contract, rng=rng)
        if len(prepared) == 0:
            return None, stats
        x, _ = to_sparse_batch([prepared], self._contract, reduce="random", seed=voxel_seed)
        return sparse_to(x, self.device), stats


@torch.no_grad()
def predict(
    model: TR3DNetwork,
    x: SparseTensor,
    post_cfg: PostprocessConfig,
    class_names: tuple[str, ...],
    counts: Optional[PostprocessCounts] = None,
) -> list[Detections]:
    """Run the network and post-process every scene of the batch; anchors with non-finite outputs are dropped
    and added to ``counts`` (``postprocess_scene``)."""
    from sr3d_core.model.head import decode_boxes

    out = model(x)
    results = []
    for idx in out.scene_indices():
        if len(idx) == len(out.batch):  # one scene (the node's case): every row, no gathers
            anchors, reg, cls = out.anchors, out.reg, out.cls_logits
        else:
            anchors, reg, cls = (t.index_select(0, idx) for t in (out.anchors, out.reg, out.cls_logits))

        def decode(keep: torch.Tensor, anchors=anchors, reg=reg) -> torch.Tensor:
            return decode_boxes(anchors[keep], reg[keep], model.cfg.tr3d_height_quirk)

        rotated = model.cfg.box_type == "rotated"
        results.append(postprocess_scene(cls, decode, post_cfg, rotated, class_names, counts))
    return results


def write_random_checkpoint(
    path: Union[str, Path], config_name_or_path: Union[str, Path, Config], seed: int = 0
) -> Path:
    """Write a random-weight checkpoint in the training format (for node and integration tests).

    Args:
        path: output file.
        config_name_or_path: preset name, YAML path or ``Config``.
        seed: torch seed for the weights.

    Returns:
        The path written.
    """
    from sr3d_core.model.network import build_network

    cfg = config_name_or_path if isinstance(config_name_or_path, Config) else load_config(config_name_or_path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_network(cfg)
    save_atomic(make_checkpoint(cfg, model), path)
    return Path(path)


__all__ = ["CheckpointError", "Detector", "predict", "resolve_device", "write_random_checkpoint"]
