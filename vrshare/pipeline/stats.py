"""Frame statistics: every frame's times, per track, kept in preallocated arrays.

A *track* is a named timed step: each stage, plus the steps the loop runs after the
stages (``render``, ``submit``) and any extra measurement a part reports (GPU pass
times from GL timer queries). Durations are seconds; ``NaN`` marks a frame in which
a track did not run.

Recording a frame keeps the loop's own lists and moves them into the arrays
:data:`FLUSH_ROWS` frames at a time, or as soon as anything reads the arrays: copying
one short list into a NumPy row costs about a microsecond, a block of rows a fraction
of that per row. Recording and reading happen on the loop's thread.
"""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

PERCENTILES = (50.0, 95.0, 99.0, 99.9)
FLUSH_ROWS = 64  # frames recorded before they are moved into the arrays


def percentiles_ms(times_s) -> tuple[float, float, float, float, float]:
    """Median, p95, p99, p99.9 and max (ms) of durations in seconds; NaNs are left out
    and an empty input gives NaNs."""
    times = np.asarray(times_s, dtype=float).ravel()
    times = times[~np.isnan(times)]
    if times.size == 0:
        return (float("nan"),) * 5
    q = np.percentile(times, PERCENTILES) * 1e3
    return (*map(float, q), float(times.max() * 1e3))


@dataclass(frozen=True)
class StageFault:
    """A stage (or step) that raised.

    ``phase`` says what followed: ``"process"``, the stage was disabled from ``frame``
    on and the run went on; ``"step"``, a step raised and ended the run; ``"exit"``, a
    stage or step raised ``SystemExit``, which ends the run; ``"publish"``, the bank
    could not publish what it wrote (the stage was disabled, readers keep the previous
    snapshot); ``"close"``, it raised in ``close`` (``frame`` is -1).
    """

    stage: str
    frame: int
    error: str  # "ValueError: ..."
    traceback: str
    phase: str = "process"

    @classmethod
    def from_exception(cls, stage: str, frame: int, exc: BaseException,
                       phase: str = "process") -> StageFault:
        return cls(
            stage,
            frame,
            f"{type(exc).__name__}: {exc}",
            "".join(tb.format_exception(exc)),
            phase,
        )

    def describe(self) -> str:
        """One line for people: who, what happened, and the error."""
        what = {
            "process": f"raised in frame {self.frame} and was disabled",
            "step": f"raised in frame {self.frame} and ended the run",
            "exit": f"raised SystemExit in frame {self.frame}, which ended the run",
            "publish": f"could not publish its outputs in frame {self.frame} and was disabled",
            "close": "failed in close",
        }.get(self.phase, f"failed ({self.phase})")
        return f"{self.stage!r} {what}: {self.error}"


@dataclass
class StageHang:
    """A stage or step that had not returned within its limit (the watchdog's finding).

    ``seconds`` is how long it ran: when it returned, or until the run ended (then
    ``returned`` is False: still running when the run was interrupted or ended).
    ``stack`` is the frame loop thread's stack when the hang was noticed.
    """

    stage: str
    frame: int
    limit_s: float
    seconds: float
    returned: bool | None  # None: still running when last looked at
    stack: str

    def describe(self) -> str:
        state = {True: f"returned after {self.seconds:.3f} s",
                 False: f"had not returned after {self.seconds:.3f} s when the run ended",
                 None: f"had not returned after {self.seconds:.3f} s"}[self.returned]
        return (f"{self.stage!r} hung in frame {self.frame}: {state} "
                f"(limit {self.limit_s:.3f} s)")


@dataclass(frozen=True)
class TrackSummary:
    """Distribution of one track's per-frame times, milliseconds."""

    name: str
    frames: int
    median_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    over_budget: int  # frames over this track's budget (deadline misses / overruns)


