"""The pipeline (scheduled stages) and the frame loop that drives it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import backend
from ..weights import Buffer, WeightBank
from .cadence import Cadence, cadence_of
from .clock import Clock
from .paced import PacedStage, PublishFailed
from .private import PrivateBank
from .process import ProcessStage
from .schedule import PipelineError, schedule
from .stage import Frame, Stage, StageConfig
from .stats import FrameStats, StageFault
from .watchdog import HANG_BUDGET_FACTOR, HANG_DEFAULT_S, IDLE, Watchdog, hang_limits

log = logging.getLogger(__name__)

Step = Callable[[Frame, WeightBank], None]


class Activity:
    """Whether a frame loop is producing frames on this process's loop thread now.

    A signal handler (the ``vrshare`` command's) reads it to decide whether raising
    ``KeyboardInterrupt`` now ends a run cleanly (the loop turns it into the end of
    the run) or would cut short what follows the run (closing, writing results).
    ``running`` is set and cleared with single stores, inside the part of
    :meth:`FrameLoop.run` that catches ``KeyboardInterrupt``.
    """

    running: FrameLoop | None = None  # the loop producing frames now
    started = 0  # frame loop runs started in this process


class StageSetupError(PipelineError):
    """A stage failed in ``setup``; the run does not start."""


class Pipeline:
    """Stages in schedule order, their budgets, and their life cycle.

    ``sources`` are buffers that something outside the stages writes each frame
    (a target's input, for instance); they must be declared in the bank before
    :meth:`setup`. ``cadences`` say how stages are scheduled (by name; the default
    is each stage class's own, see :func:`~vrshare.pipeline.cadence.cadence_of`).
    """

    def __init__(self, stages: Sequence[Stage], *, sources: Iterable[str] = (),
                 budgets_s: dict[str, float] | None = None,
                 cadences: dict[str, Cadence] | None = None) -> None:
        self.sources = tuple(sources)
        self.stages = schedule(stages, self.sources)
        self.budgets_s = dict(budgets_s or {})
        given = dict(cadences or {})
        for kind, names in (("budget", self.budgets_s), ("cadence", given)):
            unknown = set(names) - {s.name for s in self.stages}
            if unknown:
                raise PipelineError(f"{kind} given for unknown stage(s): "
                                    f"{', '.join(sorted(unknown))}")
        try:
            self.cadences = {s.name: given.get(s.name) or cadence_of(s) for s in self.stages}
        except ValueError as exc:
            raise PipelineError(f"stage class defaults: {exc}") from exc
        for name, cadence in self.cadences.items():
            if cadence.on_overrun != "wait" and name not in self.budgets_s:
                raise PipelineError(f"stage {name!r}: on_overrun = {cadence.on_overrun!r} "
                                    "needs a budget (budget_ms) to overrun")
        # the private bank of each stage that runs, or may come to run, off the loop
        self.views: dict[str, PrivateBank | ProcessStage] = {}
        self._set_up: list[Stage] = []
        self.declared_by: dict[str, str] = {}  # buffer -> the stage whose setup declared it

    def setup(self, bank: WeightBank, configs: dict[str, StageConfig] | StageConfig) -> None:
        """Run every stage's ``setup`` in schedule order, then check the declarations.

        ``configs`` maps stage name to its config, or is one config for all stages.
        Which stage declared which buffer is kept in :attr:`declared_by`, so that a
        consumer finding a buffer wrong can name the stage that made it.
        """
        for i, st in enumerate(self.stages):
            config = configs if isinstance(configs, StageConfig) else configs[st.name]
            before = set(bank.names())
            cadence = self.cadences[st.name]
            on_numpy = backend.active().name == "numpy"
            if cadence.device == "gpu" and on_numpy:
                self.close()
                raise StageSetupError(f"stage {st.name!r}: device = 'gpu' needs a GPU array "
                                      f"backend; the active one is NumPy "
                                      f"({backend.active().reason})")
            host = cadence.device == "host" and not on_numpy
            try:
                if cadence.mode == "process":  # set up in its own process
                    st = self.stages[i] = self.views[st.name] = ProcessStage(st, bank, config)
                elif cadence.private or host:
                    view = self.views[st.name] = PrivateBank(
                        bank, (*st.reads, *st.optional_reads), st.writes, host=host)
                    st.setup(view, config)
                    view.ready()
                else:
                    st.setup(bank, config)
            except Exception as exc:
                self.close()
                owner = self.declared_by.get(getattr(exc, "buffer", ""))
                whose = f" (declared by stage {owner!r})" if owner else ""
                raise StageSetupError(f"stage {st.name!r} failed in setup: "
                                      f"{type(exc).__name__}: {exc}{whose}") from exc
            self._set_up.append(st)
            self.declared_by.update(dict.fromkeys(set(bank.names()) - before, st.name))
        for st in self.stages:
            for buf in st.writes:
                if buf not in bank:
                    raise PipelineError(
                        f"stage {st.name!r} declares it writes {buf!r} but did not declare "
                        "that buffer in the bank during setup"
                    )
        for buf in self.sources:
            if buf not in bank:
                raise PipelineError(f"source buffer {buf!r} was not declared in the bank")

    def close(self) -> list[StageFault]:
        """Close every stage that was set up (in reverse order); report, don't raise."""
        faults = []
        while self._set_up:
            st = self._set_up.pop()
            try:
                st.close()
            except Exception as exc:
                log.error("stage %r failed in close: %s", st.name, exc)
                faults.append(StageFault.from_exception(st.name, -1, exc, phase="close"))
        return faults

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(slots=True)
class _Slot:
    """A stage as the loop runs it: what to call and what to stamp afterwards."""

    name: str
    process: Step
    writes: tuple[str, ...]
    track: int
    stage: Stage | None  # None for steps after the stages (render, submit)
    buffers: tuple[Buffer, ...] = ()  # the bank entries of ``writes``, stamped by the loop


class FrameLoop:
    """Drives frames: clock -> stages in order -> steps (render, submit) -> stats.

    Steps are callables ``(frame, bank)`` run after the stages each frame, timed
    like stages; unlike a stage, a step that raises ends the run (the display path
    is broken, nothing is left to keep presenting): the error is recorded in the
    stats (a fault with phase ``"step"``) and re-raised; ``self.stats`` keeps every
    completed frame. ``SystemExit`` from a stage or step ends the run too, recorded
    (phase ``"exit"``) and not re-raised.

    A watchdog (:mod:`vrshare.pipeline.watchdog`) reports a stage or step that has not
    returned within its limit: ``hang_limits_s`` per name, else ``hang_factor`` times
    its budget, else ``hang_default_s``.
    """

    def __init__(self, pipeline: Pipeline, bank: WeightBank, clock: Clock,
                 steps: Sequence[tuple[str, Step]] = (), *,
                 hang_limits_s: dict[str, float] | None = None,
                 hang_factor: float = HANG_BUDGET_FACTOR,
                 hang_default_s: float = HANG_DEFAULT_S) -> None:
        self.pipeline = pipeline
        self.bank = bank
        self.clock = clock
        names = [s.name for s in pipeline.stages] + [name for name, _ in steps]
        budgets = dict(pipeline.budgets_s)
        self.stats = FrameStats(names, 1.0 / clock.frame_hz, budgets)
        # stages with a cadence other than the plain one run through their PacedStage,
        # which stamps its own outputs
        self.paced: dict[str, PacedStage] = {
            s.name: PacedStage(s, pipeline.cadences[s.name], bank,
                               pipeline.views.get(s.name), frame_hz=clock.frame_hz,
                               budget_s=budgets.get(s.name),
                               stats=self.stats)
            for s in pipeline.stages
            if not pipeline.cadences[s.name].plain or s.name in pipeline.views}
        self._slots = []
        for i, st in enumerate(pipeline.stages):
            paced = self.paced.get(st.name)
            self._slots.append(
                _Slot(st.name, st.process, tuple(st.writes), i, st,
                      tuple(bank.buffer(b) for b in st.writes))
                if paced is None else _Slot(st.name, paced.process, (), i, st))
        k = len(self._slots)
        self._slots += [_Slot(name, fn, (), k + i, None) for i, (name, fn) in enumerate(steps)]
        self._budgets = [(n, names.index(n), b) for n, b in budgets.items()]
        self._overrun_logged: set[str] = set()
        limits = hang_limits(names, budgets, limits_s=hang_limits_s, factor=hang_factor,
                             default_s=hang_default_s)
        kinds = ["stage"] * k + ["step"] * len(steps)
        self.watchdog = Watchdog(names, kinds, limits, self.stats, first_limit_s=hang_default_s)
        self.watchdog.workers = [(p.worker, limits[names.index(name)])
                                 for name, p in self.paced.items() if p.worker is not None]
        # parts other than stages with event counts for the stats (a display target's
        # failed captures): (name, callable returning {event: count}), asked at the end
        self.counter_sources: list[tuple[str, Callable[[], dict[str, int]]]] = []

    @property
    def active_stages(self) -> list[str]:
        return [s.name for s in self._slots if s.stage is not None]

    def run(self, frames: int | None = None, *, seconds: float | None = None,
            progress: Callable[[int], None] | None = None) -> FrameStats:
        """Run ``frames`` frames, or until ``seconds`` of clock time, or until Ctrl-C.

        Ctrl-C (KeyboardInterrupt) ends the run after the current step; the stats of
        every completed frame are returned with ``interrupted`` set (and ``ending``
        taken from the exception's ``ending`` attribute when it has one). A step that
        raises ends the run with its exception, after recording it in ``self.stats``.
        """
        if frames is None and seconds is None:
            raise ValueError("give frames or seconds (or both)")
        stats, bank, slots = self.stats, self.bank, self._slots
        watch = self.watchdog
        perf = time.perf_counter
        nan_row = [float("nan")] * len(stats.tracks)  # tracks of disabled stages stay NaN
        done = 0
        ended: BaseException | None = None
        stats.ending, stats.ending_detail = "completed", ""
        deterministic = bool(getattr(self.clock, "deterministic", False))
        for paced in self.paced.values():
            paced.deterministic = deterministic  # asked now: a target's clock starts late
        watch.start()
        try:
            Activity.running = self
            Activity.started += 1
            while frames is None or done < frames:
                frame = self.clock.wait_frame()
                if seconds is not None and frame.t_now >= seconds:
                    break
                if done == 0:
                    watch.first_frame = frame.index
                watch.frame = frame.index
                start = perf()
                offsets = nan_row.copy()
                durations = nan_row.copy()
                failed: list[_Slot] = []
                t0 = start
                index, t_now = frame.index, frame.t_now
                for slot in slots:
                    track = slot.track
                    watch.track = track
                    watch.t0 = t0
                    try:
                        ran = slot.process(frame, bank)
                    except PublishFailed as exc:  # a paced stage's outputs
                        self._fault(slot, frame, exc.__cause__ or exc, "publish")
                        failed.append(slot)
                        t1 = perf()
                    except Exception as exc:
                        if slot.stage is None:
                            watch.t0 = IDLE
                            self._fault(slot, frame, exc, "step")
                            stats.ending = "error"
                            stats.ending_detail = (f"step {slot.name!r} raised in frame "
                                                   f"{frame.index}: {type(exc).__name__}: {exc}")
                            raise
                        self._fault(slot, frame, exc)
                        failed.append(slot)
                        t1 = perf()
                    except SystemExit as exc:
                        self._fault(slot, frame, exc, "exit")
                        stats.ending = "SystemExit"
                        stats.ending_detail = (f"{slot.name!r} raised SystemExit({exc.code!r}) "
                                               f"in frame {frame.index}")
                        ended = exc
                        break
                    else:
                        if ran is False:  # a paced stage with nothing to do this frame
                            t0 = perf()
                            continue
                        for buf in slot.buffers:  # the books: what wrote it, and when
                            buf.version = index
                            buf.t_version = t_now
                        if bank.subscribed and slot.writes:  # snapshots for other threads
                            try:
                                bank.stamp(slot.writes, index, t_now)
                            except Exception as exc:  # its snapshots cannot be published
                                self._fault(slot, frame, exc, "publish")
                                failed.append(slot)
                        t1 = perf()  # a stage's time includes its books
                    offsets[track] = t0 - start
                    durations[track] = t1 - t0
                    t0 = t1
                watch.t0 = IDLE
                if ended is not None:
                    break  # the frame did not complete: it is not recorded
                end = perf()
                stats.record(index, frame.t_display, start, end, offsets, durations)
                if failed:
                    self._slots = slots = [s for s in slots if s not in failed]
                if self._budgets:
                    self._check_overruns(index, durations)
                if watch.hung:
                    watch.settle()
                done += 1
                if progress is not None:
                    progress(done)
        except KeyboardInterrupt as exc:
            Activity.running = None  # from here on a signal is only noted (vrshare.cli)
            ended = exc
            stats.interrupted = True
            stats.ending = getattr(exc, "ending", "interrupted")
            stats.ending_detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
            log.warning("interrupted after %d frames (%s)", stats.count, stats.ending_detail)
        except BaseException as exc:
            ended = exc
            raise
        finally:
            Activity.running = None
            for paced in self.paced.values():
                paced.finish()
            watch.stop()
            watch.finish(ended)
            self.stats.cadence = {name: p.report() for name, p in self.paced.items()}
            if stats.interrupted_in is not None and ended is not None:
                where = stats.interrupted_in
                log.warning("the run ended while %r was running in frame %d (for %.3f s)",
                            where["stage"], where["frame"], where["seconds"])
            self._collect_counters()
        return stats

    def _collect_counters(self) -> None:
        """Ask every stage (disabled ones too), then every counter source, for its
        event counts."""
        sources = [(st.name, st.counters) for st in self.pipeline.stages]
        for name, counters in (*sources, *self.counter_sources):
            try:
                counts = counters()
            except Exception as exc:
                log.error("%r failed in counters(): %s", name, exc)
                continue
            if counts:
                self.stats.counters[name] = {k: int(v) for k, v in counts.items()}

    def _fault(self, slot: _Slot, frame: Frame, exc: BaseException,
               phase: str = "process") -> None:
        fault = StageFault.from_exception(slot.name, frame.index, exc, phase)
        self.stats.faults.append(fault)
        kind = "stage" if slot.stage is not None else "step"
        log.error("%s %s\n%s", kind, fault.describe(), fault.traceback)

    def _check_overruns(self, index: int, durations: list[float]) -> None:
        """Log a stage's first overrun; later ones show in the stats' ``over_budget``."""
        for name, i, budget in self._budgets:
            if durations[i] > budget and name not in self._overrun_logged:
                self._overrun_logged.add(name)
                log.warning("stage %r overran its budget (%.3f ms > %.3f ms) in frame %d; "
                            "further overruns are counted in the stats",
                            name, durations[i] * 1e3, budget * 1e3, index)
