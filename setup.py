"""Installs sr3d_core (the detector library) and sr3d_ros (its ROS 2 layer) as one ament_python package."""

import importlib.util
import os
import sys
from glob import glob
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

PACKAGE_NAME = "sr3d_ros"
HERE = os.path.dirname(os.path.abspath(__file__))


def _build_spec():
    """sr3d_core/sparse/build_spec.py, loaded by path: importing sr3d_core would import torch."""
    path = os.path.join(HERE, "sr3d_core", "sparse", "build_spec.py")
    spec = importlib.util.spec_from_file_location("sr3d_build_spec", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


BUILD_SPEC = _build_spec()


class BuildLibraries(build_ext):
    """Builds the compiled engine's plain C shared libraries (loaded with ctypes, not imported: no Python or torch
    headers, so one build serves any Python and torch of the environment) with the flags of build_spec: the
    portable baseline plus AVX2/FMA kernels chosen at run time, OpenMP when the compiler has it.

    A failed build does not fail the installation: the package runs on its pure-PyTorch twins, and says so once
    at run time (``sr3d-doctor`` tells which paths are active).
    """

    def get_ext_filename(self, fullname: str) -> str:
        return os.path.join(*fullname.split(".")) + ".so"  # a plain library: no Python ABI tag

    def build_extension(self, ext: Extension) -> None:
        lib = BUILD_SPEC.LIBRARIES[ext.sr3d_name]
        target = Path(self.get_ext_fullpath(ext.name))
        digest = BUILD_SPEC.source_digest(lib, Path(HERE))
        if not self.force and target.is_file() and digest and digest.encode() in target.read_bytes():
            print(f"sr3d: {lib.filename} is up to date")
            return
        try:
            openmp = BUILD_SPEC.build(lib, Path(HERE), target, Path(self.build_temp) / "sr3d")
        except RuntimeError as exc:
            print(
                f"WARNING: sr3d: the compiled {lib.name} library was not built; the pure-PyTorch path will be "
                f"used.\n{exc}",
                file=sys.stderr,
            )
            return
        print(f"sr3d: built {target}" + ("" if openmp else " (no OpenMP: one thread)"))


def _extensions() -> list[Extension]:
    exts = []
    for lib in BUILD_SPEC.LIBRARIES.values():
        ext = Extension(lib.module, sources=list(lib.sources), depends=list(lib.headers))
        ext.sr3d_name = lib.name
        exts.append(ext)
    return exts


def _files(pattern: str) -> list[str]:
    """Returns the repository-relative files matching ``pattern``, sorted.

    Globbing (instead of listing files) means launch/config files added later are installed
    without touching this file.

    Args:
        pattern: A glob relative to the repository root.

    Returns:
        Sorted relative paths of the regular files that match.
    """
    found = glob(os.path.join(HERE, pattern))
    return sorted(os.path.relpath(p, HERE) for p in found if os.path.isfile(p))


setup(
    name=PACKAGE_NAME,
    version="0.1.0",
    packages=find_packages(where=HERE, include=["sr3d_core*", "sr3d_ros*"]),
    # The compiled engine (built by BuildLibraries), with its sources: a build is checked against them at run time.
    ext_modules=_extensions(),
    cmdclass={"build_ext": BuildLibraries},
    package_data={
        "sr3d_core.sparse": ["csrc/*.c", "csrc/*.h"],
        "sr3d_core.geometry": ["csrc/*.c", "csrc/*.h"],
        "sr3d_ros": ["csrc/*.c"],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE_NAME]),
        ("share/" + PACKAGE_NAME, ["package.xml"]),
        ("share/" + PACKAGE_NAME + "/launch", _files("launch/*.launch.py")),
        (
            "share/" + PACKAGE_NAME + "/config",
            _files("config/*.yaml") + _files("config/*.rviz") + _files("config/*.xml"),
        ),
        ("share/" + PACKAGE_NAME + "/config/models", _files("config/models/*.yaml")),
    ],
    # Runtime dependencies are pinned and installed by scripts/setup.sh (torch needs a
    # machine-specific build), so none are declared here: pip must not replace them.
    install_requires=["setuptools"],
    zip_safe=False,  # the compiled libraries are loaded from files
    maintainer="SR3D maintainers",
    maintainer_email="sr3d@example.com",
    description="Sparse 3D object detection for indoor point clouds, with a ROS 2 node.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "sr3d_detector_node = sr3d_ros.detector_node:main",
            "sr3d_detector_node_plain = sr3d_ros.detector_node:main_plain",
            "sr3d-replay = sr3d_ros.replay:main",
            "sr3d-import-tr3d = sr3d_core.model.import_tr3d:main",
            "sr3d-train = sr3d_core.engine.cli:main",
            "sr3d-evaluate = sr3d_core.evaluation.cli:main",
            "sr3d-doctor = sr3d_core.sparse.doctor:main",
        ],
    },
)
