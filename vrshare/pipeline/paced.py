"""A stage run by its cadence (:mod:`vrshare.pipeline.cadence`) in its schedule slot.

The frame loop calls :meth:`PacedStage.process` where it would call the stage's
own ``process``. Every decision happens there, on the loop's thread, at the same
point of each frame (after the writers of the stage's inputs, before the readers
of its outputs):

* **sync, with a rate**: run the stage when it is due, else do nothing.
* **async**: first publish a finished run (copy its outputs into the bank and
  stamp them with the frame that started it), then, when the stage is due and no
  run is in flight, copy its inputs and start the next run on its worker. On a
  deterministic clock a run's outputs are published exactly ``latency_frames``
  after the frame that started it, the loop waiting for the worker if need be, so
  results do not depend on thread timing; on real clocks as soon as it finished.

A run that raised re-raises its exception here, so the loop records the fault and
disables the stage like any other. Returns False when nothing ran on the loop's
thread this frame (its time is then left out of the stats).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from .. import backend
from ..errors import VrshareError
from ..weights import WeightBank
from .cadence import OFF_LOOP, Cadence
from .private import PrivateBank
from .process import ProcessStage
from .stage import Frame, Stage
from .stats import FrameStats, percentiles_ms

log = logging.getLogger(__name__)

STOP_WAIT_S = 1.0  # at the end of a run, how long (s) to wait for a run in flight


class PublishFailed(VrshareError, RuntimeError):
    """Copying or stamping a stage's outputs failed (the ``__cause__`` says why)."""


@dataclass(frozen=True)
class CadenceReport:
    """How a paced stage ran over one loop run. Times in ms, rates in Hz."""

    mode: str  # the mode it ended in
    rate_hz: float | None  # declared
    achieved_hz: float  # runs started per second of clock time, first to last start
    runs: int  # runs whose outputs were published
    skipped: int  # due runs not made: a run still in flight, or the "skip" policy
    latency_ms: tuple[float, float, float, float, float]  # snapshot -> visible: percentiles
    latency_frames_max: int  # most frames from a run's start to its outputs being seen
    moved_async_at: int | None  # frame at which on_overrun = "async" moved it

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["latency_ms"] = dict(zip(("median", "p95", "p99", "p99.9", "max"),
                                     self.latency_ms, strict=True))
        return out


