"""A run with its display path: a target and the renderer joined to the pipeline.

:func:`open_display` joins a pipeline file to a target (chosen by
:mod:`vrshare.targets.choice`, logged with its reason) and the renderer: the
target's input buffers become pipeline sources (a tracking stage with
``prefer_target`` follows them), its ``poll`` runs right after each frame's clock
tick (before the stages), and the frame loop runs two steps after the stages,
``render`` and ``submit``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import app
from .config import ConfigError, RunFile, build, load_run_file
from .pipeline import Clock, Frame, make_clock
from .scene import load_run_scene
from .targets import DisplaySettings, Target, TargetClosed, load
from .targets.choice import choose_target
from .weights import WeightBank

log = logging.getLogger(__name__)


class TargetFrames:
    """The frame clock of a displayed run: the clock's tick, then ``target.poll``.

    Raises :class:`TargetClosed` (which the loop treats like Ctrl-C) once the target
    asks to close.
    """

    def __init__(self, target: Target, clock: Clock | None, bank: WeightBank,
                 frame_hz: float) -> None:
        self.target = target
        self.clock = clock  # may be set later, so that a real-time clock starts after setup
        self.bank = bank
        self.frame_hz = clock.frame_hz if clock is not None else frame_hz

    @property
    def deterministic(self) -> bool:
        """The wrapped clock's (see vrshare.pipeline.clock.Clock)."""
        return bool(getattr(self.clock, "deterministic", False))

    def wait_frame(self) -> Frame:
        if self.target.should_close:
            raise TargetClosed(f"the {self.target.name} target was closed")
        frame = self.clock.wait_frame()
        self.target.poll(frame, self.bank)
        return frame


def display_settings(run_file: RunFile, **overrides: Any) -> DisplaySettings:
    """The run file's ``[display]`` settings with keyword overrides (validated alike;
    paths may be given as Path). A ``capture_dir`` written in the file is relative to
    the file (so are ``input_track`` and ``record_input``); one given as an override is
    taken as it is."""
    where = f"{run_file.path} [display]"
    merged = {**run_file.display,
              **{k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()}}
    settings = build(DisplaySettings, merged, where)
    if "capture_dir" not in overrides:
        settings.capture_dir = run_file.base_dir / settings.capture_dir
    for key in ("input_track", "record_input"):
        if getattr(settings, key) is not None and key not in overrides:
            setattr(settings, key, run_file.base_dir / getattr(settings, key))
    return settings


def virtual_camera_spec(run_file: RunFile) -> Any:
    """The ``camera`` table of the run's ``optical_tracking`` stage reading the virtual
    camera (``source = "virtual"``, the default), as a CameraSpec; None without one."""
    from .geometry.pinhole import CameraSpec

    specs = [st for st in run_file.stages if st.type == "optical_tracking" and st.enabled
             and st.settings.get("source", "virtual") == "virtual"]
    if len(specs) > 1:
        raise ConfigError(f"{run_file.path}: {len(specs)} optical_tracking stages read the "
                          "virtual camera; the bank has one camera image")
    if not specs:
        return None
    return build(CameraSpec, specs[0].settings.get("camera", {}),
                 f"{run_file.path} [stage.settings.camera]")


def open_display(path: str | Path | RunFile, *, target: str = "auto",
                 clock: str | Clock | None = None, **opts: Any) -> app.Run:
    """Open ``path`` (or a loaded run file) with a target and the renderer, ready for
    ``run.loop.run(...)``; ``run.target`` and ``run.renderer`` are set.

    ``opts`` override keys of the ``[display]`` table (``width``, ``capture``, ...).
    """
    from .render import Renderer

    run_file = path if isinstance(path, RunFile) else load_run_file(path)
    settings = display_settings(run_file, **opts)
    scene = load_run_scene(run_file)
    if scene is None:
        raise ConfigError(f"{run_file.path}: a displayed run needs a [scene] table")
    name, why = choose_target(target, settings.target)
    log.info("target %s (%s)", name, why)
    frame_hz = run_file.pipeline.frame_hz
    tgt = load(name)(settings, frame_hz=frame_hz)
    renderer = run = camera = None
    try:
        bank = WeightBank()
        tgt.declare(bank)
        renderer = Renderer(tgt.ctx, scene)
        sources, steps = tuple(tgt.sources), []
        spec = virtual_camera_spec(run_file)
        if spec is not None:  # the optical stage's frames: drawn after each frame's render
            from .render import camera as vcam

            sources += vcam.declare(bank, spec)
            camera = vcam.VirtualCamera(tgt.ctx, scene, spec)
            steps.append(("camera", vcam.CameraStep(camera)))
        own = tgt.clock()
        if own is None and clock is not None and not isinstance(clock, str):
            own = clock
        frames = TargetFrames(tgt, own, bank, frame_hz)
        draw = renderer.render

        def render(frame: Frame, bank: WeightBank) -> None:
            draw(frame, tgt.surfaces(frame))

        def submit(frame: Frame, bank: WeightBank) -> None:
            tgt.submit(frame)

        run = app.open_run(run_file, clock=frames, bank=bank, scene=scene, sources=sources,
                           steps=[("render", render), *steps, ("submit", submit)])
        run.target, run.renderer, run.camera = tgt, renderer, camera
        for _, step in steps:
            step.bind(bank)
        run.loop.counter_sources.append((f"{tgt.name} target", tgt.counters))
        renderer.bind(bank, run.loop.stats, declared_by=run.pipeline.declared_by)
        if frames.clock is None:  # started now, after the stages' setup
            frames.clock = make_clock(clock or run_file.pipeline.clock, frame_hz)
    except BaseException:
        if run is not None:
            run.close()  # the stages, the renderer and the target
        else:
            for part in (renderer, camera):
                if part is not None:
                    part.close()
            tgt.close()
        raise
    return run


__all__ = ["TargetFrames", "display_settings", "open_display"]
