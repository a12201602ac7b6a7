"""Ctrl-C during a search, noticed even where a dependency swallows the KeyboardInterrupt.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives. Inside a
backend's compiler it can come back as an ordinary error: with Pallas interpreted on the CPU,
JAX hands it on as one, Helion counts the config as failing to compile ("Skipping config that
failed to compile"), and the search runs on (seen in a test: the search ran to its end 15 s
after a Ctrl-C, and three Ctrl-Cs in 15 s did not stop another). :class:`InterruptLatch` keeps
Python's handler and remembers that it ran; the search checks the latch after each batch it
measured and raises KeyboardInterrupt itself.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from types import TracebackType


class InterruptLatch:
    """Within ``with``: remembers a SIGINT handled by Python's own handler (see the module
    docstring). A handler the user installed, or SIGINT ignored, is left as it is."""

    def __init__(self) -> None:
        self.hit = False
        self._installed = False

    def __enter__(self) -> InterruptLatch:
        main = threading.current_thread() is threading.main_thread()  # signals reach only that one
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.hit = True
        signal.default_int_handler(signum, frame)

    def check(self) -> None:
        """Raise KeyboardInterrupt if a Ctrl-C came since the search started (also when the
        one Python raised was swallowed on the way)."""
        if self.hit:
            raise KeyboardInterrupt("Ctrl-C during the search")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False
