"""Stopping a run cleanly: SIGINT (Ctrl-C) and SIGTERM ask the loop to save and stop.

Inside :class:`StopRequest` the first signal sets :attr:`StopRequest.requested` (the loop
finishes its step, writes a checkpoint and returns); a second one raises
:class:`KeyboardInterrupt` at once. The previous handlers come back on exit. Signal
handlers can only be installed from the main thread; elsewhere nothing is installed.
"""

from __future__ import annotations

import logging
import signal
import threading

__all__ = ["StopRequest"]

log = logging.getLogger("conversenet.training")


class StopRequest:
    """Context manager turning SIGINT/SIGTERM into a request to stop after the step."""

    def __init__(self) -> None:
        self.requested = False
        self._count = 0
        self._previous: dict[int, object] = {}

    def _on_signal(self, signum, frame) -> None:
        self._count += 1
        if self._count > 1:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "received %s: saving a checkpoint after this step (press Ctrl-C again to abort)",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
