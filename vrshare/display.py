"""A run with its display path: target choice, renderer, and the demo.

:func:`open_display` joins a pipeline file to a target and the renderer: the
target's input buffers become pipeline sources, its ``poll`` runs right after
each frame's clock tick (before the stages), and the frame loop runs two steps
after the stages, ``render`` and ``submit``.

Target choice, logged with its reason: an explicit request (command line or
argument), then ``$VRSHARE_TARGET``, then the run file's ``[display] target``,
then automatic: OpenXR when a runtime answers, else a window when a display
exists, else headless.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from . import app, resources
from .config import ConfigError, RunFile, build, load_run_file
from .pipeline import Clock, Frame, make_clock
from .scene import load_run_scene
from .targets import TARGET_NAMES, DisplaySettings, Target, TargetClosed, load
from .targets.headless import VIDEO_NAME
from .weights import WeightBank

log = logging.getLogger(__name__)

ENV_VAR = "VRSHARE_TARGET"
DEMO_SECONDS = 4.0  # headless demo length (s of the virtual clock)
DEMO_VIDEO_HZ = 30.0  # headless demo video frame rate (Hz)
CONTACT_SHEET_FRAMES = 6


def window_unavailable() -> str | None:
    """Why no desktop window can open here (None: one can)."""
    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display ($DISPLAY and $WAYLAND_DISPLAY are unset)"
    try:
        import glfw
    except ImportError as exc:
        return f"glfw is not importable: {exc}"
    if not glfw.init():
        return "GLFW could not initialise the display"
    return None


def openxr_unavailable() -> str | None:
    """Why no OpenXR runtime can be used here (None: one answers)."""
    if importlib.util.find_spec(f"{__package__}.targets.openxr") is None:
        return "this build has no OpenXR target"
    try:
        from .targets.openxr import probe
    except ImportError as exc:
        return f"OpenXR support is not importable: {exc}"
    info = probe()
    return None if info.get("available") else str(info.get("error", "no runtime answered"))


def choose_target(requested: str = "auto", configured: str = "auto") -> tuple[str, str]:
    """The target to open and why (see the module docstring for the order)."""
    env = os.environ.get(ENV_VAR, "").strip()
    for value, why in ((requested, "requested"), (env, f"${ENV_VAR}"),
                       (configured, "the run file's [display] target")):
        if value and value != "auto":
            if value not in TARGET_NAMES:
                raise ConfigError(f"{why}: unknown target {value!r} "
                                  f"(expected auto or one of {', '.join(TARGET_NAMES)})")
            return value, why
    reason = openxr_unavailable()
    if reason is None:
        return "openxr", "automatic: an OpenXR runtime answered"
    window = window_unavailable()
    if window is None:
        return "window", f"automatic: {reason}; a display exists"
    return "headless", f"automatic: {reason}; {window}"


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

    def wait_frame(self) -> Frame:
        if self.target.should_close:
            raise TargetClosed(f"the {self.target.name} target was closed")
        frame = self.clock.wait_frame()
        self.target.poll(frame, self.bank)
        return frame


def display_settings(table: dict[str, Any], where: str, **overrides: Any) -> DisplaySettings:
    """``[display]`` settings from a run file's table, with keyword overrides (validated
    alike; paths may be given as Path)."""
    merged = {**table, **{k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()}}
    return build(DisplaySettings, merged, where)


def open_display(path: str | Path | RunFile, *, target: str = "auto",
                 clock: str | Clock | None = None, **opts: Any) -> app.Run:
    """Open ``path`` (or a loaded run file) with a target and the renderer, ready for
    ``run.loop.run(...)``.

    ``opts`` override keys of the ``[display]`` table (``width``, ``capture``, ...).
    ``run.closers`` ends with the target and the renderer, in that order.
    """
    run_file = path if isinstance(path, RunFile) else load_run_file(path)
    path = run_file.path
    settings = display_settings(run_file.display, f"{path} [display]", **opts)
    scene = load_run_scene(run_file)
    if scene is None:
        raise ConfigError(f"{path}: a displayed run needs a [scene] table")
    name, why = choose_target(target, settings.target)
    log.info("target %s (%s)", name, why)
    cls = load(name)
    frame_hz = run_file.pipeline.frame_hz
    tgt = cls(settings, frame_hz=frame_hz)
    renderer = None
    try:
        from .render import Renderer

        bank = WeightBank()
        tgt.declare(bank)
        renderer = Renderer(tgt.ctx, scene)
        own = tgt.clock()
        if own is None and clock is not None and not isinstance(clock, str):
            own = clock
        frames = TargetFrames(tgt, own, bank, frame_hz)
        draw = renderer

        def render(frame: Frame, bank: WeightBank) -> None:
            draw.render(frame, tgt.surfaces(frame))

        def submit(frame: Frame, bank: WeightBank) -> None:
            tgt.submit(frame)

        run = app.open_run(run_file, clock=frames, bank=bank, scene=scene,
                           sources=tgt.sources, steps=[("render", render), ("submit", submit)])
        try:
            renderer.bind(bank, run.loop.stats)
        except Exception:
            run.close()
            raise
        if frames.clock is None:  # started now, after the stages' setup
            frames.clock = make_clock(clock or run_file.pipeline.clock, frame_hz)
    except Exception:
        if renderer is not None:
            renderer.close()
        tgt.close()
        raise
    run.closers += [tgt, renderer]  # closed last first: the renderer, then the target
    return run


# -- the demo ------------------------------------------------------------------------------


def contact_sheet(video: Path, out: Path, count: int = CONTACT_SHEET_FRAMES) -> Path:
    """A PNG of ``count`` frames spread over ``video``, one row per frame (both eyes)."""
    import imageio_ffmpeg
    import numpy as np
    from PIL import Image

    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    width, height = meta["size"]
    total = max(1, round(meta["duration"] * meta["fps"]))
    picks = set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())
    rows = [np.frombuffer(data, np.uint8).reshape(height, width, 3)
            for i, data in enumerate(reader) if i in picks]
    reader.close()
    if not rows:
        raise ValueError(f"{video}: no frames to make a contact sheet from")
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
    return out


def run_demo(target: str = "auto", seconds: float | None = None,
             out_dir: Path = Path("vrshare-demo")) -> int:
    """Run the bundled demo scene; returns a process exit code.

    With a window (or headset) it runs until closed (or ``seconds``); headless it
    runs ``seconds`` (default 4 s) of the virtual clock and writes a video, a contact
    sheet of both eyes and the frame-time results into ``out_dir``.
    """
    from .report import print_summary, write_results

    path = resources.path("scenes", "demo.toml")
    run_file = load_run_file(path)
    name, why = choose_target(target, run_file.display.get("target", "auto"))
    log.info("demo on the %s target (%s)", name, why)
    if name != "headless":
        # the head follows the window's mouse and keyboard, or the headset
        for spec in run_file.stages:
            if spec.type == "tracking":
                spec.settings = {**spec.settings, "source": "desktop" if name == "window"
                                 else name}
                if name == "openxr":  # the headset's own per-eye fields of view
                    spec.settings["fov_from_target"] = True
        with open_display(run_file, target=name) as run:
            stats = run.loop.run(seconds=seconds if seconds is not None else float("inf"))
        print_summary(stats, title="demo: frame times (ms)")
        return 1 if stats.faults else 0

    seconds = DEMO_SECONDS if seconds is None else seconds
    frame_hz = run_file.pipeline.frame_hz
    every = max(1, round(frame_hz / DEMO_VIDEO_HZ))
    out_dir = Path(out_dir)
    with open_display(run_file, target="headless", clock="virtual", capture="video",
                      capture_every=every, capture_dir=out_dir,
                      video_fps=frame_hz / every) as run:
        stats = run.loop.run(seconds=seconds)
    video = out_dir / VIDEO_NAME
    print_summary(stats, title="demo (headless): frame times (ms)")
    written = [video, contact_sheet(video, out_dir / "contact_sheet.png")]
    written += write_results(stats, out_dir / "results.json", {"file": str(path)})
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if stats.faults else 0


__all__ = ["TargetFrames", "choose_target", "contact_sheet", "display_settings", "open_display",
           "openxr_unavailable", "run_demo", "window_unavailable"]
