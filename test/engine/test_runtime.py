"""Process settings: the allocator tuning is applied once on glibc and can be switched off."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = "import sr3d_core.runtime as r; print(r.keep_freed_memory(), r.keep_freed_memory())"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_freed_memory_applies_once_and_honours_opt_out():
    on = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    assert on == ["True", "True"]
    off = subprocess.run(
        [sys.executable, "-c", CODE],
        capture_output=True,
        text=True,
        check=True,
        env={"SR3D_KEEP_FREED_MEMORY": "0", "PATH": ""},
    ).stdout.split()
    assert off == ["False", "False"]


def test_one_device_rule_with_a_warning_when_cuda_is_missing(monkeypatch) -> None:
    import torch

    from sr3d_core.engine.distributed import DistContext
    from sr3d_core.runtime import choose_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("cpu") == (torch.device("cpu"), None)
    for name in ("cuda", "cuda:1", "auto"):
        dev, warning = choose_device(name)
        assert dev == torch.device("cpu") and f"'{name}'" in warning and "CUDA is not available" in warning
    assert DistContext(1, 0, 0).device("auto") == torch.device("cpu")  # training's auto: the CPU, no warning
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert DistContext(1, 0, 0).device("cuda:0") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert choose_device("cuda:1") == (torch.device("cuda:1"), None)
    assert choose_device("cuda", local_rank=1) == (torch.device("cuda:1"), None)  # a rank's own GPU
    dev, warning = choose_device("cuda:5")
    assert dev == torch.device("cuda:0") and "does not exist" in warning
