"""The OpenXR display target: an :class:`~.session.XrSession` behind the target contract.

:class:`OpenXRTarget` maps the session onto :mod:`vrshare.targets.base`: its clock is
the frame generator (``predictedDisplayTime`` becomes ``Frame.t_display``: seconds
since the first frame began, so runs start near 0 s as with the other clocks), ``poll``
locates the head and the eye fields of view at that time into ``TARGET_POSES`` /
``TARGET_FOV`` and reads the controllers into the ``controller_*`` buffers
(:mod:`.controllers`), ``surfaces`` acquires the eye images (none when the runtime says
not to render) and ``submit`` sends the stages' new haptic requests, releases the
images and ends the frame with a projection layer whose views carry the pose and field
of view each eye was actually drawn with (read back from ``EYE_VIEW`` / ``EYE_PROJ``),
so the compositor reprojects correctly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import backend, layout
from ...geometry import eyes
from ...pipeline import DEFAULT_FRAME_HZ, Frame
from ..base import (
    GL_REQUIRE,
    Capabilities,
    DisplaySettings,
    EyeSurface,
    Target,
    TargetClosed,
    TargetError,
)
from ..controls import ControllerInput, HapticRequests
from .gl import HiddenWindow, choose_binding
from .runtime import runtime_extensions
from .session import NS, XrFrame, XrSession

if TYPE_CHECKING:
    from ...weights import WeightBank

log = logging.getLogger(__name__)


def _context(kind: str) -> tuple[Any, Any]:
    """A ModernGL context for the binding kind, and the hidden window holding it (or None).

    "egl": a standalone EGL context (no X server). "glx": the context of a hidden GLFW
    window, because runtimes under X want a GLX context whose FB config has an X visual,
    as a window's has (standalone GLX contexts may use visual-less pbuffer configs).
    """
    try:
        import moderngl
    except ImportError as exc:
        raise TargetError(f"the OpenXR target needs moderngl: {exc}") from exc
    window = None
    try:
        if kind == "egl":
            return moderngl.create_standalone_context(backend="egl", require=GL_REQUIRE), None
        window = HiddenWindow(GL_REQUIRE)
        return moderngl.create_context(require=GL_REQUIRE), window
    except Exception as exc:  # moderngl/GLFW raise plain Exception when no context can be made
        if window is not None:
            window.close()
        raise TargetError(f"cannot create an OpenGL {GL_REQUIRE / 100:.1f} context over "
                          f"{kind.upper()} for OpenXR: {exc}") from exc


class _XrClock:
    """The target's frame clock: each tick is one waited and begun OpenXR frame."""

    def __init__(self, target: OpenXRTarget) -> None:
        self.target = target
        self.frame_hz = target.frame_hz

    def wait_frame(self) -> Frame:
        return self.target.next_frame()


