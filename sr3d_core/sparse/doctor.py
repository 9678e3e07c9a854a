"""``sr3d-doctor``: which compiled paths this installation uses, and why not where it does not.

Prints one line per compiled library (state, instruction set, OpenMP, file), torch's thread count (the compiled
calls use the same), and which convolution a float32 CPU layer runs. Exits 1 when a library is not active, so
``make check`` fails on a machine that would quietly run the slow path.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import torch

from . import extension

# The bindings of every library: importing them registers it.
BINDINGS = ("sr3d_core.sparse.native", "sr3d_core.geometry.native", "sr3d_ros.native_records")


def statuses() -> list[extension.Status]:
    """The status of every compiled library (loading each once)."""
    out = []
    for module in BINDINGS:
        out.append(importlib.import_module(module).LIBRARY.status())
    return out


def conv_path() -> str:
    """What the ``auto`` convolution of a float32 CPU layer runs: the compiled fused kernels or PyTorch's GEMMs."""
    from . import native

    return "compiled fused gather-GEMM" if native.available(torch.zeros(1)) else "PyTorch per-offset GEMMs"


def main(argv: list[str] | None = None) -> int:
    """Print the report; 0 when every compiled library is active, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="sr3d-doctor", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    ok = True
    print(f"torch {torch.__version__}: {torch.get_num_threads()} intra-op threads (the compiled calls use as many)")
    for st in statuses():
        ok &= st.state == "active"
        line = f"  {st.name:<9} {st.state:<12}"
        if st.isa or st.openmp:
            line += f" isa={st.isa or '-'} openmp={'yes' if st.openmp else 'no (one thread)'}"
        print(line + f"  {st.path}" + (f"\n            {st.detail}" if st.detail else ""))
    print(f"sparse convolution (float32, CPU): {conv_path()}")
    if not ok:
        print(f"Some compiled paths are not active: to fix, {extension.FIX}.", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
