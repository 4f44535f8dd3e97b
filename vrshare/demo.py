"""The bundled demo: ``scenes/demo.toml`` in a window, on a headset, or headless.

In a window or on a headset the demo runs until closed, the head following the mouse
and keyboard or the headset (the demo's tracking stage has ``prefer_target = true``).
Headless, it runs a few seconds of the virtual clock and leaves a video, a contact
sheet of both eyes and the frame-time results behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import resources
from .app import finish
from .config import load_run_file
from .display import open_display
from .errors import require
from .targets.choice import choose_target
from .targets.headless import VIDEO_NAME

log = logging.getLogger(__name__)

DEMO_SECONDS = 4.0  # headless demo length (s of the virtual clock)
DEMO_VIDEO_HZ = 30.0  # headless demo video frame rate (Hz)
CONTACT_SHEET_FRAMES = 6


def contact_sheet(video: Path, out: Path, count: int = CONTACT_SHEET_FRAMES) -> Path:
    """A PNG of ``count`` frames spread over ``video``, one row per frame (both eyes)."""
    imageio_ffmpeg = require("imageio_ffmpeg", "media", "reading the demo video")
    image = require("PIL.Image", "media", "writing the contact sheet")

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
    image.fromarray(np.concatenate(rows, axis=0)).save(out)
    return out


def run_demo(target: str = "auto", seconds: float | None = None,
             out_dir: Path = Path("vrshare-demo")) -> int:
    """Run the bundled demo scene; returns a process exit code (0, or 1 after a fault).

    With a window (or headset) it runs until closed (or ``seconds``); headless it
    runs ``seconds`` (default 4 s) of the virtual clock and writes a video, a contact
    sheet of both eyes and the frame-time results into ``out_dir``, which is checked
    writable before the first frame. However the run ends (its seconds, Ctrl-C, a
    signal through the ``vrshare`` command, a stage's ``SystemExit``, a step's error),
    the results of the completed frames are written first, then the run is closed
    (the video finalised), then the contact sheet is made.
    """
    from .report import check_writable, write_results

    path = resources.path("scenes", "demo.toml")
    run_file = load_run_file(path)
    name, why = choose_target(target, run_file.display.get("target", "auto"))
    log.info("demo on the %s target (%s)", name, why)
    if name != "headless":
        run = open_display(run_file, target=name)
        stats, _ = finish(run, None, float("inf") if seconds is None else seconds, "demo")
        return 1 if stats.faults else 0

    seconds = DEMO_SECONDS if seconds is None else seconds
    frame_hz = run_file.pipeline.frame_hz
    every = max(1, round(frame_hz / DEMO_VIDEO_HZ))
    out_dir = Path(out_dir)
    check_writable(out_dir, folder=True)
    results = out_dir / "results.json"
    extra = {"file": str(path)}

    def write(stats, again: bool) -> list[Path]:
        return write_results(stats, results, extra, trace=not again, plot_png=not again)

    run = open_display(run_file, target="headless", clock="virtual", capture="video",
                       capture_every=every, capture_dir=out_dir, video_fps=frame_hz / every)
    stats, written = finish(run, None, seconds, "demo (headless)", write)
    video = out_dir / VIDEO_NAME
    try:
        written = [video, contact_sheet(video, out_dir / "contact_sheet.png"), *written]
    except Exception as exc:  # no frames, or no video: the results are what matters
        log.error("no contact sheet: %s: %s", type(exc).__name__, exc)
        written = [video, *written] if video.exists() else written
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if stats.faults else 0
