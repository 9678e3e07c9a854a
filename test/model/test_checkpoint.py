"""Opening or converting a checkpoint cannot run code; older checkpoints are refused with the safe conversion."""

import os
import pickle

import numpy as np
import pytest
import torch

from sr3d_core.config import load_config
from sr3d_core.model.checkpoint import (
    LEGACY_GLOBALS,
    CheckpointError,
    convert_legacy,
    load_checkpoint,
    make_checkpoint,
    save_atomic,
)
from sr3d_core.model.checkpoint import main as checkpoint_main
from sr3d_core.model.network import build_network


class Payload:
    """Unpickling this writes a marker file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def small_checkpoint():
    cfg = load_config("toy_tiny")
    torch.manual_seed(0)
    return make_checkpoint(cfg, build_network(cfg))


def test_code_payload_is_not_run(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = small_checkpoint()
    ckpt["config"]["name"] = Payload(marker)
    path = tmp_path / "evil.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="not opened"):
        load_checkpoint(path)
    assert not marker.exists()
    # A plain pickle (not a torch zip) with a payload is refused as well.
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"format": "sr3d-checkpoint", "x": Payload(marker)}, f)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pkl")
    assert not marker.exists()


def old_training_checkpoint(step=3):
    """A checkpoint as SR3D wrote them before its RNG state held only tensors (training/train.py then): AdamW,
    LambdaLR and ``np.random.get_state()`` in the training state."""
    import random

    cfg = load_config("toy_tiny")
    torch.manual_seed(0)
    model = build_network(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    ts = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step, "rng": [state], "world_size": 1}
    return make_checkpoint(cfg, model, ts)


def test_legacy_allow_list_is_what_old_checkpoints_name(tmp_path):
    torch.save(old_training_checkpoint(), tmp_path / "old.pt")
    names = set(torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "old.pt"))
    assert names == {"numpy.ndarray", "numpy.dtype", "numpy._core.multiarray._reconstruct"} <= LEGACY_GLOBALS
    # The only other name on the list is numpy 1's spelling of the same function.
    assert LEGACY_GLOBALS - names == {"numpy.core.multiarray._reconstruct"}


def test_older_checkpoint_refused_then_converted_without_running_code(tmp_path):
    np.random.seed(5)
    ckpt = old_training_checkpoint()
    want_numpy = ckpt["train_state"]["rng"][0]["numpy"]
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(old)
    msg = str(e.value)
    assert "from an older SR3D version" in msg and "runs no code from the file" in msg
    assert msg.endswith(f"python -m sr3d_core.model.checkpoint --convert {old} {tmp_path / 'old_converted.pt'}")
    assert "trust" not in msg and "weights_only=False" not in msg
    # Full unpickling is never used: the conversion must work with it made impossible.
    real_load = torch.load

    def weights_only_load(*args, **kw):
        assert kw.get("weights_only") is True, "torch.load without weights_only=True"
        return real_load(*args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "load", weights_only_load)
        convert_legacy(old, tmp_path / "old_converted.pt")
    got = load_checkpoint(tmp_path / "old_converted.pt")
    assert got["train_state"]["step"] == 3 and got["config"] == ckpt["config"]
    for k, v in ckpt["model"].items():
        assert torch.equal(got["model"][k], v)
    # The numpy state is stored as today's rng_state() stores it, and restores the same generator.
    from sr3d_core.engine.rng import set_rng_state

    n = got["train_state"]["rng"][0]["numpy"]
    assert set(n) == {"name", "keys", "pos", "has_gauss", "cached_gaussian"} and n["keys"].dtype == torch.int64
    set_rng_state(got["train_state"]["rng"][0])
    first = np.random.rand(3)
    np.random.set_state(want_numpy)
    assert np.array_equal(first, np.random.rand(3))


class SystemPayload:
    """Unpickling this would run a shell command that writes a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch_zip", "torch_legacy", "pickle"])
def test_conversion_refuses_payloads_naming_the_global(tmp_path, writer, capsys):
    marker = tmp_path / "pwned"
    ckpt = old_training_checkpoint()  # a real old checkpoint, format tag and all, carrying payloads
    ckpt["train_state"]["extra"] = Payload(marker)
    ckpt["config"]["name"] = SystemPayload(marker)
    path = tmp_path / "evil.pt"
    if writer == "pickle":
        with open(path, "wb") as f:
            pickle.dump(ckpt, f)
    else:
        torch.save(ckpt, path, _use_new_zipfile_serialization=writer == "torch_zip")
    for attempt in (lambda: load_checkpoint(path), lambda: convert_legacy(path, tmp_path / "out.pt")):
        with pytest.raises(CheckpointError) as e:
            attempt()
        assert "os.makedirs" in str(e.value) and "which SR3D checkpoints never hold" in str(e.value)
        assert "--convert" not in str(e.value)
        assert not marker.exists()
    assert not (tmp_path / "out.pt").exists()
    # The command line answers the same on one line, under its old option name too.
    for option in ("--convert", "--convert-trusted"):
        assert checkpoint_main([option, str(path), str(tmp_path / "out.pt")]) == 1
        err = capsys.readouterr().err
        assert (
            err.startswith(
                f"python -m sr3d_core.model.checkpoint: error: checkpoint {path} is not opened: it "
                "names the Python globals "
            )
            and "os.makedirs" in err
            and err.count("\n") == 1
        )
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_conversion_command_writes_a_current_checkpoint(tmp_path, capsys):
    torch.save(old_training_checkpoint(step=7), tmp_path / "old.pt")
    assert checkpoint_main(["--convert", str(tmp_path / "old.pt"), str(tmp_path / "new.pt")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'new.pt'} (opens with weights_only=True)\n"
    assert load_checkpoint(tmp_path / "new.pt")["train_state"]["step"] == 7


def test_training_checkpoint_opens_safely_and_restores_rng(tmp_path):
    import random

    from sr3d_core.engine.rng import rng_state, set_rng_state

    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = rng_state()
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    ckpt = small_checkpoint()
    ckpt["train_state"] = {"rng": [state]}
    save_atomic(ckpt, tmp_path / "t.pt")
    set_rng_state(load_checkpoint(tmp_path / "t.pt")["train_state"]["rng"][0])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want
