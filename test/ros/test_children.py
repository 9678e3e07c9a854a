"""The test harness's own guarantees: a dead child fails a wait at once with its output, the simulated slowness
delays a child without changing its process id or exit code, and a client is closed without leaving a thread (a
spinning executor thread at the interpreter's exit aborts the process)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from children import SlowPopen, slowed, track, wait_until  # noqa: E402

HERE = Path(__file__).parent
requires_rclpy = pytest.mark.skipif(
    importlib.util.find_spec("rclpy") is None or importlib.util.find_spec("vision_msgs") is None,
    reason="rclpy / vision_msgs not installed (scripts/setup.sh)",
)


def test_a_dead_child_fails_the_wait_at_once_with_its_output(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    with open(log, "w") as out:
        proc = track(
            subprocess.Popen(
                [sys.executable, "-c", "print('cannot start: no model'); raise SystemExit(3)"],
                stdout=out,
                stderr=subprocess.STDOUT,
            ),
            log,
        )
    t0 = time.monotonic()
    with pytest.raises(AssertionError) as err:
        wait_until(lambda: False, "the child's readiness line", proc, bound=600)
    assert time.monotonic() - t0 < 300  # not the bound: the exit ended the wait
    assert "exited with status 3" in str(err.value) and "cannot start: no model" in str(err.value)


def test_no_slowness_asked_for_leaves_the_command_alone(monkeypatch) -> None:
    monkeypatch.delenv("SR3D_TEST_SLOW_START_S", raising=False)
    monkeypatch.delenv("SR3D_TEST_NICE", raising=False)
    assert slowed(["prog", "--arg"]) == ["prog", "--arg"]


def test_simulated_slowness_delays_the_child_in_its_own_process(monkeypatch) -> None:
    """The child sleeps first, then becomes the command: the same pid (signals reach it), its own exit code."""
    monkeypatch.setenv("SR3D_TEST_SLOW_START_S", "1.5")
    monkeypatch.setenv("SR3D_TEST_NICE", "5")
    t0 = time.monotonic()
    proc = SlowPopen(
        [sys.executable, "-c", "import os, sys; print(os.getpid(), os.nice(0)); sys.exit(7)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=600)
    assert time.monotonic() - t0 >= 1.5
    pid, nice = map(int, out.split())
    assert (pid, proc.returncode) == (proc.pid, 7) and nice >= 5
    # Shell command strings are started as they are.
    proc = SlowPopen("exit 4", shell=True)
    assert proc.wait(600) == 4


@requires_rclpy
def test_a_closed_client_leaves_no_thread() -> None:
    from node_harness import Client

    before = set(threading.enumerate())
    with Client("/sr3d_harness/nobody", "/sr3d_harness/points") as client:
        assert client.ctx.ok()
    assert not client.ctx.ok() and set(threading.enumerate()) <= before
    client.close()  # idempotent


@requires_rclpy
def test_close_all_lets_the_interpreter_exit_cleanly(tmp_path: Path) -> None:
    """What test/ros/conftest.py does after each module for the clients a failed test left open: the process then
    exits with its own status, not "terminate called without an active exception" (SIGABRT)."""
    script = tmp_path / "leave_open.py"
    script.write_text(
        textwrap.dedent("""
        import node_harness
        node_harness.Client("/sr3d_harness/left_open", "/sr3d_harness/points")  # never closed by its test
        assert node_harness.close_all() == 1 and node_harness.close_all() == 0
        print("exiting", flush=True)
    """)
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0 and "exiting" in proc.stdout, proc.stdout + proc.stderr
    assert "terminate called" not in proc.stderr, proc.stderr
