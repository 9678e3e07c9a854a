"""Installs sr3d_core (the detector library) and sr3d_ros (its ROS 2 layer) as one ament_python package."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE_NAME = "sr3d_ros"
HERE = os.path.dirname(os.path.abspath(__file__))


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
    # The C source of the optional compiled kernel maps, built on first use (sr3d_core.sparse.native).
    package_data={"sr3d_core.sparse": ["native/*.c"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE_NAME]),
        ("share/" + PACKAGE_NAME, ["package.xml"]),
        ("share/" + PACKAGE_NAME + "/launch", _files("launch/*.launch.py")),
        ("share/" + PACKAGE_NAME + "/config",
         _files("config/*.yaml") + _files("config/*.rviz") + _files("config/*.xml")),
        ("share/" + PACKAGE_NAME + "/config/models", _files("config/models/*.yaml")),
    ],
    # Runtime dependencies are pinned and installed by scripts/setup.sh (torch needs a
    # machine-specific build), so none are declared here: pip must not replace them.
    install_requires=["setuptools"],
    zip_safe=True,
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
        ],
    },
)
