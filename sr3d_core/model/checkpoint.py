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

Checkpoints of older versions held numpy's RNG state as a numpy array. ``convert_legacy`` (``python -m
sr3d_core.model.checkpoint --convert OLD NEW``) rewrites one in today's format; it opens the file with torch's
weights-only unpickler allowed exactly the numpy globals such files name (``LEGACY_GLOBALS``), so it cannot run
code from the file either.
"""

from __future__ import annotations

import argparse
import os
import pickle
import pickletools
import re
import sys
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from sr3d_core.config import Config

FORMAT = "sr3d-checkpoint"
VERSION = 1

#: The Python globals a checkpoint of an older SR3D version names: its training state held
#: ``np.random.get_state()``, whose MT19937 key array pickles through these (``numpy._core`` under numpy 2, which
#: the project pins; ``numpy.core`` under the numpy 1 of a system ROS). Python's and torch's RNG states, the
#: optimizer and the LambdaLR schedule (its function left out) are tensors and plain types.
LEGACY_GLOBALS: frozenset[str] = frozenset(
    {
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray._reconstruct",
        "numpy.ndarray",
        "numpy.dtype",
    }
)


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
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C or a full disk mid-write: the previous file stays, and no partial one
        tmp.unlink(missing_ok=True)
        raise


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
        names = _globals_named(path, e)
        if not names:
            raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {_unpickler_reason(e)}") from None
        foreign = sorted(set(names) - LEGACY_GLOBALS)
        if foreign:
            raise CheckpointError(_foreign_message(path, foreign)) from None
        raise CheckpointError(
            f"checkpoint {path} is from an older SR3D version (numpy arrays in its training state), so it is not "
            f"opened as it is; convert it once (the conversion runs no code from the file): python -m "
            f"sr3d_core.model.checkpoint --convert {path} {path.with_name(path.stem + '_converted.pt')}"
        ) from None
    except Exception as e:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
    _check_format(ckpt, path)
    return ckpt


def _check_format(ckpt: Any, path: Path) -> None:
    """Raise ``CheckpointError`` unless ``ckpt`` is an SR3D checkpoint dict with every required entry."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an SR3D checkpoint (missing format tag {FORMAT!r})")
    for key in ("config", "class_names", "contract", "model"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} lacks the {key!r} entry")


def _foreign_message(path: Path, names: list[str]) -> str:
    return (
        f"checkpoint {path} is not opened: it names the Python global{'s' if len(names) > 1 else ''} "
        f"{', '.join(names)}, which SR3D checkpoints never hold (unpickling it could run code); it is not an "
        "SR3D checkpoint of any version"
    )


def _globals_named(path: Path, error: Optional[Exception] = None) -> list[str]:
    """The Python globals ``path`` names beyond tensors and plain types, read without unpickling anything.

    A ``torch.save`` zip archive is listed by torch; any other file is scanned opcode by opcode
    (``_scan_pickle_globals``), and the global the weights-only unpickler stopped at (named in ``error``) is
    added. Empty for a file that names none (then ``error``, if any, is about damage).
    """
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except (ValueError, RuntimeError, OSError, pickle.UnpicklingError):  # not a zip archive, or a damaged one
        # What torch's weights-only unpickler allows by itself (tensors, storages, OrderedDict) is no concern; a
        # torch name it refuses is named in ``error``.
        names = {n for n in _scan_pickle_globals(path) if not n.startswith("torch.") and n not in _TORCH_ALLOWED}
        names.update(re.findall(r"GLOBAL ([\w.]+)", str(error or "")))
        return sorted(names)


# Globals outside ``torch`` that torch's weights-only unpickler rebuilds by itself.
_TORCH_ALLOWED = {
    "collections.OrderedDict",
    "_codecs.encode",
    "builtins.set",
    "builtins.frozenset",
    "builtins.bytearray",
    "builtins.complex",
}


