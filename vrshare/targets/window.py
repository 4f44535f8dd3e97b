"""The window target: a GLFW desktop window mirroring both eyes, with a desktop head.

Shows both eyes side by side (or one eye; Tab cycles both / left / right), each
letterboxed to the eye's aspect ratio so resizing never stretches the image. The
mouse and keyboard move a desktop head that the target writes into
:data:`~vrshare.layout.TARGET_POSES` (row 0) each frame, for a tracking stage with
``source = "desktop"``:

* drag with the left mouse button: look around (yaw, pitch)
* W/A/S/D: walk forward/left/back/right, Q/E: down/up; Shift: three times faster
* R: back to the start pose; Esc (or closing the window): quit
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend, layout
from ..geometry import quat
from ..pipeline import DEFAULT_FRAME_HZ, Frame
from .base import (
    GL_REQUIRE,
    Capabilities,
    DisplaySettings,
    EyeSurface,
    Target,
    TargetError,
    check_gl_size,
)

START_POSITION = (0.0, 1.6, 2.5)  # m: standing, eyes 1.6 m up, 2.5 m back from the origin
WALK_SPEED = 1.4  # m/s
FAST = 3.0  # speed factor with Shift held
LOOK_RAD_PER_PX = 0.004  # rad of yaw/pitch per pixel dragged
MAX_PITCH = math.radians(89.0)
EYE_MODES = ("both", "left", "right")


class DesktopHead:
    """A head pose driven by mouse and keyboard: yaw about +Y, pitch about +X, walking
    in the horizontal plane of the yaw. Times in seconds, distances in metres."""

    def __init__(self, position: Sequence[float] = START_POSITION) -> None:
        self.start = np.asarray(position, np.float64)
        self.reset()

    def reset(self) -> None:
        self.position = self.start.copy()
        self.yaw = 0.0  # rad, positive turns left
        self.pitch = 0.0  # rad, positive looks up

    def look(self, dx_px: float, dy_px: float) -> None:
        """Apply a mouse drag (screen pixels, y down)."""
        self.yaw -= dx_px * LOOK_RAD_PER_PX
        self.pitch = float(np.clip(self.pitch - dy_px * LOOK_RAD_PER_PX, -MAX_PITCH, MAX_PITCH))

    def move(self, forward: float, right: float, up: float, dt: float, fast: bool = False) -> None:
        """Walk for ``dt`` seconds; each direction in -1..1."""
        speed = WALK_SPEED * (FAST if fast else 1.0) * dt
        s, c = math.sin(self.yaw), math.cos(self.yaw)
        # the head's forward is -Z turned by yaw; its right is +X turned by yaw
        self.position += speed * (forward * np.array([-s, 0.0, -c])
                                  + right * np.array([c, 0.0, -s])
                                  + up * np.array([0.0, 1.0, 0.0]))

    def pose(self) -> np.ndarray:
        """[px, py, pz, qx, qy, qz, qw]: yaw, then pitch in the turned frame."""
        return np.concatenate([self.position, quat.from_yaw_pitch(self.yaw, self.pitch)])


def letterbox(width: int, height: int, columns: int, aspect: float) -> list[tuple[int, ...]]:
    """Viewports (x, y, w, h) of ``columns`` equal columns of a ``width`` x ``height``
    window, each the largest centred rectangle of ``aspect`` (w / h) in its column."""
    column = width // columns
    w = min(column, round(height * aspect))
    h = min(height, round(column / aspect))
    x0, y0 = (column - w) // 2, (height - h) // 2
    return [(i * column + x0, y0, w, h) for i in range(columns)]


def _glfw() -> Any:
    try:
        import glfw
    except ImportError as exc:
        raise TargetError(f"the window target needs glfw: {exc} (pip install glfw)") from exc
    return glfw


class WindowTarget(Target):
    """A GLFW window with a desktop head (see the module docstring for the controls)."""

    name = "window"
    capabilities = Capabilities(stereo=False, vsync=True, input=True, capture=True,
                                own_clock=False)
    sources = (layout.TARGET_POSES,)

    def __init__(self, settings: DisplaySettings | None = None, *,
                 frame_hz: float = DEFAULT_FRAME_HZ) -> None:
        self.settings = settings = settings or DisplaySettings(target="window")
        glfw = self.glfw = _glfw()
        if not glfw.init():
            raise TargetError(_glfw_error(
                glfw, "cannot open a window: GLFW failed to initialise (is there a display? "
                      "$DISPLAY / $WAYLAND_DISPLAY)"))
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, GL_REQUIRE // 100)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, GL_REQUIRE % 100 // 10)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        self.eye_size = (settings.width, settings.height)
        self.mode = EYE_MODES.index(settings.eyes)
        columns = 2 if settings.eyes == "both" else 1
        self.window = glfw.create_window(columns * settings.width, settings.height, "vrshare",
                                         None, None)
        if not self.window:
            message = _glfw_error(glfw, f"cannot open an OpenGL {GL_REQUIRE / 100:.1f} window")
            glfw.terminate()
            raise TargetError(message)
        glfw.make_context_current(self.window)
        glfw.swap_interval(1 if settings.vsync else 0)
        try:
            import moderngl

            self.ctx = moderngl.create_context(require=GL_REQUIRE)
        except Exception as exc:  # moderngl raises plain Exception for context failures
            glfw.destroy_window(self.window)
            glfw.terminate()
            raise TargetError(f"cannot use the window's OpenGL context: {exc}") from exc
        try:
            check_gl_size(self.ctx, settings, columns, self.name)
        except TargetError:
            self.ctx.release()
            glfw.destroy_window(self.window)
            glfw.terminate()
            raise
        self.head = DesktopHead()
        self._cursor: tuple[float, float] | None = None
        self._t_last: float | None = None
        self.poses: Any = None
        self._image: np.ndarray | None = None
        glfw.set_key_callback(self.window, self._on_key)
        glfw.set_cursor_pos_callback(self.window, self._on_cursor)
        glfw.set_mouse_button_callback(self.window, self._on_button)

    # -- input ----------------------------------------------------------------------------

    def _on_key(self, window: Any, key: int, scancode: int, action: int, mods: int) -> None:
        glfw = self.glfw
        if action != glfw.PRESS:
            return
        if key == glfw.KEY_ESCAPE:
            glfw.set_window_should_close(window, True)
        elif key == glfw.KEY_TAB:
            self.mode = (self.mode + 1) % len(EYE_MODES)
        elif key == glfw.KEY_R:
            self.head.reset()

    def _on_button(self, window: Any, button: int, action: int, mods: int) -> None:
        if button == self.glfw.MOUSE_BUTTON_LEFT:
            self._cursor = self.glfw.get_cursor_pos(window) if action == self.glfw.PRESS else None

    def _on_cursor(self, window: Any, x: float, y: float) -> None:
        if self._cursor is not None:
            self.head.look(x - self._cursor[0], y - self._cursor[1])
            self._cursor = (x, y)

    def _axis(self, negative: int, positive: int) -> float:
        pressed = self.glfw.get_key
        return float(pressed(self.window, positive) == self.glfw.PRESS) - \
            float(pressed(self.window, negative) == self.glfw.PRESS)

    # -- the target contract -----------------------------------------------------------------

    def declare(self, bank: Any) -> None:
        self.poses = bank.state(layout.TARGET_POSES, (len(layout.DEVICES), layout.POSE_SIZE + 2),
                                "float64")
        self._row = np.zeros(layout.POSE_SIZE + 2)

    def poll(self, frame: Frame, bank: Any) -> None:
        glfw = self.glfw
        glfw.poll_events()
        dt = 0.0 if self._t_last is None else frame.t_now - self._t_last
        self._t_last = frame.t_now
        k = glfw
        shift = glfw.get_key(self.window, k.KEY_LEFT_SHIFT) == k.PRESS
        self.head.move(self._axis(k.KEY_S, k.KEY_W), self._axis(k.KEY_A, k.KEY_D),
                       self._axis(k.KEY_Q, k.KEY_E), dt, shift)
        if self.poses is not None:
            row = self._row
            row[: layout.POSE_SIZE] = self.head.pose()
            row[layout.POSE_SIZE] = frame.t_now  # sample time (s)
            row[layout.POSE_SIZE + 1] = 1.0  # valid; controllers stay 0 (not tracked)
            self.poses[0] = backend.to_device(row, label="target_poses") \
                if backend.array_module(self.poses) is not np else row

    def surfaces(self, frame: Frame) -> Sequence[EyeSurface]:
        width, height = self.glfw.get_framebuffer_size(self.window)
        if width == 0 or height == 0:  # minimised
            return []
        screen = self.ctx.screen
        screen.viewport = (0, 0, width, height)
        screen.clear(0.0, 0.0, 0.0, 1.0)  # the letterbox bars
        eyes = (0, 1) if EYE_MODES[self.mode] == "both" else (self.mode - 1,)
        aspect = self.eye_size[0] / self.eye_size[1]
        return [EyeSurface(eye, screen, viewport)
                for eye, viewport in zip(eyes, letterbox(width, height, len(eyes), aspect),
                                          strict=True)]

    def submit(self, frame: Frame) -> None:
        if self.settings.capture != "none":  # the back buffer is undefined after the swap
            width, height = self.glfw.get_framebuffer_size(self.window)
            data = self.ctx.screen.read(viewport=(0, 0, width, height), components=4)
            self._image = np.frombuffer(data, np.uint8).reshape(height, width, 4)[::-1]
        self.glfw.swap_buffers(self.window)

    @property
    def should_close(self) -> bool:
        return bool(self.glfw.window_should_close(self.window))

    def capture(self) -> np.ndarray:
        """The last presented image, top row first; needs ``[display] capture`` other than
        "none" (the window then reads each frame back before swapping)."""
        if self._image is None:
            raise TargetError("the window keeps presented images only with [display] "
                              "capture set (e.g. \"numpy\")")
        return self._image

    def close(self) -> None:
        if self.window is None:
            return
        self.ctx.release()
        self.glfw.destroy_window(self.window)
        self.window = None
        self.glfw.terminate()


def _glfw_error(glfw: Any, message: str) -> str:
    """``message`` with GLFW's own description of its last error, if any."""
    code, description = glfw.get_error()
    if code and description:
        text = description.decode() if isinstance(description, bytes) else str(description)
        return f"{message}: {text}"
    return message
