"""Running a node in its own process: signals that ask it to stop, and a spin loop that stops in order.

rclpy's own signal handlers shut the context down the moment a signal arrives, so everything a node logs while it
stops (the detector's final counters) fails to reach /rosout ("publisher's context is invalid"). Here a signal
only asks the spin loop to stop; the node logs, cleans up and is destroyed, and the context is shut down last.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Callable, Optional

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions


class StopRequest:
    """SIGINT / SIGTERM, caught by the process instead of rclpy: ``requested`` is set."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested.set()


def init(args: Optional[list[str]]) -> StopRequest:
    """``rclpy.init`` without its signal handlers, and ours in their place."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    return StopRequest()


def command_line(args: Optional[list[str]]) -> list[str]:
    """The command line rclpy reads: ``args``, or the process's."""
    return list(sys.argv if args is None else args)


def spin(node: Any, on_stop: Callable[[], None], stop: Optional[StopRequest] = None, period_s: float = 0.2) -> None:
    """Spin ``node`` until a signal asks to stop (``stop``; else until the context is shut down), then call
    ``on_stop`` (log, clean up), destroy the node and shut the context down, in that order."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # Short waits: the signal handler runs (and sets the event) only between them.
        while (stop is None or not stop.requested.is_set()) and rclpy.ok():
            executor.spin_once(timeout_sec=period_s)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # The context was shut down from elsewhere while a callback (a timer's diagnostics) was publishing, and rcl
        # raises "publisher's context is invalid": a normal stop. With the context still up, it is a real error.
        if rclpy.ok():
            raise
    finally:
        on_stop()
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()


__all__ = ["StopRequest", "command_line", "init", "spin"]
