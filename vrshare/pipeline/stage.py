"""The stage contract: what a stage declares and what the loop promises it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..errors import VrshareError

if TYPE_CHECKING:
    from ..weights import WeightBank

DEFAULT_FRAME_HZ = 90.0  # display refresh rate (Hz) when a run file names none


class BufferMismatch(VrshareError, ValueError):
    """A buffer a stage reads is not what the stage needs (shape, dtype, missing); the
    pipeline adds which stage declared it, since that stage is usually the one to fix."""

    def __init__(self, buffer: str, problem: str) -> None:
        super().__init__(f"buffer {buffer!r} {problem}")
        self.buffer = buffer


class Frame(NamedTuple):
    """One frame's timing, handed to every stage.

    All times are seconds on the clock's timeline (``time.perf_counter`` for real
    clocks, a virtual timeline starting at 0 for the ``virtual`` clock, or the
    OpenXR runtime's time converted to seconds). Immutable; a named tuple rather than
    a frozen dataclass because one is made every frame (a third of the cost).
    """

    index: int  # 0, 1, 2, ...
    t_now: float  # when the frame started (s)
    t_display: float  # predicted time its image reaches the eyes (s); tracking predicts to it
    budget_s: float  # time the frame may take before it misses its deadline (s)


@dataclass
class NoSettings:
    """Settings of a stage that takes none."""


@dataclass(frozen=True)
class StageConfig:
    """What ``Stage.setup`` gets besides the bank: its settings and the run's context."""

    settings: Any  # an instance of the stage's ``Settings`` dataclass
    frame_hz: float = DEFAULT_FRAME_HZ  # display refresh rate (Hz)
    base_dir: Path = Path(".")  # folder relative asset paths resolve against
    scene: Any = None  # the loaded vrshare.scene.Scene, when the run file has one
    extras: dict[str, Any] = field(default_factory=dict)


class Stage:
    """Base class of a pipeline stage.

    Subclasses set ``name``, ``reads`` and ``writes`` (class attributes, or instance
    attributes assigned in ``__init__`` when they depend on settings), and may set
    ``Settings`` to a dataclass describing the keys their ``[stage.settings]`` table
    accepts; the pipeline validates the table against it before ``setup``.

    The real-time contract of :meth:`process`:

    * It runs once per frame, after every stage that writes a buffer it reads, in an
      order derived from ``reads``/``writes``, on the frame loop's thread; or, by its
      cadence (``rate_hz``, ``mode``), less often or on a worker thread of its own,
      where the arrays ``setup`` got are private copies the loop fills and publishes
      (:mod:`vrshare.pipeline.paced`).
    * It reads and writes bank buffers **in place** (``buf[...] = ...``, ``out=``)
      and allocates nothing it could have allocated in :meth:`setup`. The arrays are
      NumPy or CuPy (``vrshare.backend.array_module(buf)``), shapes and dtypes as
      declared by their writer, units as documented by it.
    * ``frame.t_display`` is the predicted display time (s) to aim outputs at.
    * The loop, not the stage, stamps buffer versions and publishes snapshots of
      the buffers in ``writes`` after ``process`` returns.
    * If it raises, the loop records the stage, frame and traceback, disables the
      stage for the rest of the run and goes on producing frames; the buffers it
      writes keep their last values. If it takes longer than its budget the overrun
      is counted and reported.
    """

    name: ClassVar[str] = ""
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    # read when something provides them (a display target's input): the stage runs after
    # their writer, and ``setup`` sees whether they exist (``name in bank``)
    optional_reads: tuple[str, ...] = ()
    Settings: ClassVar[type] = NoSettings
    # scheduling defaults, overridden by the [[stage]] keys of the same names (see
    # vrshare.pipeline.cadence): "sync" or "async"; at most rate_hz runs per second
    # (None: every frame); frames until an async run's outputs are seen; what a sync
    # run over its budget does ("wait", "skip" or "async")
    mode: ClassVar[str] = "sync"  # or "async", "process"
    rate_hz: ClassVar[float | None] = None
    latency_frames: ClassVar[int | None] = None
    on_overrun: ClassVar[str] = "wait"
    device: ClassVar[str] = "auto"  # where its arrays live: "auto", "host" or "gpu"

    def __init__(self, settings: Any = None, *, name: str | None = None) -> None:
        self.settings = self.Settings() if settings is None else settings
        if name:
            self.name = name  # type: ignore[misc]  # instance name overrides the class's

    def setup(self, bank: WeightBank, config: StageConfig) -> None:
        """Declare buffers and load parameters; runs once before the first frame."""

    def process(self, frame: Frame, bank: WeightBank) -> None:
        """Do one frame's work in place (see the class docstring for the contract)."""
        raise NotImplementedError

    def counters(self) -> dict[str, int]:
        """Event counts to report with the run's stats (rejected inputs, underruns...).

        Called by the loop at the end of a run, on its thread; may copy to the host.
        """
        return {}

    def close(self) -> None:
        """Release what ``setup`` acquired (files, threads, devices)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} reads={self.reads} writes={self.writes}>"
