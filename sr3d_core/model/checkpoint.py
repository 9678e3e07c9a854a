"""Checkpoint format shared by training, inference and the ROS node.

A checkpoint is one ``torch.save`` dict:

- ``format``: ``"sr3d-checkpoint"``, ``version``: 1;
- ``config``: the resolved experiment config (``Config.to_dict()``);
- ``class_names``: list of class names; ``contract``: ``InputContract.to_dict()``;
- ``model``: the model ``state_dict``;
- ``train_state`` (optional): optimizer, scheduler, step, epoch, RNG states, for ``--resume``.

Writes are atomic (temporary file + ``os.replace``), so a run killed mid-write never leaves a torn file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import torch

from sr3d_core.config import Config

FORMAT = "sr3d-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not in the SR3D format."""


def make_checkpoint(cfg: Config, model: torch.nn.Module, train_state: Optional[dict[str, Any]] = None) -> dict:
    """Assemble the checkpoint dict (tensors moved to CPU)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "config": cfg.to_dict(),
        "class_names": list(cfg.class_names),
        "contract": cfg.contract.to_dict(),
        "model": state,
    }
    if train_state is not None:
        ckpt["train_state"] = train_state
    return ckpt


def save_atomic(obj: Any, path: Union[str, Path]) -> None:
    """``torch.save`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Union[str, Path]) -> dict:
    """Load and validate a checkpoint on the CPU.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable, truncated or not an SR3D checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        # weights_only=False: the train state holds numpy/python RNG states (our own files only).
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an SR3D checkpoint (missing format tag {FORMAT!r})")
    for key in ("config", "class_names", "contract", "model"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} lacks the {key!r} entry")
    return ckpt


def config_of(ckpt: dict, source: str = "<checkpoint>") -> Config:
    """The config stored in a checkpoint."""
    return Config.from_dict(ckpt["config"], source=source)
