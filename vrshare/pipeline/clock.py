"""Frame clocks: when a frame starts and when its image will be seen.

A clock (or a target with its own timing, such as OpenXR's ``xrWaitFrame``)
implements ``wait_frame() -> Frame``. Times are seconds.

* ``vsync``: real time at ``frame_hz``; waits for the next simulated vsync and
  skips vsyncs the previous frame overran.
* ``virtual``: a deterministic timeline, frame k at k / frame_hz, no waiting;
  headless runs and tests use it so that results do not depend on machine speed.
* ``unthrottled``: real time, no waiting; for benchmarks.

The predicted display time is ``t_now + latency_frames / frame_hz``: a frame that
starts at vsync k is drawn during [k, k+1] and scanned out from vsync k+2 by a
compositor, as OpenXR runtimes typically predict.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from .stage import DEFAULT_FRAME_HZ, Frame

LATENCY_FRAMES = 2.0  # vsync intervals from frame start to photons


class Clock(Protocol):
    """``frame_hz``: display rate (Hz). A clock may also set ``deterministic = True``
    (frame times that do not depend on the machine, as the virtual clock's): async
    stages then publish after exactly their declared latency."""

    frame_hz: float

    def wait_frame(self) -> Frame: ...


class _Ticking:
    """What every built-in clock holds: its rate, period and latency (s), and the
    index of the next frame."""

    deterministic = False

    def __init__(self, frame_hz: float = DEFAULT_FRAME_HZ,
                 latency_frames: float = LATENCY_FRAMES) -> None:
        self.frame_hz = frame_hz
        self.period = 1.0 / frame_hz
        self.latency = latency_frames * self.period
        self.index = 0
        self.t0 = time.perf_counter()  # the real-time clocks' origin

    def _frame(self, t: float) -> Frame:
        """Frame number ``index`` starting at ``t`` (s); advances the index."""
        frame = Frame(self.index, t, t + self.latency, self.period)
        self.index += 1
        return frame


class VirtualClock(_Ticking):
    """Frame k starts at k / frame_hz on a virtual timeline; never sleeps."""

    deterministic = True

    def wait_frame(self) -> Frame:
        return self._frame(self.index * self.period)


class UnthrottledClock(_Ticking):
    """Real time with no waiting: frames as fast as the pipeline goes."""

    def wait_frame(self) -> Frame:
        return self._frame(time.perf_counter() - self.t0)


class VsyncClock(_Ticking):
    """Real time paced by simulated vsync at ``frame_hz``."""

    def __init__(self, frame_hz: float = DEFAULT_FRAME_HZ,
                 latency_frames: float = LATENCY_FRAMES) -> None:
        super().__init__(frame_hz, latency_frames)
        self.vsync = -1  # index of the last vsync a frame started on
        self.skipped = 0  # vsyncs missed because a frame overran

    def wait_frame(self) -> Frame:
        now = time.perf_counter() - self.t0
        k = max(self.vsync + 1, math.ceil(now / self.period))
        if self.vsync >= 0:
            self.skipped += k - self.vsync - 1
        t = k * self.period
        delay = t - (time.perf_counter() - self.t0)
        if delay > 0:
            time.sleep(delay)
        self.vsync = k
        return self._frame(t)


CLOCKS = {"vsync": VsyncClock, "virtual": VirtualClock, "unthrottled": UnthrottledClock}
CLOCK_NAMES = tuple(CLOCKS)


def make_clock(kind: str, frame_hz: float) -> Clock:
    """The clock named in a ``[pipeline]`` table."""
    try:
        return CLOCKS[kind](frame_hz)
    except KeyError:
        raise ValueError(f"unknown clock {kind!r}: expected one of {', '.join(CLOCKS)}") from None
