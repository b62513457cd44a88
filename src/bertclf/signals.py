"""Handlers for the signals that ask a run to stop (SIGINT, SIGTERM), set for a block and put back after it.

Imports nothing heavy, so that the command line can set them before anything loads.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_Handler = TypeVar("_Handler", bound="StopSignalHandler")


class StopSignalHandler:
    """While open, SIGINT and SIGTERM go to ``handler``; the handlers found are put back on exit, or earlier by
    :meth:`restore`. Handlers can only be set in the main thread: elsewhere (or not ``enabled``) nothing changes."""

    def __init__(self, handler: Callable[[int, Any], None], enabled: bool = True):
        self.handler = handler
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.previous: dict[int, Any] = {}

    def __enter__(self: _Handler) -> _Handler:
        if self.enabled:
            self.previous = {number: signal.signal(number, self.handler) for number in STOP_SIGNALS}
        return self

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def __exit__(self, *_exc: Any) -> None:
        self.restore()