class _Column:
    """A per-frame array of :class:`FrameStats`: reading it moves pending frames in."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = "_" + name

    def __get__(self, stats: FrameStats | None, owner: type | None = None) -> np.ndarray:
        if stats is None:
            return self  # type: ignore[return-value]
        if stats._pending:
            stats.flush()
        return getattr(stats, self.attr)


@dataclass
class FrameStats:
    """Per-frame timing columns, grown by doubling so recording never allocates per frame."""

    index = _Column()  # frame index
    start = _Column()  # frame work start, perf_counter (s)
    total = _Column()  # frame work duration (s)
    t_display = _Column()  # predicted display time (s, clock's timeline)
    offset = _Column()  # (frames, tracks): start of each track from the frame's start (s)
    dur = _Column()  # (frames, tracks): duration of each track (s)

    tracks: list[str]
    budget_s: float  # frame budget (s), for deadline misses
    track_budget_s: dict[str, float] = field(default_factory=dict)  # per-track budgets (s)
    faults: list[StageFault] = field(default_factory=list)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> event counts
    interrupted: bool = False
    capacity: int = 1024
    hangs: list[StageHang] = field(default_factory=list)  # the watchdog's findings
    # how the run ended: "completed" (its frames or seconds), "interrupted" (Ctrl-C, a
    # closed target), "SIGINT"/"SIGTERM" (the vrshare command's signal handling),
    # "SystemExit" (a stage or step called sys.exit) or "error" (a step raised)
    ending: str = "completed"
    ending_detail: str = ""
    # the stage or step that was running when the run was interrupted (it did not finish
    # that frame): {"stage", "frame", "seconds"}; None when it ended between frames
    interrupted_in: dict | None = None
    # stages run by a cadence (rate, async): name -> vrshare.pipeline.paced.CadenceReport
    cadence: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.measured: list[str] = []  # tracks added by add_track: not part of the frame's sum
        self.count = 0  # frames recorded, pending ones included
        # recorded, not yet in the arrays: (index, t_display, start, total, offsets, durations)
        self._pending: list[tuple] = []
        self._index = np.zeros(self.capacity, np.int64)
        self._start = np.zeros(self.capacity)
        self._total = np.zeros(self.capacity)
        self._t_display = np.zeros(self.capacity)
        self._offset = np.full((self.capacity, len(self.tracks)), np.nan)
        self._dur = np.full((self.capacity, len(self.tracks)), np.nan)

    def add_track(self, name: str, budget_s: float | None = None) -> int:
        """Add a column measured apart from the loop's own steps (e.g. a GPU pass time,
        which overlaps them); returns its index for :meth:`set`."""
        if name in self.tracks:
            return self.tracks.index(name)
        self.flush()
        self.tracks.append(name)
        self.measured.append(name)
        pad = np.full((self.capacity, 1), np.nan)
        self._offset = np.hstack([self._offset, pad])
        self._dur = np.hstack([self._dur, pad.copy()])
        if budget_s is not None:
            self.track_budget_s[name] = budget_s
        return len(self.tracks) - 1

    def _grow(self) -> None:
        self.capacity *= 2
        for name in ("_index", "_start", "_total", "_t_display", "_offset", "_dur"):
            old = getattr(self, name)
            new = np.full((self.capacity, *old.shape[1:]), np.nan, old.dtype) if old.ndim == 2 \
                else np.zeros(self.capacity, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def record(self, index: int, t_display: float, start: float, end: float,
               offsets: list[float], durations: list[float]) -> int:
        """Store one frame (times from ``time.perf_counter``); returns its row.

        ``offsets`` and ``durations`` are indexed like :attr:`tracks` (NaN: did not run);
        the lists are kept, not copied, until the frame moves into the arrays.
        """
        pending = self._pending
        if pending and len(offsets) != len(pending[0][4]):
            self.flush()  # a track was added: rows of one width per block
        pending.append((index, t_display, start, end - start, offsets, durations))
        n = self.count
        self.count = n + 1
        if len(pending) >= FLUSH_ROWS:
            self.flush()
        return n

    def flush(self) -> None:
        """Move the pending frames into the arrays."""
        rows, self._pending = self._pending, []
        if not rows:
            return
        end = self.count
        first = end - len(rows)
        while end > self.capacity:
            self._grow()
        m, k = len(rows), len(rows[0][4])
        index, t_display, start, total, offsets, durations = zip(*rows, strict=True)
        self._index[first:end] = index
        self._t_display[first:end] = t_display
        self._start[first:end] = start
        self._total[first:end] = total
        # fromiter reads the floats one by one; assigning the nested lists would first
        # walk them to find their shape, at about twice the cost
        self._offset[first:end, :k] = np.fromiter(chain.from_iterable(offsets), float,
                                                  m * k).reshape(m, k)
        self._dur[first:end, :k] = np.fromiter(chain.from_iterable(durations), float,
                                               m * k).reshape(m, k)

    def row_of(self, index: int) -> int | None:
        """The row frame ``index`` was recorded in, or None."""
        self.flush()
        return self._moved_row(index)

    def _moved_row(self, index: int) -> int | None:
        """The row of frame ``index`` among those already in the arrays, or None. Frame
        indices increase from row to row, so the row is found by bisection."""
        moved = self.count - len(self._pending)
        row = int(np.searchsorted(self._index[:moved], index))
        return row if row < moved and self._index[row] == index else None

    def set_later(self, index: int, track: int, seconds: float,
                  began: float | None = None) -> bool:
        """Fill in a measurement of frame ``index`` that arrives after the frame was
        recorded (a GPU timer query read a few frames late, an async stage's run).
        ``began`` is when it started (``time.perf_counter``), for the trace. Returns
        False, storing nothing, when no such frame was recorded (the run ended first).

        A frame not yet moved into the arrays is filled in in its lists; the pending
        frames are not moved for it (a measurement a few frames late would otherwise
        move them every frame)."""
        for frame, _, start, _, offsets, durations in reversed(self._pending):
            if frame == index:  # as wide as the tracks: add_track moves pending frames
                durations[track] = seconds
                if began is not None:
                    offsets[track] = began - start
                return True
        row = self._moved_row(index)
        if row is None:
            return False
        self._dur[row, track] = seconds
        if began is not None:
            self._offset[row, track] = began - self._start[row]
        return True

    # -- summaries ---------------------------------------------------------------

    @property
    def frames(self) -> int:
        return self.count

    @property
    def deadline_misses(self) -> int:
        return int(np.count_nonzero(self.total[: self.count] > self.budget_s))

    def _summary(self, name: str, times: np.ndarray, budget: float | None) -> TrackSummary:
        times = times[~np.isnan(times)]
        if times.size == 0:
            return TrackSummary(name, 0, *([float("nan")] * 6), 0)
        over = int(np.count_nonzero(times > budget)) if budget is not None else 0
        return TrackSummary(name, int(times.size), *percentiles_ms(times),
                            float(times.mean() * 1e3), over)

    def summary(self) -> list[TrackSummary]:
        """Whole-frame summary first, then one per track."""
        n = self.count
        rows = [self._summary("frame", self.total[:n], self.budget_s)]
        for i, name in enumerate(self.tracks):
            rows.append(self._summary(name, self.dur[:n, i], self.track_budget_s.get(name)))
        return rows

    def as_dict(self) -> dict:
        """Everything, JSON-ready: summary, faults and every frame's times (ms)."""
        n = self.count

        def ms(a: np.ndarray) -> list:
            return [None if np.isnan(v) else round(float(v) * 1e3, 6) for v in a]

        return {
            "frames": n,
            "budget_ms": self.budget_s * 1e3,
            "deadline_misses": self.deadline_misses,
            "interrupted": self.interrupted,
            "ending": self.ending,
            "ending_detail": self.ending_detail,
            "interrupted_in": self.interrupted_in,
            "summary": [s.__dict__ for s in self.summary()],
            "faults": [f.__dict__ for f in self.faults],
            "hangs": [dict(h.__dict__) for h in list(self.hangs)],
            "counters": self.counters,
            "cadence": {name: c.as_dict() for name, c in self.cadence.items()},
            "per_frame": {
                "index": self.index[:n].tolist(),
                "t_display_s": self.t_display[:n].tolist(),
                "frame_ms": ms(self.total[:n]),
                **{name: ms(self.dur[:n, i]) for i, name in enumerate(self.tracks)},
            },
        }

    def chrome_trace(self) -> dict:
        """Chrome trace-event JSON (opens in Perfetto): one track (tid) per stage/step."""
        n = self.count
        index, start, total, offset, dur = (self.index, self.start, self.total, self.offset,
                                            self.dur)
        t0 = start[0] if n else 0.0
        events: list[dict] = [
            {"ph": "M", "pid": 1, "tid": 0, "name": "thread_name", "args": {"name": "frame"}}
        ]
        events += [
            {"ph": "M", "pid": 1, "tid": i + 1, "name": "thread_name", "args": {"name": name}}
            for i, name in enumerate(self.tracks)
        ]
        for r in range(n):
            base = (start[r] - t0) * 1e6
            events.append({"ph": "X", "pid": 1, "tid": 0, "name": f"frame {index[r]}",
                           "ts": base, "dur": total[r] * 1e6})
            for i, name in enumerate(self.tracks):
                off, d = offset[r, i], dur[r, i]
                if not (np.isnan(d) or np.isnan(off)):
                    events.append({"ph": "X", "pid": 1, "tid": i + 1, "name": name,
                                   "ts": base + off * 1e6, "dur": d * 1e6})
        return {"traceEvents": events, "displayTimeUnit": "ms"}
