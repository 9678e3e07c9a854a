"""Helpers for the ROS tests: make a plain `.venv/bin/python -m pytest` behave like `make test`.

`make test` sources scripts/env.sh; a developer running pytest straight from the venv has not.
The venv prefix holds the share/ trees of the ROS wheels and of the interface packages that
scripts/setup.sh built, so ament_index look-ups and colcon need it on AMENT_PREFIX_PATH.
"""

import os
import sys
from pathlib import Path


def _prepend(var: str, entry: str) -> None:
    """Prepends ``entry`` to the path-list environment variable ``var`` unless already there.

    Args:
        var: Name of the environment variable (e.g. ``AMENT_PREFIX_PATH``).
        entry: Directory to put first.
    """
    parts = [p for p in os.environ.get(var, "").split(os.pathsep) if p]
    if entry not in parts:
        os.environ[var] = os.pathsep.join([entry, *parts])


if (Path(sys.prefix) / "share" / "ament_index").is_dir():
    _prepend("AMENT_PREFIX_PATH", sys.prefix)
# Tools installed in the venv (colcon) for tests and the processes they start; not resolved,
# because the venv's bin/python is a symlink out of the venv.
_prepend("PATH", str(Path(sys.executable).parent))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
