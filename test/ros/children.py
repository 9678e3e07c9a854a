"""How the ROS tests start child processes and wait for them, on a machine of any speed.

A busy machine (CI, or training runs on the same cores) makes a child's start-up slow: importing torch and rclpy
took over a minute at a load average of 7 on 2 cores. So no test waits a fixed time for a child to come up. It waits
for a readiness signal (a line in the child's output, its topics or services in the ROS graph, its exit), fails at
once with the child's output when the child died, and gives up only after ``PATIENCE_S``, which only a stuck child
reaches. Timeouts that test a node's own timing start from a measured readiness point, never from the child's start.

Slowness of the start-up path can be simulated without loading the machine, by variables read only by the tests
(``test/ros/conftest.py`` applies them to every child process the ROS tests start, through ``subprocess.Popen``):

- ``SR3D_TEST_SLOW_START_S``: every child sleeps this many seconds before it runs (the same process id: it then
  ``exec``s the real command, so signals and exit codes are the command's own);
- ``SR3D_TEST_NICE``: every child runs at this niceness (19: it gets the CPU only when nothing else wants it).

``SR3D_TEST_PATIENCE_S`` overrides ``PATIENCE_S`` (600 s).

Only the standard library here: ``test_ros_env`` uses it where rclpy may be missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

# The bound for a wait on something that happens unless the child is broken: a slow machine only makes the wait
# longer; a dead child fails the wait at once (every wait polls it).
PATIENCE_S = float(os.environ.get("SR3D_TEST_PATIENCE_S", "600"))

# Runs in the child before the real command: niceness, then the delay, then exec (same pid, same exit code).
_SLOW_START = (
    "import os, sys, time\n"
    "os.nice(int(sys.argv[2]))\n"
    "time.sleep(float(sys.argv[1]))\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)

# Every process the harness started, so a failing test cannot leave one running (see ``stop_leftovers``).
_STARTED: list[subprocess.Popen] = []


def simulated_slowness() -> tuple[float, int]:
    """The simulated start-up slowness asked for in the environment.

    Returns:
        ``(delay_s, niceness)``: seconds every child sleeps before it runs, and the niceness it runs at (0, 0: none).
    """
    return float(os.environ.get("SR3D_TEST_SLOW_START_S", "0") or 0), int(os.environ.get("SR3D_TEST_NICE", "0") or 0)


def slowed(cmd: Sequence[str]) -> list[str]:
    """``cmd`` as it runs under the simulated slowness (unchanged where none is asked for).

    Args:
        cmd: The command line (program and arguments).

    Returns:
        A command line that lowers its priority, sleeps, then ``exec``s ``cmd``.
    """
    delay, nice = simulated_slowness()
    if delay <= 0 and nice == 0:
        return list(cmd)
    return [sys.executable, "-c", _SLOW_START, str(delay), str(nice), *map(str, cmd)]


class SlowPopen(subprocess.Popen):
    """``subprocess.Popen`` whose list commands run under the simulated slowness (``slowed``).

    ``test/ros/conftest.py`` puts it in place of ``subprocess.Popen`` while ``SR3D_TEST_SLOW_START_S`` or
    ``SR3D_TEST_NICE`` is set, so the children started by library code (``sr3d-replay --mode live``) are slowed too.
    """

    def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
        """Start ``args`` slowed when it is a command list and no shell runs it; anything else as it is."""
        if isinstance(args, (list, tuple)) and not kwargs.get("shell") and not kwargs.get("executable"):
            args = slowed(args)
        super().__init__(args, *rest, **kwargs)


def track(proc: subprocess.Popen, log_path: Path | None = None) -> subprocess.Popen:
    """Remember a started child (and the file its output goes to) for error messages and the final clean-up.

    Args:
        proc: The child.
        log_path: Where its stdout and stderr go, if a file.

    Returns:
        ``proc``.
    """
    proc.log_path = log_path  # type: ignore[attr-defined] - read back by ``output_of``
    _STARTED.append(proc)
    return proc


def output_of(proc: subprocess.Popen | None, tail: int = 6000) -> str:
    """The end of a tracked child's log file ("" when it has none), for failure messages."""
    path = getattr(proc, "log_path", None)
    if path is None or not Path(path).exists():
        return ""
    return Path(path).read_text(errors="replace")[-tail:]


def died(proc: subprocess.Popen | None, what: str = "the child process") -> str:
    """A failure message naming the exit status and the output of a child that exited."""
    return (
        f"{what} exited with status {proc.returncode if proc else None} while the test waited for it; "
        f"its output:\n{output_of(proc)}"
    )


def wait_until(
    predicate: Callable[[], Any],
    what: str,
    proc: subprocess.Popen | None = None,
    bound: float = PATIENCE_S,
    poll_s: float = 0.05,
) -> Any:
    """Poll ``predicate`` until it is truthy and return its value.

    Args:
        predicate: The readiness signal.
        what: What is awaited, for the failure message.
        proc: A child whose exit fails the wait at once (with its output).
        bound: Seconds after which a still-running child counts as stuck.
        poll_s: Seconds between polls.

    Returns:
        The predicate's first truthy value.

    Raises:
        AssertionError: ``proc`` exited first, or ``bound`` passed.
    """
    deadline = time.monotonic() + bound
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            value = predicate()  # what it did just before it exited still counts
            if value:
                return value
            raise AssertionError(f"{what}: " + died(proc))
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what}: not after {bound:.0f} s (the child is stuck); its output:\n" f"{output_of(proc)}"
            )
        time.sleep(poll_s)


def wait_exit(proc: subprocess.Popen, bound: float = PATIENCE_S) -> int | None:
    """Wait for a child to exit by itself.

    Args:
        proc: The child.
        bound: Seconds after which it counts as stuck.

    Returns:
        Its exit status, or None when it still runs after ``bound``.
    """
    try:
        return proc.wait(bound)
    except subprocess.TimeoutExpired:
        return None


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, bound: float = PATIENCE_S) -> int:
    """Ask a child to stop with ``sig``, wait up to ``bound`` for its clean exit, else kill it.

    Args:
        proc: The child.
        sig: The polite signal (SIGINT: what ``ros2 launch`` and Ctrl-C send).
        bound: Seconds a slow machine may take to stop it.

    Returns:
        Its exit status (negative: the signal that ended it).
    """
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(bound)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def stop_leftovers() -> list[str]:
    """Kill every tracked child still running (a test that failed before its own clean-up) and reap it.

    Returns:
        The command lines of the children that had to be killed.
    """
    killed = []
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            killed.append(" ".join(map(str, proc.args)) if isinstance(proc.args, (list, tuple)) else str(proc.args))
            proc.kill()
        proc.wait()
    return killed
