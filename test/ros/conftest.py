"""Helpers for the ROS tests: make a plain `.venv/bin/python -m pytest` behave like `make test`, simulate a slow
machine on request, and leave no child process or spinning client behind.

`make test` sources scripts/env.sh; a developer running pytest straight from the venv has not.
The venv prefix holds the share/ trees of the ROS wheels and of the interface packages that
scripts/setup.sh built, so ament_index look-ups and colcon need it on AMENT_PREFIX_PATH.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import children  # test/ros holds no package: pytest.ini puts it on the path
import pytest


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


@pytest.fixture(scope="session", autouse=True)
def slowed_children():
    """Under ``SR3D_TEST_SLOW_START_S`` / ``SR3D_TEST_NICE`` every child process these tests start (the node, DDS
    peers, the live replay's node) runs slowed: a slow start-up without loading the machine. Nothing otherwise."""
    delay, nice = children.simulated_slowness()
    if delay <= 0 and nice == 0:
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess, "Popen", children.SlowPopen)
        yield


@pytest.fixture(scope="module", autouse=True)
def no_leftovers():
    """After each module: no child process still running, no test client still spinning.

    A test that failed before its own clean-up would otherwise leave them to the interpreter's exit, where a
    spinning rclpy executor thread aborts the whole run ("terminate called without an active exception").
    Module-scoped, so the nodes that module fixtures share are torn down by their fixtures first.
    """
    yield
    harness = sys.modules.get("node_harness")
    clients = harness.close_all() if harness is not None else 0
    killed = children.stop_leftovers()
    if clients or killed:
        warnings.warn(
            f"closed {clients} test client(s) and killed {len(killed)} child process(es) that a failed test "
            f"left: {killed}",
            stacklevel=1,
        )
