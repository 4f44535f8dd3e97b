"""One OpenXR run: instance, system, session, reference spaces and the frame loop.

:class:`XrSession` holds one run's OpenXR objects (instance, system, session,
reference spaces, controller action spaces, one swapchain per eye from
:mod:`.swapchains`) and is a context manager; :meth:`XrSession.frames` is a generator
that drains events, follows the session state machine (READY -> begin, STOPPING -> end,
EXITING / LOSS_PENDING / instance loss -> return) and, while the session runs, yields
one :class:`XrFrame` per ``xrWaitFrame`` + ``xrBeginFrame``; the frame is ended with
``xrEndFrame`` by :meth:`XrFrame.end` (or, if the consumer did not, when the generator
resumes).

(About 400 lines, kept together: the life cycle, the event-driven state machine and the
frame generator share the session's handles and its ``running`` / ``ended`` state.)
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..controls import HapticPulse
from . import profiles
from .controllers import Controllers
from .errors import LossPending, OpenXRError, SessionLost, _xr, call
from .runtime import runtime_extensions
from .swapchains import EyeSwapchains

log = logging.getLogger(__name__)

NS = 1e-9  # seconds per XrTime unit
IDLE_POLL_S = 0.01  # sleep between event polls while the session is not running (s)
EXIT_TIMEOUT_S = 3.0  # how long close() waits for the runtime to reach EXITING (s)


def _pose_array(pose: Any) -> np.ndarray:
    """An XrPosef as [px, py, pz, qx, qy, qz, qw] (numpy, host side)."""
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])


@dataclass
class XrFrame:
    """One frame between ``xrBeginFrame`` and ``xrEndFrame``."""

    session: XrSession
    index: int
    display_time: int  # predictedDisplayTime (XrTime, ns)
    period: int  # predictedDisplayPeriod (ns)
    should_render: bool
    now: int  # when xrWaitFrame returned (XrTime, ns)
    views: list[Any] = field(default_factory=list)  # located XrViews (poses in the app space)
    acquired: list[int] = field(default_factory=list)  # image index per eye, once acquired
    ended: bool = False

    @property
    def t_now(self) -> float:
        """When xrWaitFrame returned: seconds since the session's first frame began."""
        return (self.now - self.session.epoch) * NS

    @property
    def t_display(self) -> float:
        """The predicted display time: seconds since the session's first frame began."""
        return (self.display_time - self.session.epoch) * NS

    def locate(self) -> list[Any]:
        """Locate the eye views at the display time (also done by ``acquire``)."""
        if not self.views:
            self.views = self.session.locate_views(self.display_time)
        return self.views

    def acquire(self) -> list[tuple[Any, tuple[int, int, int, int]]]:
        """Acquire and wait for one image per eye: (framebuffer, viewport) per eye."""
        return self.session.acquire(self)

    def end(self, poses: np.ndarray | None = None, fovs: np.ndarray | None = None) -> None:
        """Release the acquired images and end the frame; one projection layer when images
        were drawn, with ``poses`` (2, 7) / ``fovs`` (2, 4) per eye (default: the located
        views)."""
        self.session.end_frame(self, poses, fovs)


