"""The frame loop's watchdog: it notices a stage or step that has not returned in time.

Before each stage or step the loop writes two fields, which slot started and when
(``Watchdog.track``, ``Watchdog.t0``), and marks itself idle at the end of the frame;
that is all it costs per frame. A monitor thread, started by ``FrameLoop.run`` and
stopped at its end, reads those fields every ``poll_s`` and reports a slot that has
been running longer than its limit: the stage or step, the frame index and the loop
thread's stack (``sys._current_frames``), in the log and in ``FrameStats.hangs``.
When the stage returns, the hang's ``seconds`` becomes its full duration; when the run
is interrupted while it still runs, the hang is kept with ``returned = False`` (and a
stage interrupted before its limit is named in ``FrameStats.interrupted_in``).

The stuck stage is not stopped: Python cannot stop a thread safely, and the loop
thread is the one that is stuck. Ctrl-C (or SIGTERM through the ``vrshare`` command)
still ends the run.

Limits: ``HANG_BUDGET_FACTOR`` times the stage's ``budget_ms`` when it has one, else
``HANG_DEFAULT_S``; a run's first frame (shader compiles, kernel builds, first
uploads) gets at least the default. ``FrameLoop(..., hang_limits_s={name: seconds})``
sets a limit per stage or step.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Sequence
from time import perf_counter
from typing import Any

from .stats import FrameStats, StageHang

log = logging.getLogger(__name__)

HANG_BUDGET_FACTOR = 10.0  # a stage with a budget has hung after this many budgets
HANG_DEFAULT_S = 2.0  # limit (s) of a stage or step without a budget, and of a first frame
POLL_MIN_S = 0.005  # the monitor looks at least this far apart (s) ...
POLL_MAX_S = 0.25  # ... and at most this far apart; a quarter of the smallest limit between
IDLE = -1.0  # Watchdog.t0 between frames: nothing is running


def hang_limits(names: Sequence[str], budgets_s: dict[str, float], *,
                limits_s: dict[str, float] | None = None, factor: float = HANG_BUDGET_FACTOR,
                default_s: float = HANG_DEFAULT_S) -> list[float]:
    """The limit (s) of each of ``names``: given, else ``factor`` x budget, else the default."""
    limits_s = limits_s or {}
    return [float(limits_s[n]) if n in limits_s
            else factor * budgets_s[n] if n in budgets_s else default_s for n in names]


class Watchdog:
    """What the loop writes (``track``, ``frame``, ``t0``) and the thread that watches it."""

    __slots__ = ("track", "frame", "t0", "hung", "names", "kinds", "limits", "first_limit_s",
                 "first_frame", "stats", "poll_s", "_ident", "_thread", "_stop",
                 "_reported_t0", "_pending", "_failed", "_lock", "workers")

    def __init__(self, names: Sequence[str], kinds: Sequence[str], limits_s: Sequence[float],
                 stats: FrameStats, first_limit_s: float = HANG_DEFAULT_S) -> None:
        self.track = 0  # the slot (its stats track) running now ...
        self.frame = -1  # ... in this frame ...
        self.t0 = IDLE  # ... since this perf_counter time; IDLE between frames
        self.hung = False  # set by the monitor: a hang waits to be settled by the loop
        self.names = list(names)
        self.kinds = list(kinds)  # "stage" or "step", for the messages
        self.limits = list(limits_s)
        self.first_limit_s = first_limit_s
        self.first_frame = -1  # index of the run's first frame: its limit is relaxed
        self.stats = stats
        smallest = min(self.limits, default=POLL_MAX_S * 4)
        self.poll_s = min(max(smallest / 4, POLL_MIN_S), POLL_MAX_S)
        self._ident: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._reported_t0 = IDLE  # the slot call already reported (t0 tells calls apart)
        self._pending: list[tuple[StageHang, int, float]] = []  # hangs not yet settled
        self._failed = False
        self._lock = threading.Lock()  # guards _pending (monitor and loop; taken only on hangs)
        # async stages' worker threads and their limits (s): a run over its limit is
        # reported with the worker's stack; the stage settles it when the run returns
        self.workers: list[tuple[Any, float]] = []

    # -- the monitor thread ---------------------------------------------------------

    def start(self) -> None:
        """Watch the calling thread (the frame loop's) until :meth:`stop`."""
        self.t0 = IDLE
        self._ident = threading.get_ident()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="vrshare-watchdog",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
                self.check_workers()
            except Exception as exc:  # the watchdog must never take the run down
                if not self._failed:
                    self._failed = True
                    log.error("the frame loop's watchdog failed: %s: %s",
                              type(exc).__name__, exc)

    def limit(self, track: int, frame: int) -> float:
        limit = self.limits[track]
        return max(limit, self.first_limit_s) if frame == self.first_frame else limit

    def check(self, now: float | None = None) -> StageHang | None:
        """Report the running slot if it is over its limit (once per call); returns the
        new hang, if any. Runs on the monitor thread (or a test's)."""
        t0 = self.t0
        if t0 < 0 or t0 == self._reported_t0:
            return None
        track, frame = self.track, self.frame
        if self.t0 != t0:  # it moved on while we read: not a consistent view
            return None
        elapsed = (perf_counter() if now is None else now) - t0
        limit = self.limit(track, frame)
        if elapsed <= limit:
            return None
        stack = _stack(self._ident)
        if self.t0 != t0:
            stack += "(it returned while its stack was being taken)\n"
        return self._report(track, frame, t0, elapsed, limit, stack, returned=None)

    def check_workers(self, now: float | None = None) -> list[StageHang]:
        """Report each worker whose run is over its limit (once per run)."""
        found = []
        for worker, limit in self.workers:
            t0, frame = worker.t0, worker.frame
            if t0 < 0 or worker.hang is not None or frame is None:
                continue
            elapsed = (perf_counter() if now is None else now) - t0
            if elapsed <= limit:
                continue
            stack = _stack(worker.ident)
            if worker.t0 != t0:  # it returned (or a new run began) meanwhile
                continue
            worker.hang = hang = StageHang(worker.name, frame.index, limit, elapsed, None, stack)
            self.stats.hangs.append(hang)
            log.error("async stage %r has not returned %.3f s after its run for frame %d "
                      "began (limit %.3f s); its worker's stack:\n%s", worker.name, elapsed,
                      frame.index, limit, stack)
            found.append(hang)
        return found

    def _report(self, track: int, frame: int, t0: float, elapsed: float, limit: float,
                stack: str, returned: bool | None) -> StageHang:
        self._reported_t0 = t0
        name, kind = self.names[track], self.kinds[track]
        hang = StageHang(name, frame, limit, elapsed, returned, stack)
        if returned is None:
            with self._lock:
                self._pending.append((hang, track, t0))
            self.hung = True
        self.stats.hangs.append(hang)
        log.error("%s %r has not returned %.3f s after it started in frame %d (limit %.3f s); "
                  "the frame loop's stack:\n%s", kind, name, elapsed, frame, limit, stack)
        return hang

    # -- on the loop's thread -------------------------------------------------------

    def settle(self) -> None:
        """Fill in how long each reported slot call took, once it returned (the loop
        calls this at the end of a frame in which the monitor set :attr:`hung`)."""
        self.hung = False
        still = []
        stats = self.stats
        with self._lock:
            pending, self._pending = self._pending, still
        for hang, track, t0 in pending:
            if self.t0 == t0:  # still running (only when called mid-frame)
                still.append((hang, track, t0))
                continue
            dur = _duration(stats, hang.frame, track)
            if dur is not None:
                hang.seconds = dur
            hang.returned = True
            log.warning("%s %r returned after %.3f s (frame %d)", self.kinds[track],
                        hang.stage, hang.seconds, hang.frame)

    def finish(self, exc: BaseException | None) -> None:
        """At the end of a run (the monitor stopped): a slot still running was
        interrupted; record where, and a hang when it was over its limit."""
        t0 = self.t0
        if t0 >= 0:
            track, frame = self.track, self.frame
            elapsed = perf_counter() - t0
            name = self.names[track]
            self.stats.interrupted_in = {"stage": name, "frame": frame, "seconds": elapsed}
            limit = self.limit(track, frame)
            if t0 == self._reported_t0:
                with self._lock:
                    for hang, _, t in self._pending:
                        if t == t0:
                            hang.seconds, hang.returned = elapsed, False
                    self._pending = [p for p in self._pending if p[2] != t0]
            elif elapsed > limit:
                tb = exc.__traceback__ if exc is not None else None
                stack = "".join(traceback.format_tb(tb)) if tb is not None else ""
                self._report(track, frame, t0, elapsed, limit, stack, returned=False)
            self.t0 = IDLE
        self.settle()


def _stack(ident: int | None) -> str:
    """The current stack of thread ``ident`` ("" if it is gone, or None)."""
    current = sys._current_frames().get(ident) if ident is not None else None
    return "".join(traceback.format_stack(current)) if current is not None else ""


def _duration(stats: FrameStats, frame: int, track: int) -> float | None:
    """The recorded duration (s) of ``track`` in frame ``frame``; None if not recorded."""
    row = stats.row_of(frame)
    if row is None:
        return None
    dur = float(stats.dur[row, track])
    return None if dur != dur else dur
