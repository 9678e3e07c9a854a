"""Opening a checkpoint cannot run code; older checkpoints are refused with the way to convert them."""

import os
import pickle

import numpy as np
import pytest
import torch

from sr3d_core.config import load_config
from sr3d_core.model.checkpoint import CheckpointError, convert_trusted, load_checkpoint, make_checkpoint, save_atomic
from sr3d_core.model.detector import build_network


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


def test_older_checkpoint_refused_then_converted(tmp_path):
    ckpt = small_checkpoint()
    ckpt["train_state"] = {"step": 3, "rng": [{"numpy": np.random.get_state()}]}  # numpy arrays: the old format
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    with pytest.raises(CheckpointError, match=r"--convert-trusted .*old.pt .*old_safe.pt"):
        load_checkpoint(old)
    convert_trusted(old, tmp_path / "old_safe.pt")
    got = load_checkpoint(tmp_path / "old_safe.pt")
    assert got["train_state"]["step"] == 3
    for k, v in ckpt["model"].items():
        assert torch.equal(got["model"][k], v)
    keys = got["train_state"]["rng"][0]["numpy"][1]
    assert isinstance(keys, torch.Tensor) and np.array_equal(keys.numpy(), ckpt["train_state"]["rng"][0]["numpy"][1])


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