class XrSession:
    """Instance, system, session, spaces and swapchains of a headset run.

    Needs a GL context current on this thread (ModernGL ``ctx``) unless ``ctx`` is None
    and the runtime offers ``XR_MND_headless`` (a session without graphics, used to
    test timing and tracking). Use as a context manager; :meth:`close` requests exit,
    waits (bounded) for EXITING and destroys everything.
    """

    def __init__(self, ctx: Any, *, binding: Any = None, app_name: str = "vrshare",
                 extensions: Sequence[str] = ()) -> None:
        xr = self.xr = _xr()
        self.ctx = ctx
        self.binding = binding
        self.instance = self.session = self.space = self.view_space = None
        self.controllers: Controllers | None = None
        self.swapchains = EyeSwapchains(xr, ctx, self._restore_context)
        self.state = xr.SessionState.UNKNOWN
        self.running = False
        self.ended: str | None = None  # "exiting", "session_loss", "instance_loss"
        self.frame_count = 0
        self.begun_count = 0  # xrBeginSession calls (a restart after STOPPING adds one)
        self._timespec = None
        self.epoch: int | None = None  # XrTime (ns) of the first frame: Frame times count from it
        try:
            self._open(app_name, extensions)
        except BaseException:
            self.close()
            raise

    # life cycle -------------------------------------------------------------------------

    def _open(self, app_name: str, extensions: Sequence[str]) -> None:
        xr = self.xr
        available = runtime_extensions()
        wanted = list(extensions)
        if self.ctx is not None:
            wanted.append(xr.KHR_OPENGL_ENABLE_EXTENSION_NAME)
            if self.binding.extension:
                wanted.append(self.binding.extension)
        else:
            wanted.append(xr.MND_HEADLESS_EXTENSION_NAME)
        missing = [e for e in wanted if e not in available]
        if missing:
            raise OpenXRError(f"the OpenXR runtime lacks extension(s) {', '.join(missing)}")
        if xr.KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME in available:
            wanted.append(xr.KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME)
        wanted += profiles.extensions(set(available))  # the controller profiles it offers
        self.instance = call("xrCreateInstance", xr.create_instance, xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(
                application_name=app_name, application_version=1, engine_name="vrshare",
                engine_version=1, api_version=xr.Version(1, 0, 0)),
            enabled_extension_names=wanted))
        props = call("xrGetInstanceProperties", xr.get_instance_properties, self.instance)
        self.runtime_name = props.runtime_name.decode(errors="replace")
        self.runtime_version = str(xr.Version(props.runtime_version))
        if xr.KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME in wanted:
            self._timespec = xr.timespec()
        self.system = call("xrGetSystem", xr.get_system, self.instance,
                           xr.SystemGetInfo(xr.FormFactor.HEAD_MOUNTED_DISPLAY))
        self.view_config = xr.ViewConfigurationType.PRIMARY_STEREO
        self.config_views = call("xrEnumerateViewConfigurationViews",
                                 xr.enumerate_view_configuration_views, self.instance,
                                 self.system, self.view_config)
        info = xr.SessionCreateInfo(system_id=self.system)
        if self.ctx is not None:
            self._check_gl_version()
            binding = self.binding.struct(xr)
            info = xr.SessionCreateInfo(system_id=self.system, next=binding)
        self.session = call("xrCreateSession", xr.create_session, self.instance, info)
        self._restore_context("xrCreateSession")
        spaces = call("xrEnumerateReferenceSpaces", xr.enumerate_reference_spaces, self.session)
        kind = (xr.ReferenceSpaceType.STAGE if xr.ReferenceSpaceType.STAGE.value in spaces
                else xr.ReferenceSpaceType.LOCAL)
        self.space_kind = kind.name
        self.space = call("xrCreateReferenceSpace", xr.create_reference_space, self.session,
                          xr.ReferenceSpaceCreateInfo(kind))
        self.view_space = call("xrCreateReferenceSpace", xr.create_reference_space, self.session,
                               xr.ReferenceSpaceCreateInfo(xr.ReferenceSpaceType.VIEW))
        try:
            self.controllers = Controllers(xr, self.instance, self.session, set(wanted))
        except OpenXRError as exc:  # the headset still works without hand poses
            log.warning("OpenXR: no controller input: %s", exc)
        if self.ctx is not None:
            self.swapchains.create(self.session, self.space, self.eye_sizes)
        log.info("OpenXR: %s %s, %s space, eye images %s", self.runtime_name,
                 self.runtime_version, self.space_kind,
                 " + ".join(f"{w}x{h}" for w, h in self.eye_sizes))

    @property
    def eye_sizes(self) -> list[tuple[int, int]]:
        """The runtime's recommended eye image sizes (width, height px), left first."""
        return [(v.recommended_image_rect_width, v.recommended_image_rect_height)
                for v in self.config_views]

    @property
    def srgb(self) -> bool:
        """Whether the eye images are sRGB-encoded (else linear: draw linear values)."""
        return self.swapchains.srgb

    def _check_gl_version(self) -> None:
        xr = self.xr
        req = call("xrGetOpenGLGraphicsRequirementsKHR", xr.get_opengl_graphics_requirements_khr,
                   self.instance, self.system)
        have = self.ctx.version_code  # e.g. 450
        lo = xr.Version(req.min_api_version_supported)
        hi = xr.Version(req.max_api_version_supported)
        if have < lo.major * 100 + lo.minor * 10:
            raise OpenXRError(f"the OpenXR runtime needs OpenGL >= {lo.major}.{lo.minor}; the "
                              f"context is {have / 100:.1f}")
        if have > hi.major * 100 + hi.minor * 10:
            log.warning("OpenGL %.1f is newer than the runtime's tested maximum %d.%d",
                        have / 100, hi.major, hi.minor)

    def _restore_context(self, what: str) -> None:
        if self.binding is not None and self.binding.restore():
            log.debug("%s changed the current GL context; restored it", what)

    def close(self) -> None:
        """Leave the session (bounded wait for EXITING) and destroy everything; idempotent."""
        xr = self.xr
        if self.session is not None:
            try:
                self._leave()
            except OpenXRError as exc:
                log.warning("OpenXR: leaving the session: %s", exc)
        self.swapchains.destroy(self._destroy)
        if self.controllers is not None:
            try:
                self.controllers.destroy()
            except OpenXRError as exc:
                log.warning("OpenXR: %s", exc)
            self.controllers = None
        for name in ("view_space", "space"):
            if getattr(self, name) is not None:
                self._destroy("xrDestroySpace", xr.destroy_space, getattr(self, name))
                setattr(self, name, None)
        if self.session is not None:
            self._destroy("xrDestroySession", xr.destroy_session, self.session)
            self.session = None
        if self.instance is not None:
            self._destroy("xrDestroyInstance", xr.destroy_instance, self.instance)
            self.instance = None

    def _destroy(self, what: str, fn: Callable[[Any], Any], handle: Any) -> None:
        try:
            call(what, fn, handle)
        except OpenXRError as exc:
            log.warning("OpenXR: %s", exc)
        self._restore_context(what)

    def _leave(self) -> None:
        """Request exit and keep frames going (no layers) until EXITING, within a limit."""
        if self.ended or not self.running:
            return
        call("xrRequestExitSession", self.xr.request_exit_session, self.session)
        for frame in self.frames(until=time.monotonic() + EXIT_TIMEOUT_S):
            frame.end()
        if self.ended is None:
            log.warning("OpenXR: the runtime did not reach EXITING within %.0f s",
                        EXIT_TIMEOUT_S)

    def __enter__(self) -> XrSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # events and state ---------------------------------------------------------------------

    def poll_events(self) -> None:
        """Drain the event queue and follow the session state machine."""
        xr = self.xr
        while self.ended is None:
            event = call("xrPollEvent", xr.poll_event, self.instance)
            if event is None:
                return
            kind = xr.StructureType(event.type)
            if kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                ev = ctypes.cast(ctypes.byref(event),
                                 ctypes.POINTER(xr.EventDataSessionStateChanged)).contents
                self._on_state(xr.SessionState(ev.state))
            elif kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                log.warning("OpenXR: the runtime will lose the instance; leaving")
                self.ended = "instance_loss"
            elif kind == xr.StructureType.EVENT_DATA_INTERACTION_PROFILE_CHANGED:
                if self.controllers is not None:
                    self.controllers.profile_changed()
            elif kind == xr.StructureType.EVENT_DATA_EVENTS_LOST:
                log.warning("OpenXR: the runtime dropped events (queue overflow)")
            else:
                log.debug("OpenXR event %s", kind.name)

    def _on_state(self, state: Any) -> None:
        xr = self.xr
        log.debug("OpenXR session state %s", state.name)
        self.state = state
        S = xr.SessionState  # noqa: N806
        try:
            if state == S.READY:
                call("xrBeginSession", xr.begin_session, self.session,
                     xr.SessionBeginInfo(self.view_config))
                self.running = True
                self.begun_count += 1
            elif state == S.STOPPING:
                self.running = False
                call("xrEndSession", xr.end_session, self.session)
            elif state == S.EXITING:
                self.ended = "exiting"
            elif state == S.LOSS_PENDING:
                log.warning("OpenXR: the runtime is losing the session; leaving")
                self.ended = "session_loss"
        except LossPending:
            self.ended = "session_loss"

    # frames -------------------------------------------------------------------------------

    def _now(self, fallback: int) -> int:
        """The runtime's current XrTime (ns), via XR_KHR_convert_timespec_time when offered."""
        if self._timespec is None:
            return fallback
        ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self._timespec.tv_sec, self._timespec.tv_nsec = divmod(ns, 1_000_000_000)
        t = call("xrConvertTimespecTimeToTimeKHR", self.xr.convert_timespec_time_to_time_khr,
                 self.instance, self._timespec)
        return t.value

    def frames(self, until: float | None = None) -> Iterator[XrFrame]:
        """Frames while the session runs; returns when it ends (EXITING, loss), or once
        ``time.monotonic()`` passes ``until`` (s) when given.

        Each yielded frame has been waited and begun; it is ended by :meth:`XrFrame.end`,
        or with no layers when the consumer resumes the generator without ending it.
        While the session is not running (IDLE, waiting for READY) it polls events.
        """
        xr = self.xr
        while until is None or time.monotonic() < until:
            self.poll_events()
            if self.ended is not None:
                return
            if not self.running:
                time.sleep(IDLE_POLL_S)
                continue
            try:
                state = call("xrWaitFrame", xr.wait_frame, self.session)
                now = self._now(fallback=state.predicted_display_time
                                - 2 * state.predicted_display_period)
                if self.epoch is None:
                    self.epoch = now
                call("xrBeginFrame", xr.begin_frame, self.session)
            except LossPending:
                self.ended = "session_loss"
                return
            except SessionLost as exc:
                log.warning("OpenXR: %s; leaving", exc)
                self.ended = "session_loss"
                return
            frame = XrFrame(self, self.frame_count, state.predicted_display_time,
                            state.predicted_display_period, bool(state.should_render), now)
            self.frame_count += 1
            try:
                yield frame
            finally:
                if not frame.ended and self.ended is None:
                    self.end_frame(frame)

    def locate_views(self, display_time: int) -> list[Any]:
        xr = self.xr
        located = call("xrLocateViews", xr.locate_views, self.session, xr.ViewLocateInfo(
            view_configuration_type=self.view_config, display_time=display_time,
            space=self.space))
        if located is None:
            return []
        view_state, views = located
        needed = xr.ViewStateFlags.ORIENTATION_VALID_BIT | xr.ViewStateFlags.POSITION_VALID_BIT
        return list(views) if (view_state.view_state_flags & needed) == needed else []

    def _locate(self, space: Any, display_time: int) -> tuple[np.ndarray, bool]:
        xr = self.xr
        loc = call("xrLocateSpace", xr.locate_space, space, self.space, display_time)
        needed = (xr.SpaceLocationFlags.ORIENTATION_VALID_BIT
                  | xr.SpaceLocationFlags.POSITION_VALID_BIT)
        if loc is None or (loc.location_flags & needed) != needed:
            return np.array([0, 0, 0, 0, 0, 0, 1.0]), False
        return _pose_array(loc.pose), True

    def locate_devices(self, display_time: int, out: np.ndarray) -> None:
        """Head, left and right hand at ``display_time`` into ``out`` (3, 9): pose in the
        app's space (7), time (left as is), valid (1.0, or 0.0 untracked / no input).

        ``XR_SESSION_LOSS_PENDING`` meanwhile sets :attr:`ended` to "session_loss"
        (rows not reached keep valid 0.0); the current frame is still to be ended, and
        :meth:`frames` then returns."""
        out[:, 8] = 0.0
        try:
            out[0, :7], valid = self._locate(self.view_space, display_time)
            out[0, 8] = float(valid)
            if self.controllers is None:
                return
            self.controllers.sync(self.session)
            for hand, space in enumerate(self.controllers.spaces, start=1):
                out[hand, :7], valid = self._locate(space, display_time)
                out[hand, 8] = float(valid)
        except LossPending:
            self.ended = "session_loss"

    def read_controllers(self, state: np.ndarray, bound: np.ndarray) -> None:
        """Controller input synced by :meth:`locate_devices` into ``state`` / ``bound``
        (2, C) (see :meth:`.controllers.Controllers.read`); zeros without controllers."""
        if self.controllers is None or self.ended is not None:
            state[...] = 0.0
            bound[...] = 0.0
            return
        try:
            self.controllers.read(self.session, state, bound)
        except LossPending:
            self.ended = "session_loss"

    def apply_haptic(self, pulse: HapticPulse) -> None:
        """Send a haptic request to the hand's controller (nothing without controllers)."""
        if self.controllers is None or self.ended is not None:
            return
        try:
            self.controllers.apply(self.session, pulse)
        except LossPending:
            self.ended = "session_loss"

    def acquire(self, frame: XrFrame) -> list[tuple[Any, tuple[int, int, int, int]]]:
        """Acquire and wait for the frame's eye images: (framebuffer, viewport) per eye."""
        if frame.acquired:
            raise OpenXRError("the eye images of this frame were already acquired")
        return self.swapchains.acquire(frame.acquired)

    def end_frame(self, frame: XrFrame, poses: np.ndarray | None = None,
                  fovs: np.ndarray | None = None) -> None:
        """Release the frame's images and end it (see :meth:`XrFrame.end`)."""
        xr = self.xr
        if frame.ended:
            raise OpenXRError(f"frame {frame.index} was already ended")
        frame.ended = True
        layers = []
        try:
            self.swapchains.release(len(frame.acquired))
            if frame.acquired and (frame.views or poses is not None):
                layers = [self.swapchains.layer(frame.views, poses, fovs)]
            call("xrEndFrame", xr.end_frame, self.session, xr.FrameEndInfo(
                display_time=frame.display_time,
                environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE, layers=layers))
        except LossPending:
            self.ended = "session_loss"
        self._restore_context("xrEndFrame")
        if self.ctx is not None:
            _ = self.ctx.error  # drop a GL error a runtime left behind (seen with SteamVR)
