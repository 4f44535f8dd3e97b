"""The thread an async stage runs on: one run at a time, started by the frame loop.

The loop hands a run over with :meth:`Worker.start` (the stage's inputs already
copied), looks at :attr:`Worker.busy` without waiting, and reads the outcome
(:attr:`error`, :attr:`seconds`) once the run is done. On CuPy the runs are queued
on the worker's own CUDA stream, synchronised before the run counts as done, so
the loop's copies of the outputs see finished work.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from time import perf_counter

from .. import backend
from .stage import Frame
from .watchdog import IDLE  # Worker.t0 while no run is in progress, as the loop's


class Worker:
    """Runs ``process(frame)`` on its own daemon thread, when asked."""

    def __init__(self, name: str, process: Callable[[Frame], None]) -> None:
        self.name = name
        self._process = process
        # each thread has its own events: a thread that did not stop in time (stuck in
        # a run) keeps its own and touches nothing of its successor's when it returns
        self._go = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frame: Frame | None = None  # the frame that started the current/last run
        self.t0 = IDLE  # perf_counter time the current run began on the thread
        self.began = IDLE  # perf_counter time the last run began on the thread
        self.seconds = 0.0  # duration of the last finished run (s)
        self.error: BaseException | None = None  # what the last run raised
        self.hang = None  # the watchdog's StageHang for the current run, if any

    @property
    def busy(self) -> bool:
        """A run was started and has not finished."""
        return not self._done.is_set()

    @property
    def ident(self) -> int | None:
        thread = self._thread
        return thread.ident if thread is not None else None

    def start(self, frame: Frame) -> None:
        """Begin a run for ``frame`` (the loop's thread; the worker must be idle)."""
        if self._thread is None or not self._thread.is_alive() or self._stop.is_set():
            self._go, self._done, self._stop = (threading.Event(), threading.Event(),
                                                threading.Event())
            self._thread = threading.Thread(
                target=self._run, args=(self._go, self._done, self._stop),
                name=f"vrshare-{self.name}", daemon=True)
            self._thread.start()
        self.frame = frame
        self.error = None
        self.hang = None
        self._done.clear()
        self._go.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the current run is done; False if it was not within ``timeout`` s."""
        return self._done.wait(timeout)

    def stop(self, timeout: float) -> bool:
        """Let the thread end after the current run; True if it ended within ``timeout``
        seconds. A run asked for that the thread has not begun yet is not made; one
        that returns meanwhile keeps its time in :attr:`seconds` (its outcome is
        dropped). A run stuck in a call cannot be interrupted: its thread (a
        daemon) is left to return on its own, and what it finishes is dropped."""
        thread = self._thread
        if thread is None:
            return True
        self._stop.set()
        self._go.set()
        thread.join(timeout)
        if thread.is_alive():
            self._done.set()  # no run of this worker is in flight any more
            return False
        if self.t0 != IDLE:  # a run was in flight and has returned (the thread is gone)
            self.seconds, self.t0 = perf_counter() - self.t0, IDLE
        self._thread = None
        return True

    def _run(self, go: threading.Event, done: threading.Event,
             stop: threading.Event) -> None:
        gpu = backend.active().is_gpu
        stream = backend.active().xp.cuda.Stream(non_blocking=True) if gpu else None
        with stream if stream is not None else contextlib.nullcontext():
            while True:
                go.wait()
                go.clear()
                if stop.is_set():
                    return
                self.t0 = self.began = t0 = perf_counter()
                error = None
                try:
                    self._process(self.frame)
                    if stream is not None:
                        stream.synchronize()
                except BaseException as exc:  # handed to the loop, which decides
                    error = exc
                if stop.is_set():  # given up on: its outcome belongs to no run now
                    return
                self.error = error
                self.seconds = perf_counter() - t0
                self.t0 = IDLE
                done.set()
