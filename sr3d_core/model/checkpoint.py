"""Checkpoint format shared by training, inference and the ROS node.

A checkpoint is one ``torch.save`` dict:

- ``format``: ``"sr3d-checkpoint"``, ``version``: 1;
- ``config``: the resolved experiment config (``Config.to_dict()``);
- ``class_names``: list of class names; ``contract``: ``InputContract.to_dict()``;
- ``model``: the model ``state_dict``;
- ``train_state`` (optional): optimizer, scheduler, step, epoch, RNG states, for ``--resume``.
- ``imported_from`` (optional): for weights converted from another framework (``sr3d-import-tr3d``): the tool,
  source layout, dataset, file name and SHA-256 of the source file.

Only tensors and plain Python types are stored, and files are opened with ``weights_only=True``: opening a
checkpoint cannot run code. Writes are atomic (temporary file + ``os.replace``), so a run killed mid-write never
leaves a torn file.
"""

from __future__ import annotations

import argparse
import os
import pickle
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
        # weights_only: only tensors and plain Python types are unpickled, so a file cannot run code.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(
                f"checkpoint {path} holds Python objects beyond tensors and plain types, so it is not opened (a "
                "pickle can run code). If it is an SR3D checkpoint from an older version and you trust where it "
                f"came from, convert it once: python -m sr3d_core.model.checkpoint --convert-trusted {path} "
                f"{path.with_name(path.stem + '_safe.pt')}"
            ) from None
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
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


def plain_types(obj: Any) -> Any:
    """``obj`` with numpy arrays and scalars turned into tensors and Python numbers (what ``weights_only`` opens)."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: plain_types(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain_types(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def convert_trusted(src: Union[str, Path], dst: Union[str, Path]) -> None:
    """Re-save an older checkpoint (numpy RNG states inside) in the plain-types format, opening it with full pickle.

    Only for files whose origin you trust: full unpickling can run code.
    """
    ckpt = torch.load(Path(src), map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{src} is not an SR3D checkpoint (missing format tag {FORMAT!r})")
    save_atomic(plain_types(ckpt), dst)
    load_checkpoint(dst)  # the result must open safely


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m sr3d_core.model.checkpoint --convert-trusted OLD NEW``."""
    ap = argparse.ArgumentParser(description="Convert an older SR3D checkpoint you trust to the safe format.")
    ap.add_argument("--convert-trusted", nargs=2, metavar=("OLD", "NEW"), required=True)
    a = ap.parse_args(argv)
    convert_trusted(*a.convert_trusted)
    print(f"wrote {a.convert_trusted[1]} (opens with weights_only=True)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
