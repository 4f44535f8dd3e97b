"""The window target: a GLFW desktop window mirroring both eyes, with a desktop head.

Shows both eyes side by side (or one eye; Tab cycles both / left / right), each
letterboxed to the eye's aspect ratio so resizing never stretches the image. The
mouse and keyboard move a desktop head that the target writes into
:data:`~vrshare.layout.TARGET_POSES` (row 0) each frame, for a tracking stage with
``source = "desktop"``:

* drag with the left mouse button: look around (yaw, pitch)
* W/A/S/D: walk forward/left/back/right, Q/E: down/up; Shift: three times faster
* R: back to the start pose; Esc (or closing the window): quit

A desktop right hand rides with the head (row 2 of ``TARGET_POSES``: 0.2 m right,
0.25 m down and 0.35 m ahead of the eyes, pointing where the head looks), and keys
drive that hand's controller buffers (:mod:`.controls`; the left hand is unbound):

* F (held): squeeze, right mouse button: trigger
* arrow keys: thumbstick; 1 / 2: primary (A) / secondary (B); M: menu

Haptic requests are kept in :attr:`WindowTarget.controls` (a desktop has no rumble).
With ``[display] record_input`` set, the keys are written to that input track for the
headless target to play back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
from .controls import COLUMN, ControllerInput, RecordedControllers
from .input_track import InputTrackError, Recorder

START_POSITION = (0.0, 1.6, 2.5)  # m: standing, eyes 1.6 m up, 2.5 m back from the origin
WALK_SPEED = 1.4  # m/s
FAST = 3.0  # speed factor with Shift held
LOOK_RAD_PER_PX = 0.004  # rad of yaw/pitch per pixel dragged
MAX_PITCH = math.radians(89.0)
EYE_MODES = ("both", "left", "right")
HAND_OFFSET = (0.2, -0.25, -0.35)  # m: the desktop right hand in the head's frame
# right-hand controller components held by a key or mouse button (GLFW constant names)
BUTTONS = (("squeeze", "KEY_F"), ("trigger", "MOUSE_BUTTON_RIGHT"), ("primary", "KEY_1"),
           ("secondary", "KEY_2"), ("menu", "KEY_M"))
STICK = (("thumbstick_x", "KEY_LEFT", "KEY_RIGHT"), ("thumbstick_y", "KEY_DOWN", "KEY_UP"))
DESKTOP_BOUND = tuple(name for name, _ in BUTTONS) + tuple(name for name, _, _ in STICK)


def desktop_controls(pressed: Callable[[str], bool], right: np.ndarray) -> None:
    """Fill the right hand's controller row (C,) from ``pressed(glfw constant name)``."""
    for name, key in BUTTONS:
        right[COLUMN[name]] = float(pressed(key))
    for name, negative, positive in STICK:
        right[COLUMN[name]] = float(pressed(positive)) - float(pressed(negative))


def desktop_hand(head_pose: np.ndarray) -> np.ndarray:
    """The desktop right hand's pose (7,) for a head pose: offset in the head's frame,
    the head's orientation."""
    hand = head_pose.copy()
    hand[:3] += quat.rotate(head_pose[3:7], np.asarray(HAND_OFFSET))
    return hand


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
                                own_clock=False, controllers=True)
    sources = (layout.TARGET_POSES, *ControllerInput.sources)

    def __init__(self, settings: DisplaySettings | None = None, *,
                 frame_hz: float = DEFAULT_FRAME_HZ) -> None:
        self.settings = settings = settings or DisplaySettings(target="window")
        self.controls = RecordedControllers()
        for name in DESKTOP_BOUND:
            self.controls.input.bound[1, COLUMN[name]] = 1.0
        self.recorder: Recorder | None = None
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
        if settings.record_input is not None:
            try:
                self.recorder = Recorder(settings.record_input)
            except InputTrackError:  # the window is open: close it before saying so
                self.close()
                raise

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
        self._rows = np.zeros((2, layout.POSE_SIZE + 2))  # head, right hand
        self.controls.declare(bank)

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
            rows = self._rows
            rows[0, : layout.POSE_SIZE] = self.head.pose()
            rows[1, : layout.POSE_SIZE] = desktop_hand(rows[0, : layout.POSE_SIZE])
            rows[:, layout.POSE_SIZE] = frame.t_now  # sample time (s)
            rows[:, layout.POSE_SIZE + 1] = 1.0  # valid; the left hand stays 0 (not tracked)
            backend.to_device(rows[0], out=self.poses[0], label="target_poses")
            backend.to_device(rows[1], out=self.poses[2], label="target_poses")
            window = self.window

            def pressed(name: str) -> bool:
                code = getattr(glfw, name)
                get = glfw.get_mouse_button if name.startswith("MOUSE") else glfw.get_key
                return get(window, code) == glfw.PRESS

            desktop_controls(pressed, self.controls.input.state[1])
            if self.recorder is not None:
                self.recorder.record(frame.t_now, self.controls.input.state)
            self.controls.input.publish(bank, frame.t_now, frame.index)

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
        self.controls.record_haptics(frame.index)
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
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
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
