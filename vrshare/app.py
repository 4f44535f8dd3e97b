"""Assemble a run from a pipeline/scene file: bank, stages, clock, loop.

The core knows nothing of renderers and targets; a display path joins a run as
*steps* (``render``, ``submit``) that the frame loop times after the stages, and
as *sources* (buffers a target writes, such as desktop input).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, RunFile, build, load_run_file
from .pipeline import (
    Clock,
    FrameLoop,
    FrameStats,
    Pipeline,
    Stage,
    StageConfig,
    StageFault,
    make_clock,
    resolve,
)
from .pipeline.cadence import CADENCE_KEYS, cadence_of
from .pipeline.loop import Step
from .weights import WeightBank

log = logging.getLogger(__name__)


def make_stages(run_file: RunFile) -> tuple[list[Stage], dict[str, float]]:
    """Instantiate the enabled ``[[stage]]`` entries with validated settings.

    Returns the stages and their per-stage budgets (s).
    """
    stages: list[Stage] = []
    budgets: dict[str, float] = {}
    for i, spec in enumerate(run_file.stages):
        if not spec.enabled:
            continue
        cls = resolve(spec.type)
        where = f"{run_file.path} [[stage]] #{i + 1} ({spec.type}) settings"
        settings = build(cls.Settings, spec.settings, where)
        try:
            stage = cls(settings, name=spec.name or None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        overrides = {key: getattr(spec, key) for key in CADENCE_KEYS
                     if getattr(spec, key) is not None}
        try:
            cadence_of(stage, **overrides)
        except ValueError as exc:
            raise ConfigError(f"{run_file.path} [[stage]] #{i + 1} ({spec.type}) {exc}") from exc
        for key, value in overrides.items():
            setattr(stage, key, value)  # the instance's cadence, as with its name
        if spec.budget_ms is not None:
            budgets[stage.name] = spec.budget_ms / 1e3
        stages.append(stage)
    return stages, budgets


@dataclass
class Run:
    """Everything one run holds; close it (or use ``with``) to release it.

    ``target`` and ``renderer`` are set for a run with a display path
    (:func:`vrshare.display.open_display`) and None for the stages alone.
    """

    file: RunFile
    bank: WeightBank
    pipeline: Pipeline
    loop: FrameLoop
    scene: Any = None  # the loaded vrshare.scene.Scene, or None
    target: Any = None  # the vrshare.targets.Target drawn into
    renderer: Any = None  # the vrshare.render.Renderer
    camera: Any = None  # the vrshare.render.camera.VirtualCamera an optical stage reads

    def play(self, frames: int | None = None, *, seconds: float | None = None,
             progress: Callable[[int], None] | None = None,
             ) -> tuple[FrameStats, Exception | None]:
        """Run the frame loop and keep its stats however the run ends.

        Returns the stats and, when a step raised (which ends the run; the loop has
        recorded it as a fault), that exception instead of raising it. Ctrl-C and
        ``SystemExit`` from a stage end the run as the loop documents; a
        ``KeyboardInterrupt`` that lands just after the loop returned is treated alike.
        """
        error = None
        try:
            self.loop.run(frames, seconds=seconds, progress=progress)
        except KeyboardInterrupt as exc:
            stats = self.loop.stats
            if not stats.interrupted:
                stats.interrupted = True
                stats.ending = getattr(exc, "ending", "interrupted")
        except Exception as exc:
            error = exc
        return self.loop.stats, error

    def close(self) -> None:
        """Close the stages, then the renderer and the virtual camera, then the target
        (whose GL context their objects live in); closing twice does nothing.

        Every part is closed even when one before it fails (a WAV file or a video is
        finalised in its part's ``close``); a failure is logged and recorded in the
        stats as a fault with phase ``"close"``, so the summary printed afterwards and
        the exit code show it.
        """
        faults = self.loop.stats.faults
        faults.extend(self.pipeline.close())
        for part in ("renderer", "camera", "target"):
            obj = getattr(self, part)
            setattr(self, part, None)
            if obj is None:
                continue
            try:
                obj.close()
            except Exception as exc:
                log.error("the %s failed in close: %s: %s", part, type(exc).__name__, exc)
                faults.append(StageFault.from_exception(part, -1, exc, phase="close"))

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_run(path: str | Path | RunFile, *, clock: str | Clock | None = None,
             bank: WeightBank | None = None, scene: Any = None, sources: Sequence[str] = (),
             steps: Sequence[tuple[str, Step]] = (), extras: dict[str, Any] | None = None) -> Run:
    """Load ``path`` (or take an already loaded run file) and set up its pipeline,
    ready for ``run.loop.run(...)``.

    ``clock`` (a name, or a clock object such as a target's) overrides the file's
    ``[pipeline] clock``; ``sources`` and ``steps``
    come from a display path (buffers it writes must already be declared in
    ``bank``).
    """
    run_file = path if isinstance(path, RunFile) else load_run_file(path)
    settings = run_file.pipeline
    bank = bank if bank is not None else WeightBank()
    stages, budgets = make_stages(run_file)
    pipeline = Pipeline(stages, sources=(*settings.sources, *sources), budgets_s=budgets)
    configs = {
        st.name: StageConfig(st.settings, settings.frame_hz, run_file.base_dir, scene,
                             dict(extras or {}))
        for st in pipeline.stages
    }
    pipeline.setup(bank, configs)
    if clock is None or isinstance(clock, str):
        clock = make_clock(clock or settings.clock, settings.frame_hz)
    loop = FrameLoop(pipeline, bank, clock, steps)
    return Run(run_file, bank, pipeline, loop, scene)


Write = Callable[[FrameStats, bool], list[Path]]


def finish(run: Run, frames: int | None, seconds: float | None, title: str,
           write: Write | None = None) -> tuple[FrameStats, list[Path]]:
    """Play ``run`` (with a progress bar), write its results first
    (``write(stats, again=False)``), close it (stages, renderer, target: WAV and video
    files are finalised), write the results again if closing added faults
    (``write(stats, again=True)``), and print the summary, after closing so that a fault
    in ``close`` shows. A step's error is printed; the results are kept whatever ended
    the run.

    Returns the stats and the paths written; raises the
    :class:`~vrshare.report.ResultsError` of a failed write once the run is closed.
    """
    from .report import ResultsError, print_summary, progress_bar

    update, bar = progress_bar(frames, title)
    written: list[Path] = []
    results_error: ResultsError | None = None
    try:
        with bar:
            stats, error = run.play(frames, seconds=seconds, progress=update)
        if write is not None:
            try:
                written = write(stats, False)
            except ResultsError as exc:
                results_error = exc
    finally:
        faults = len(run.loop.stats.faults)
        run.close()
    stats = run.loop.stats
    if write is not None and results_error is None and len(stats.faults) != faults:
        try:
            write(stats, True)  # the JSON, now with the faults in close
        except ResultsError as exc:
            results_error = exc
    print_summary(stats, title=f"{title}: frame times (ms)")
    if error is not None:
        print(f"vrshare: {stats.ending_detail or error}", file=sys.stderr)
    if results_error is not None:
        raise results_error
    return stats, written