# Opcodes that push a string (a global's module or name for STACK_GLOBAL), and those that name memo slots.
_STRING_OPS = {"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING", "SHORT_BINSTRING"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _scan_pickle_globals(path: Path, max_pickles: int = 5) -> list[str]:
    """The globals named by the pickles at the start of ``path`` (a plain pickle, or the few pickles of torch's
    pre-1.6 format before its raw storage bytes), from ``pickletools.genops``: parsed, never executed.

    ``STACK_GLOBAL`` takes its module and name from the two values pushed before it; the scan follows only what
    it needs for that (strings, and strings fetched back from the memo).
    """
    names: list[str] = []
    with open(path, "rb") as f:
        for _ in range(max_pickles):
            pushed: list[Optional[str]] = []  # what each op pushed: a string, or None for anything else
            memo: dict[int, Optional[str]] = {}
            try:
                for op, arg, _ in pickletools.genops(f):
                    if op.name in ("GLOBAL", "INST"):
                        names.append(str(arg).replace(" ", "."))
                    elif op.name == "STACK_GLOBAL" and len(pushed) >= 2 and None not in pushed[-2:]:
                        names.append(f"{pushed[-2]}.{pushed[-1]}")
                    if op.name in _STRING_OPS:
                        pushed.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
                    elif op.name in _GET_OPS:
                        pushed.append(memo.get(arg))
                    elif op.name == "MEMOIZE":
                        memo[len(memo)] = pushed[-1] if pushed else None
                    elif op.name in _PUT_OPS:
                        memo[arg] = pushed[-1] if pushed else None
                    elif op.stack_after:
                        pushed.append(None)
            except (ValueError, EOFError):  # past the pickles: raw bytes or the end of the file
                break
    return names


def _unpickler_reason(e: Exception) -> str:
    """The line of torch's weights-only error that says what failed (its other lines are generic advice)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.endswith("WeightsUnpickler error:") and i + 1 < len(lines):
            return lines[i + 1]
    return lines[-1] if lines else type(e).__name__


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


def _legacy_safe_globals() -> list[Any]:
    """What torch's weights-only unpickler must be allowed to rebuild ``LEGACY_GLOBALS``: the three numpy names
    (``_reconstruct`` under both module names) and the class of the uint32 dtype the key array has."""
    reconstruct = np.ndarray.__reduce__(np.zeros(1, np.uint32))[0]  # numpy's own, under either module name
    allowed: list[Any] = [np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    allowed += [(reconstruct, name) for name in LEGACY_GLOBALS if name.endswith("._reconstruct")]
    return allowed


def open_legacy(path: Union[str, Path]) -> dict:
    """Open a checkpoint of an older SR3D version without running code from it.

    The file's globals are listed first (without unpickling) and refused unless all are in ``LEGACY_GLOBALS``;
    it is then opened by torch's weights-only unpickler, allowed those globals only.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file names any other global (the message names them), is damaged, or is not an
            SR3D checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    foreign = sorted(set(_globals_named(path)) - LEGACY_GLOBALS)
    if foreign:
        raise CheckpointError(_foreign_message(path, foreign))
    try:
        with torch.serialization.safe_globals(_legacy_safe_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        foreign = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(e))) - LEGACY_GLOBALS)
        if foreign:
            raise CheckpointError(_foreign_message(path, foreign)) from None
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {_unpickler_reason(e)}") from None
    except Exception as e:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
    _check_format(ckpt, path)
    return ckpt


def _numpy_rng_as_plain(state: Any) -> Any:
    """``np.random.get_state()``'s tuple as today's ``rng_state()`` stores it; anything else unchanged."""
    if isinstance(state, tuple) and len(state) == 5 and isinstance(state[1], np.ndarray):
        name, keys, pos, has_gauss, gauss = state
        return {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(gauss),
        }
    return state


def convert_legacy(src: Union[str, Path], dst: Union[str, Path]) -> None:
    """Rewrite a checkpoint of an older SR3D version in today's format (``open_legacy`` reads it: no code runs).

    The numpy RNG states of its training state become what ``rng_state()`` stores today; anything else numpy
    becomes tensors and Python numbers. The result opens with ``load_checkpoint``.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: see ``open_legacy``.
    """
    ckpt = open_legacy(src)
    ts = ckpt.get("train_state")
    if isinstance(ts, dict) and isinstance(ts.get("rng"), list):
        ts["rng"] = [
            dict(r, numpy=_numpy_rng_as_plain(r["numpy"])) if isinstance(r, dict) and "numpy" in r else r
            for r in ts["rng"]
        ]
    save_atomic(plain_types(ckpt), dst)
    load_checkpoint(dst)  # the result must open as a current checkpoint


PROG = "python -m sr3d_core.model.checkpoint"


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m sr3d_core.model.checkpoint --convert OLD NEW``; returns 0, or 1 with the reason on stderr."""
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a checkpoint of an older SR3D version to today's format. The old file is "
        "read by torch's weights-only unpickler, allowed only the numpy globals such checkpoints hold, so no code "
        "from it runs.",
    )
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--convert", nargs=2, metavar=("OLD", "NEW"))
    # The older spelling, still accepted: it now runs the same conversion, which needs no trust.
    group.add_argument("--convert-trusted", nargs=2, metavar=("OLD", "NEW"), dest="convert", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    src, dst = a.convert
    try:
        convert_legacy(src, dst)
    except (FileNotFoundError, CheckpointError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {dst} (opens with weights_only=True)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
