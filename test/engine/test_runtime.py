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
    off = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True,
                         env={"SR3D_KEEP_FREED_MEMORY": "0", "PATH": ""}).stdout.split()
    assert off == ["False", "False"]
