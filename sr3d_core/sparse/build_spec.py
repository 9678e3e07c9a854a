"""What the compiled libraries of SR3D are built from, and how: read by ``setup.py`` (at build time, without
importing the package) and by ``sr3d_core.sparse.extension`` (at run time, to tell a stale build from a current one).

Three plain C shared libraries, loaded with ctypes (no Python or torch headers, so one build serves every Python
and torch version of the environment):

* ``sparse``: kernel maps, voxelization's sort-unique and the fused convolution with its gradients
  (``sr3d_core/sparse/libsr3d_sparse.so``);
* ``geometry``: rotated IoU, NMS and the clipped polygon area (``sr3d_core/geometry/libsr3d_geometry.so``);
* ``records``: ``PointCloud2`` record decoding for the ROS node (``sr3d_ros/libsr3d_records.so``).

They are compiled for the portable baseline of the architecture (no ``-march=native``: one build runs on any
x86-64 or AArch64 CPU); the arithmetic kernels are compiled a second time for AVX2 + FMA and chosen at run time.
OpenMP threads them; a compiler without OpenMP gives a one-thread build.

This module imports nothing outside the standard library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

# Compiler flags of every library. -ffp-contract=fast: ISO C mode (-std=c99) turns GCC's fused multiply-adds
# off, and the kernels are written for them (the baseline has none on x86-64; the AVX2 variant and AArch64 do).
CFLAGS = (
    "-O3",
    "-std=c99",
    "-fPIC",
    "-ffp-contract=fast",
    "-fvisibility=hidden",
    "-Wall",
    "-Wno-unknown-pragmas",
    "-Wno-psabi",
)
OPENMP_FLAGS = ("-fopenmp",)
LIBS = ("-lm",)
ENGINE_HEADER = "sr3d_core/sparse/csrc/engine.h"


@dataclass(frozen=True)
class Library:
    """One compiled library.

    Attributes:
        name: Its short name (``sparse``, ``geometry``, ``records``).
        module: Dotted name of the library file without suffix (``sr3d_core.sparse.libsr3d_sparse``): the file is
            ``<module path>.so``, next to the bindings that load it.
        sources: C sources, relative to the repository root.
        headers: Headers they include (part of the digest, so editing one makes the build stale).
    """

    name: str
    module: str
    sources: tuple[str, ...]
    headers: tuple[str, ...] = field(default=())

    @property
    def filename(self) -> str:
        """The library's path relative to the repository (or site-packages) root."""
        return self.module.replace(".", "/") + ".so"

    @property
    def include_dirs(self) -> tuple[str, ...]:
        """Directories of its headers, relative to the root."""
        return tuple(sorted({os.path.dirname(h) for h in self.headers}))


LIBRARIES: dict[str, Library] = {
    "sparse": Library(
        "sparse",
        "sr3d_core.sparse.libsr3d_sparse",
        tuple(f"sr3d_core/sparse/csrc/{f}" for f in ("kernel_map.c", "conv.c", "conv_base.c", "conv_avx2.c")),
        (
            ENGINE_HEADER,
            "sr3d_core/sparse/csrc/conv_types.h",
            "sr3d_core/sparse/csrc/conv_kernels.h",
            "sr3d_core/sparse/csrc/isa.h",
        ),
    ),
    "geometry": Library(
        "geometry",
        "sr3d_core.geometry.libsr3d_geometry",
        tuple(f"sr3d_core/geometry/csrc/{f}" for f in ("geometry.c", "geometry_base.c", "geometry_avx2.c")),
        (ENGINE_HEADER, "sr3d_core/geometry/csrc/box_geometry.h"),
    ),
    "records": Library("records", "sr3d_ros.libsr3d_records", ("sr3d_ros/csrc/records.c",), (ENGINE_HEADER,)),
}


def source_digest(lib: Library, root: Path) -> Optional[str]:
    """A digest of the library's sources, headers and flags under ``root``, or None when a file is missing (an
    installation without its sources: nothing to compare a build with).

    Args:
        lib: The library.
        root: The repository (or site-packages) root.

    Returns:
        16 hex digits, or None.
    """
    h = hashlib.sha256(" ".join(CFLAGS).encode())
    for rel in sorted(lib.sources + lib.headers):
        try:
            data = (root / rel).read_bytes()
        except OSError:
            return None
        h.update(rel.encode() + b"\0" + data + b"\0")
    return h.hexdigest()[:16]


def compiler() -> Optional[str]:
    """The C compiler: ``$CC``, else the first of cc, gcc, clang on the PATH; None without one."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name.split()[0]):
            return name
    return None


def build(lib: Library, root: Path, target: Path, tmp_dir: Path, cc: Optional[str] = None) -> bool:
    """Compile ``lib`` from the sources under ``root`` into ``target`` (written under a temporary name and renamed,
    so a concurrent reader never loads half a file).

    Args:
        lib: The library.
        root: The repository root.
        target: The library file to write.
        tmp_dir: Where object files go.
        cc: The compiler (default: `compiler`).

    Returns:
        True when built with OpenMP, False when the compiler has none (a one-thread library).

    Raises:
        RuntimeError: No compiler, or it failed (its output is in the message).
    """
    cc = cc or compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (tried $CC, cc, gcc, clang)")
    digest = source_digest(lib, root)
    defines = [f'-DSR3D_SOURCE_DIGEST="{digest}"']
    includes = [f"-I{root / d}" for d in lib.include_dirs]
    tmp_dir.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = ""
    for openmp in (OPENMP_FLAGS, ()):
        objects = []
        try:
            for src in lib.sources:
                obj = tmp_dir / (lib.name + "_" + Path(src).stem + (".omp" if openmp else "") + ".o")
                _run([*cc.split(), *CFLAGS, *openmp, *defines, *includes, "-c", str(root / src), "-o", str(obj)])
                objects.append(str(obj))
            partial = target.with_name(target.name + f".tmp{os.getpid()}")
            _run([*cc.split(), "-shared", *openmp, *objects, "-o", str(partial), *LIBS])
            os.replace(partial, target)
            return bool(openmp)
        except RuntimeError as exc:
            errors += str(exc)
    raise RuntimeError(f"{cc} failed to build {lib.filename}:\n{errors[-3000:]}")


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(" ".join(cmd) + "\n" + proc.stderr)
