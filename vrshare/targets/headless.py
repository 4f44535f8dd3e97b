"""The headless target: an offscreen EGL framebuffer, both eyes side by side.

Used for CI, benchmarks and the demo on machines without a display. Every Nth
submitted frame can be captured to NumPy (kept in :attr:`HeadlessTarget.frames`),
to PNG files, or to an H.264 video (imageio-ffmpeg). The image is RGBA8 holding
sRGB-encoded colour (the shader encodes), read back top row first.

With ``[display] input_track`` set, the target plays that recorded controller input
(see :mod:`.input_track`) into the controller buffers each frame and keeps the haptic
requests stages make (:attr:`HeadlessTarget.controls`), so interactive scenes run
headless in tests and benchmarks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from ..interrupts import held
from ..pipeline import DEFAULT_FRAME_HZ, Frame
from .base import (
    GL_REQUIRE,
    Capabilities,
    DisplaySettings,
    EyeSurface,
    Target,
    TargetError,
    check_gl_size,
    side_by_side,
)
from .controls import RecordedControllers
from .input_track import Playback, read_input_track

log = logging.getLogger(__name__)

VIDEO_NAME = "frames.mp4"  # in capture_dir


def standalone_context() -> Any:
    """A headless OpenGL 4.3+ context over EGL (Mesa llvmpipe, or a GPU driver)."""
    try:
        import moderngl
    except ImportError as exc:
        raise TargetError(f"the headless target needs moderngl: {exc}") from exc
    try:
        return moderngl.create_standalone_context(backend="egl", require=GL_REQUIRE)
    except Exception as exc:  # moderngl raises plain Exception when EGL finds no device
        raise TargetError(f"cannot create a headless EGL OpenGL {GL_REQUIRE / 100:.1f} context: "
                          f"{exc} (install Mesa's EGL: libegl1 libegl-mesa0 libgl1-mesa-dri)") \
            from exc


class HeadlessTarget(Target):
    """Offscreen stereo framebuffer (2 x width by height) with optional capture.

    ``ctx`` may be passed to share one GL context (tests); the target then leaves
    it open on close.
    """

    name = "headless"
    capabilities = Capabilities(stereo=False, vsync=False, input=False, capture=True,
                                own_clock=False, controllers=True)

    def __init__(self, settings: DisplaySettings | None = None, *, ctx: Any = None,
                 frame_hz: float = DEFAULT_FRAME_HZ) -> None:
        self.settings = settings = settings or DisplaySettings(target="headless")
        # PNG capture needs Pillow: known at once (before any GL object), not at the
        # first captured frame
        self._image = require("PIL.Image", "media", "PNG capture") \
            if settings.capture == "png" else None
        # controllers only with an input track, so that other runs publish nothing more
        self.controls: RecordedControllers | None = None
        self._playback: Playback | None = None
        if settings.input_track is not None:
            self._playback = Playback(read_input_track(settings.input_track))
            self.controls = RecordedControllers()
            self.controls.input.bound[...] = self._playback.track.bound()
            self.sources = self.controls.input.sources
        self._owns_ctx = ctx is None
        self.ctx = standalone_context() if ctx is None else ctx
        try:
            check_gl_size(self.ctx, settings, 2, self.name)
        except TargetError:
            if self._owns_ctx:
                self.ctx.release()
            raise
        self.eye_size = (settings.width, settings.height)
        self.size = (2 * settings.width, settings.height)
        self.color = self.ctx.texture(self.size, 4)
        self.depth = self.ctx.depth_renderbuffer(self.size)
        self.fbo = self.ctx.framebuffer([self.color], self.depth)
        self._surfaces = side_by_side(self.fbo, *self.size)
        self._pixels = np.empty((self.size[1], self.size[0], 4), np.uint8)
        self.frames: list[tuple[int, np.ndarray]] = []  # (frame index, image) for "numpy"
        self.submitted = 0
        self.captured = 0  # frames captured
        self.capture_errors = 0  # captures that failed (capturing stops at the first)
        self._capture_stopped = False
        self._writer: Any = None
        self.video_path: Path | None = None
        if settings.capture in ("png", "video"):
            settings.capture_dir.mkdir(parents=True, exist_ok=True)
        if settings.capture == "video":
            self._writer = self._open_video(frame_hz)

    def _open_video(self, frame_hz: float) -> Any:
        imageio = require("imageio.v2", "media", "video capture")
        fps = self.settings.video_fps or frame_hz / self.settings.capture_every
        self.video_path = self.settings.capture_dir / VIDEO_NAME
        try:
            return imageio.get_writer(self.video_path, fps=fps, codec="libx264", quality=7,
                                      pixelformat="yuv420p", macro_block_size=2)
        except Exception as exc:  # imageio's plugins raise several types when ffmpeg is missing
            raise TargetError(f"cannot open video {self.video_path}: {exc}") from exc

    def declare(self, bank: Any) -> None:
        if self.controls is not None:
            self.controls.declare(bank)

    def poll(self, frame: Frame, bank: Any) -> None:
        """Play the input track (if any) at the frame's start time into the controller
        buffers."""
        if self.controls is not None:
            self._playback.state_at(frame.t_now, self.controls.input.state)
            self.controls.input.publish(bank, frame.t_now, frame.index)

    def surfaces(self, frame: Frame) -> Sequence[EyeSurface]:
        return self._surfaces

    def capture(self) -> np.ndarray:
        """The framebuffer now: (height, 2 x width, 4) uint8 RGBA, top row first.

        The returned array is reused by the next call; copy it to keep it.
        """
        self.fbo.read_into(self._pixels, components=4)
        return self._pixels[::-1]

    def submit(self, frame: Frame) -> None:
        """Finish the frame as presenting it would: wait until the GPU has drawn it (or
        read it back for a capture), so each frame's time holds its own GPU work rather
        than the driver's queue deciding which later frame pays for it.

        A capture that fails (the folder became unwritable, the disk is full, the
        encoder died) stops capturing with a logged error and is counted; the run goes
        on, and a video keeps the frames written before."""
        self.submitted += 1
        if self.controls is not None:
            self.controls.record_haptics(frame.index)
        s = self.settings
        if s.capture == "none" or self._capture_stopped or (self.submitted - 1) % s.capture_every:
            self.ctx.finish()
            return
        image = self.capture()
        try:
            with held:  # a frame is both kept and counted, or neither (see interrupts)
                if s.capture == "numpy":
                    self.frames.append((frame.index, image.copy()))
                elif s.capture == "png":
                    self._image.fromarray(image).save(
                        s.capture_dir / f"frame_{frame.index:06d}.png")
                else:
                    self._writer.append_data(image[..., :3])
                self.captured += 1
        except Exception as exc:
            self._stop_capture(frame, exc)

    def _stop_capture(self, frame: Frame, exc: Exception) -> None:
        self.capture_errors += 1
        self._capture_stopped = True
        where = self.video_path if self.settings.capture == "video" else self.settings.capture_dir
        log.error("headless capture (%s) failed in frame %d: %s: %s; capturing stops, the run "
                  "goes on (%d frames captured)", where, frame.index, type(exc).__name__, exc,
                  self.captured)
        if self._writer is not None:
            try:
                self._finish_video()  # keep what was written: a video that opens
            except Exception:  # logged; the run goes on without capture
                pass

    def _finish_video(self) -> None:
        """Close the video writer (ffmpeg writes the file's index): the video opens."""
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except Exception as exc:
            log.error("closing the video %s failed: %s: %s", self.video_path,
                      type(exc).__name__, exc)
            raise
        log.info("wrote %s", self.video_path)

    def counters(self) -> dict[str, int]:
        """Frames captured and failed captures (for the run's stats)."""
        if self.settings.capture == "none":
            return {}
        return {"captured": self.captured, "capture errors": self.capture_errors}

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._finish_video()
        finally:
            for obj in (self.fbo, self.color, self.depth):
                obj.release()
            if self._owns_ctx:
                self.ctx.release()