class PacedStage:
    """One stage, its cadence, its private bank view (if any) and its worker."""

    def __init__(self, stage: Stage, cadence: Cadence, bank: WeightBank,
                 view: PrivateBank | ProcessStage | None, *, frame_hz: float,
                 budget_s: float | None, stats: FrameStats) -> None:
        self.stage = stage
        self.cadence = cadence
        self.bank = bank
        self.view = view
        self.writes = tuple(stage.writes)
        self.mode = cadence.mode
        self.deterministic = False  # set by the loop from its clock when a run starts
        self.latency = cadence.latency(frame_hz)
        self.period = 1.0 / cadence.rate_hz if cadence.rate_hz else 0.0
        self.frame_period = 1.0 / frame_hz
        self.budget_s = budget_s
        self.stats = stats
        self.worker = view.make_worker(stage.name, self._work) if view is not None else None
        # the worker's runs get their own stats track (and Perfetto track)
        self.worker_track = (stats.add_track(f"{stage.name} (worker)")
                             if self.worker is not None else None)
        self.next_t = -math.inf  # clock time (s) from which the next run is due
        self.in_flight: Frame | None = None  # the frame that started the run in flight
        self.skip_next = False
        self.runs = 0
        self.skipped = 0
        self.moved_at: int | None = None
        # off the loop: each published run's latency (s, frames), as many as frame rows
        self.latency_s: list[float] = []
        self.latency_frames: list[int] = []
        self.started = 0  # runs started, the first and last at these clock times (s)
        self.t_first = self.t_last = math.nan

    # -- the slot ----------------------------------------------------------------------

    def process(self, frame: Frame, bank: WeightBank) -> bool | None:
        if self.mode in OFF_LOOP:
            return self._async(frame)
        if not self._due(frame):
            return False
        if self.skip_next:
            self.skip_next = False
            self.skipped += 1
            self._advance(frame)
            return False
        view = self.view
        if view is not None:
            view.take_inputs()
        t0 = perf_counter()
        self._started(frame)
        self.stage.process(frame, view if view is not None else bank)
        seconds = perf_counter() - t0
        self._advance(frame)
        self._publish(frame)
        if self.budget_s is not None and seconds > self.budget_s:
            self._overran(frame, seconds)
        return None

    def _async(self, frame: Frame) -> bool | None:
        worker = self.worker
        did = False
        started = self.in_flight
        if started is not None:
            if self.deterministic:
                if frame.index < started.index + self.latency:
                    return False
                worker.wait()  # a deterministic clock: visible exactly latency frames on
            elif worker.busy:
                return False
            self.in_flight = None
            if worker.hang is not None:
                worker.hang.seconds, worker.hang.returned = worker.seconds, True
            if worker.error is not None:
                error, worker.error = worker.error, None
                error.add_note(f"(raised on the stage's worker thread, in the run started in "
                               f"frame {started.index})")
                raise error
            self._publish(started)
            self.latency_s.append(frame.t_now - started.t_now)
            self.latency_frames.append(frame.index - started.index)
            self.stats.set_later(started.index, self.worker_track, worker.seconds,
                                 began=worker.began)
            did = True
        if self._due(frame):
            if self.period and math.isfinite(self.next_t):  # whole periods missed in flight
                self.skipped += int((frame.t_now - self.next_t) / self.period)
            self.view.take_inputs()
            if backend.active().is_gpu:  # the worker's stream must see the copies done
                backend.active().xp.cuda.get_current_stream().synchronize()
            worker.start(frame)
            self._started(frame)
            self.in_flight = frame
            self._advance(frame)
            did = True
        return None if did else False

    def _work(self, frame: Frame) -> None:
        self.stage.process(frame, self.view)

    def _started(self, frame: Frame) -> None:
        if not self.started:
            self.t_first = frame.t_now
        self.t_last = frame.t_now
        self.started += 1

    # -- rate ----------------------------------------------------------------------

    def _due(self, frame: Frame) -> bool:
        return frame.t_now + 1e-9 >= self.next_t

    def _advance(self, frame: Frame) -> None:
        """After a start: the next is one period on, in phase unless this one was late
        by a frame or more."""
        if not self.period:
            return
        if frame.t_now - self.next_t < self.frame_period:
            self.next_t += self.period
        else:
            self.next_t = frame.t_now + self.period

    # -- results --------------------------------------------------------------------

    def _publish(self, started: Frame) -> None:
        """Make a run's outputs visible, stamped with the frame that started it."""
        try:
            if self.view is not None:
                self.view.publish()
            if self.writes:
                self.bank.stamp(self.writes, started.index, started.t_now)
        except Exception as exc:
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
        self.runs += 1

    def _overran(self, frame: Frame, seconds: float) -> None:
        policy = self.cadence.on_overrun
        if policy == "skip":
            self.skip_next = True
        elif policy == "async":
            self.mode = "async"
            self.moved_at = frame.index
            log.warning("stage %r took %.3f ms (budget %.3f ms) in frame %d: it runs on its "
                        "own thread from now on", self.stage.name, seconds * 1e3,
                        self.budget_s * 1e3, frame.index)

    # -- the end of a run -----------------------------------------------------------------

    def finish(self) -> bool:
        """Stop the worker (waiting up to :data:`STOP_WAIT_S` for a run in flight,
        whose result is dropped); False if it was still running."""
        self.in_flight = None
        worker = self.worker
        if worker is None:
            return True
        stopped = worker.stop(STOP_WAIT_S)
        hang = worker.hang
        if hang is not None and hang.returned is None:
            hang.returned = stopped
            if stopped:
                hang.seconds = worker.seconds
        if not stopped:
            log.warning("stage %r was still running on its worker thread when the run "
                        "ended; what it writes from now on is not published",
                        self.stage.name)
        return stopped

    def report(self) -> CadenceReport:
        span = self.t_last - self.t_first if self.started > 1 else 0.0
        achieved = (self.started - 1) / span if span > 0 else math.nan
        return CadenceReport(
            mode=self.mode, rate_hz=self.cadence.rate_hz, achieved_hz=achieved,
            runs=self.runs, skipped=self.skipped,
            latency_ms=percentiles_ms(np.asarray(self.latency_s)),
            latency_frames_max=max(self.latency_frames, default=0),
            moved_async_at=self.moved_at)