class OpenXRTarget(Target):
    """A headset through the OpenXR runtime the loader finds (``XR_RUNTIME_JSON`` or the
    system's active runtime). Eye images use the runtime's recommended size; the
    ``[display]`` width and height do not apply."""

    name = "openxr"
    capabilities = Capabilities(stereo=True, vsync=True, input=True, capture=False,
                                own_clock=True, controllers=True)
    sources = (layout.TARGET_POSES, layout.TARGET_FOV, *ControllerInput.sources)

    def __init__(self, settings: DisplaySettings | None = None, *,
                 frame_hz: float = DEFAULT_FRAME_HZ,
                 app_name: str = "vrshare") -> None:
        self.settings = settings or DisplaySettings(target="openxr")
        self.frame_hz = frame_hz  # replaced by the runtime's display period once known
        self.session: XrSession | None = None
        self.ctx = None
        self._window: Any = None  # the hidden GLFW window of a GLX context
        self._bank: WeightBank | None = None
        self._frames: Iterator[XrFrame] | None = None
        self._frame: XrFrame | None = None
        self._host_poses = np.zeros((3, 9))
        self._host_fov = np.zeros((2, 4))
        self._ipd_logged = False
        self.controls = ControllerInput()
        self._haptics = HapticRequests()
        try:
            kind, binding_cls = choose_binding(set(runtime_extensions()))
            self.ctx, self._window = _context(kind)
            binding = binding_cls()
            self.session = XrSession(self.ctx, binding=binding, app_name=app_name)
        except BaseException:
            self.close()
            raise
        self.eye_size = self.session.eye_sizes[0]

    @property
    def ended(self) -> str | None:
        """Why the session ended ("exiting", "session_loss", "instance_loss"), or None."""
        return self.session.ended if self.session is not None else None

    def declare(self, bank: WeightBank) -> None:
        bank.state(layout.TARGET_POSES, (3, 9), "float64")
        bank.state(layout.TARGET_FOV, (2, 4), "float64")
        self.controls.declare(bank)
        self._bank = bank

    def clock(self) -> _XrClock:
        return _XrClock(self)

    def next_frame(self) -> Frame:
        """Wait for and begin the next OpenXR frame; TargetClosed once the session ended."""
        if self._frames is None:
            self._frames = self.session.frames()
        try:
            xf = next(self._frames)
        except StopIteration:
            raise TargetClosed(f"the OpenXR session ended ({self.ended})") from None
        self._frame = xf
        if xf.period:
            self.frame_hz = 1.0 / (xf.period * NS)
        return Frame(xf.index, xf.t_now, xf.t_display, xf.period * NS)

    def poll(self, frame: Frame, bank: WeightBank) -> None:
        xf = self._frame
        poses = self._host_poses
        # on XR_SESSION_LOSS_PENDING the session sets its ``ended``: the frame is still
        # ended (by submit) and the next one leaves
        self.session.locate_devices(xf.display_time, poses)
        poses[:, 7] = xf.t_display
        views = xf.locate() if self.session.ended is None else []
        if views and not self._ipd_logged:
            self._ipd_logged = True
            p = [views[eye].pose.position for eye in (0, 1)]
            ipd = math.dist((p[0].x, p[0].y, p[0].z), (p[1].x, p[1].y, p[1].z))
            log.info("OpenXR: the runtime places the eyes %.1f mm apart (the tracking "
                     "stage's ipd setting is the separation drawn)", ipd * 1e3)
        if views:
            for eye, v in enumerate(views[:2]):
                f = v.fov
                self._host_fov[eye] = (f.angle_left, f.angle_right, f.angle_up, f.angle_down)
        backend.to_device(poses, out=bank[layout.TARGET_POSES], label="openxr_poses")
        backend.to_device(self._host_fov, out=bank[layout.TARGET_FOV], label="openxr_fov")
        self.session.read_controllers(self.controls.state, self.controls.bound)
        self.controls.publish(bank, xf.t_display, frame.index)

    def surfaces(self, frame: Frame) -> Sequence[EyeSurface]:
        xf = self._frame
        if xf is None or not xf.should_render or not xf.locate():
            return []
        self.ctx.scissor = None  # a scissor left enabled blanks eyes on some drivers
        return [EyeSurface(eye, fbo, viewport, encode_srgb=self.session.srgb)
                for eye, (fbo, viewport) in enumerate(xf.acquire())]

    def _drawn_with(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The eye poses and fields of view the renderer drew with (EYE_VIEW / EYE_PROJ)."""
        bank = self._bank
        if bank is None or layout.EYE_VIEW not in bank or layout.EYE_PROJ not in bank:
            return None, None
        view = backend.to_host(bank[layout.EYE_VIEW], label="openxr_layer").astype(np.float64)
        proj = backend.to_host(bank[layout.EYE_PROJ], label="openxr_layer").astype(np.float64)
        return (np.stack([eyes.eye_pose_from_view(v) for v in view]),
                np.stack([eyes.fov_from_projection(p) for p in proj]))

    def submit(self, frame: Frame) -> None:
        xf = self._frame
        if xf is None or xf.ended:
            return
        for pulse in self._haptics.new(self._bank):  # what the stages asked for this frame
            self.session.apply_haptic(pulse)
        poses, fovs = self._drawn_with() if xf.acquired else (None, None)
        xf.end(poses, fovs)

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
            self._frames = None
        if self.session is not None:
            self.session.close()
            self.session = None
        if self.ctx is not None:
            self.ctx.release()
            self.ctx = None
        if self._window is not None:
            self._window.close()
            self._window = None

