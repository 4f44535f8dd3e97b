"""Writes that an interrupt (SIGINT, SIGTERM) must not cut in two.

The ``vrshare`` command's handler raises ``KeyboardInterrupt`` where the signal lands,
so that a run ends at once and cleanly. Landing inside some writes it would spoil what
they leave: raised inside a video frame fed to ffmpeg, imageio-ffmpeg kills ffmpeg
before it writes the file's index (the video does not open); raised between a write
and its count, the results report one item fewer than the file holds. Such a write
runs inside :data:`held`: a handler that calls :func:`defer` first only notes a signal
that lands there, and the signal is raised again as soon as the block ends.

Blocking the signals (``pthread_sigmask``) instead would not do: a signal sent to the
process goes to any thread that does not block it, and Python then runs its handler in
the main thread wherever that thread is. Handlers run only in the main thread, so only
the main thread's writes need holding; elsewhere :data:`held` does nothing.
"""

from __future__ import annotations

import signal
import threading
from types import TracebackType


class _Held:
    """The context manager behind :data:`held` (re-entrant; a class rather than a
    generator because per-block writes enter it thousands of times a second)."""

    def __init__(self) -> None:
        self.depth = 0  # nesting on the main thread
        self.pending: list[int] = []  # signals noted while held, in order

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.depth += 1

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self.depth -= 1
        if self.depth or not self.pending:
            return
        pending, self.pending = self.pending, []
        raised: BaseException | None = None
        for signum in pending:  # each reaches the handler once, in order
            try:
                signal.raise_signal(signum)
            except BaseException as error:  # what the handler raises ends the block
                raised = raised or error
        if raised is not None:
            raise raised


held = _Held()


def defer(signum: int) -> bool:
    """For a signal handler, first thing: True when the signal landed inside
    :data:`held` and is noted for its end (the handler should then return)."""
    if held.depth:
        held.pending.append(signum)
        return True
    return False


__all__ = ["defer", "held"]
