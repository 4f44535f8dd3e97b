"""The OpenXR target: a headset through any conformant OpenXR runtime (pyopenxr).

:class:`XrSession` holds one run's OpenXR objects (instance, system, session,
reference spaces, one swapchain per eye wrapped as ModernGL framebuffers) and is a
context manager; :meth:`XrSession.frames` is a generator that drains events, follows
the session state machine (READY -> begin, STOPPING -> end, EXITING / LOSS_PENDING /
instance loss -> return) and, while the session runs, yields one :class:`XrFrame`
per ``xrWaitFrame`` + ``xrBeginFrame``; the frame is ended with ``xrEndFrame`` by
:meth:`XrFrame.end` (or, if the consumer did not, when the generator resumes).

:class:`OpenXRTarget` maps that onto the display-target contract
(:mod:`vrshare.targets.base`): its clock is the frame generator
(``predictedDisplayTime`` becomes ``Frame.t_display``: seconds since the first frame
began, so runs start near 0 s as with the other clocks), ``poll`` locates the head
and the eye fields of view at that time into ``TARGET_POSES`` / ``TARGET_FOV``,
``surfaces`` acquires the eye images (none when the runtime says not to render) and
``submit`` releases them and ends the frame with a projection layer whose views carry
the pose and field of view each eye was actually drawn with (read back from
``EYE_VIEW`` / ``EYE_PROJ``), so the compositor reprojects correctly.

Every native failure goes through :func:`call`, which turns pyopenxr's exceptions into
one hierarchy rooted at :class:`OpenXRError`; qualified *success* codes (frame
discarded, session loss pending, not focused) are states, not errors, and are handled
as such. :func:`probe` asks, in a child process with a time limit, whether a runtime
answers.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import backend, layout
from ..pipeline import Frame
from .base import Capabilities, DisplaySettings, EyeSurface, Target, TargetClosed, TargetError

if TYPE_CHECKING:
    from ..weights import WeightBank

log = logging.getLogger(__name__)

GL_SRGB8_ALPHA8 = 0x8C43
GL_RGBA8 = 0x8058
COLOR_FORMATS = (GL_SRGB8_ALPHA8, GL_RGBA8)  # preferred first: sRGB-encoded bytes, as drawn
GL_REQUIRE = 430  # the renderer's storage buffers need OpenGL 4.3
NS = 1e-9  # seconds per XrTime unit
IDLE_POLL_S = 0.01  # sleep between event polls while the session is not running (s)
EXIT_TIMEOUT_S = 3.0  # how long close() waits for the runtime to reach EXITING (s)
PROBE_TIMEOUT_S = 15.0  # probe(): a runtime that has not answered by then counts as absent
NEAR_M = 0.05  # fallback projection planes when no EYE_PROJ exists (m)
FAR_M = 100.0


# -- errors ------------------------------------------------------------------------------


class OpenXRError(TargetError):
    """An OpenXR call failed. ``result`` is the XrResult name (``"XR_ERROR_..."``) or None."""

    def __init__(self, message: str, result: str | None = None) -> None:
        super().__init__(message)
        self.result = result


class RuntimeUnavailable(OpenXRError):
    """No OpenXR runtime answers (none installed, a broken manifest or library, or pyopenxr
    missing)."""


class HeadsetUnavailable(OpenXRError):
    """The runtime answers but has no head-mounted display to offer now."""


class SessionLost(OpenXRError):
    """The runtime lost the session or the instance (``XR_ERROR_SESSION_LOST`` /
    ``XR_ERROR_INSTANCE_LOST``)."""


class LossPending(OpenXRError):
    """``XR_SESSION_LOSS_PENDING``: a success code saying the session is about to be lost;
    :class:`XrSession` turns it into the LOSS_PENDING state."""


@functools.cache
def _xr() -> Any:
    """pyopenxr, imported on first use (it sets process-wide loader and PyOpenGL state).

    Without an X display PyOpenGL must use EGL, and pyopenxr imports PyOpenGL at once,
    so the platform is chosen first (an explicit PYOPENGL_PLATFORM wins).
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        import xr
    except (ImportError, OSError) as exc:
        raise RuntimeUnavailable(f"pyopenxr is not importable: {exc} (pip install pyopenxr; its "
                                 "loader needs glibc >= 2.32)") from exc
    return xr


_QUALIFIED_OK = ("FrameDiscarded", "SessionNotFocused", "SpaceBoundsUnavailable",
                 "EventUnavailable", "TimeoutExpired")
_CLASS_OF = {
    "RuntimeUnavailableError": RuntimeUnavailable, "InitializationFailedError": RuntimeUnavailable,
    "FormFactorUnavailableError": HeadsetUnavailable, "SessionLostError": SessionLost,
    "InstanceLostError": SessionLost, "SessionLossPending": LossPending,
}


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, a pyopenxr function, with its failures as :class:`OpenXRError`.

    Returns None for the qualified success codes that need no handling beyond knowing
    the call completed (frame discarded, not focused, no event, no bounds, timeout);
    raises :class:`LossPending` for ``XR_SESSION_LOSS_PENDING``.
    """
    xr = _xr()
    try:
        return fn(*args, **kwargs)
    except xr.XrException as exc:
        kind = type(exc).__name__
        if kind in _QUALIFIED_OK:
            log.debug("%s: %s", what, kind)
            return None
        enum = exc.get_result_enum() if isinstance(exc, xr.ResultException) else None
        result = f"XR_{enum.name}" if enum is not None else None
        cls = _CLASS_OF.get(kind, OpenXRError)
        raise cls(f"{what} failed: {result or kind}: {exc}", result) from exc


# -- pose helpers (numpy, host side: a handful of numbers per frame) ---------------------


def _pose_array(pose: Any) -> np.ndarray:
    """An XrPosef as [px, py, pz, qx, qy, qz, qw]."""
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])


def _quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Unit quaternion [x, y, z, w] of a 3x3 rotation matrix (Shepperd's method)."""
    t = np.trace(m)
    if t > 0:
        s = 2.0 * math.sqrt(t + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = s / 4
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q)


def eye_pose_from_view(view: np.ndarray) -> np.ndarray:
    """The eye pose [px, py, pz, qx, qy, qz, qw] of a world->eye matrix (4x4, row-major)."""
    r = view[:3, :3].T  # eye -> world rotation
    return np.concatenate([-r @ view[:3, 3], _quat_from_matrix(r)])


def fov_from_projection(proj: np.ndarray) -> np.ndarray:
    """Field-of-view angles [left, right, up, down] (rad) of an OpenGL off-axis projection."""
    return np.arctan([(proj[0, 2] - 1) / proj[0, 0], (proj[0, 2] + 1) / proj[0, 0],
                      (proj[1, 2] + 1) / proj[1, 1], (proj[1, 2] - 1) / proj[1, 1]])


# -- the session -------------------------------------------------------------------------


@dataclass
class _Swapchain:
    handle: Any
    size: tuple[int, int]  # width, height (px)
    framebuffers: list[Any]  # one ModernGL framebuffer per swapchain image
    depth: Any  # shared depth renderbuffer


class _Controllers:
    """Both hands' grip poses through one pose action, suggested for the
    ``khr/simple_controller`` profile that every conformant runtime supports (runtimes
    remap it to the controllers they have)."""

    HANDS = ("/user/hand/left", "/user/hand/right")
    PROFILE = "/interaction_profiles/khr/simple_controller"

    def __init__(self, xr: Any, instance: Any, session: Any) -> None:
        self.xr = xr
        self.action_set = self.action = None
        self.spaces: list[Any] = []

        try:
            self._bind(instance, session)
        except OpenXRError:
            self.destroy()
            raise

    def _bind(self, instance: Any, session: Any) -> None:
        xr = self.xr

        def path(text: str) -> Any:
            return call("xrStringToPath", xr.string_to_path, instance, text)

        hands = [path(h) for h in self.HANDS]
        self.action_set = call("xrCreateActionSet", xr.create_action_set, instance,
                               xr.ActionSetCreateInfo(action_set_name="vrshare",
                                                      localized_action_set_name="vrshare"))
        self.action = call("xrCreateAction", xr.create_action, self.action_set,
                           xr.ActionCreateInfo(action_name="grip_pose",
                                               action_type=xr.ActionType.POSE_INPUT,
                                               subaction_paths=hands,
                                               localized_action_name="Grip pose"))
        call("xrSuggestInteractionProfileBindings", xr.suggest_interaction_profile_bindings,
             instance, xr.InteractionProfileSuggestedBinding(
                 interaction_profile=path(self.PROFILE),
                 suggested_bindings=[xr.ActionSuggestedBinding(self.action,
                                                               path(f"{h}/input/grip/pose"))
                                     for h in self.HANDS]))
        call("xrAttachSessionActionSets", xr.attach_session_action_sets, session,
             xr.SessionActionSetsAttachInfo(action_sets=[self.action_set]))
        self.spaces = [call("xrCreateActionSpace", xr.create_action_space, session,
                            xr.ActionSpaceCreateInfo(action=self.action, subaction_path=h))
                       for h in hands]
        self.sync_info = xr.ActionsSyncInfo(
            active_action_sets=[xr.ActiveActionSet(self.action_set, xr.NULL_PATH)])

    def sync(self, session: Any) -> None:
        """Update input (XR_SESSION_NOT_FOCUSED: no input this frame, not an error)."""
        call("xrSyncActions", self.xr.sync_actions, session, self.sync_info)

    def destroy(self) -> None:
        xr = self.xr
        for space in self.spaces:
            call("xrDestroySpace", xr.destroy_space, space)
        self.spaces = []
        if self.action_set is not None:  # destroys its action too
            call("xrDestroyActionSet", xr.destroy_action_set, self.action_set)
            self.action_set = self.action = None


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
        self.controllers: _Controllers | None = None
        self.swapchains: list[_Swapchain] = []
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
            self.controllers = _Controllers(xr, self.instance, self.session)
        except OpenXRError as exc:  # the headset still works without hand poses
            log.warning("OpenXR: no controller input: %s", exc)
        if self.ctx is not None:
            self._make_swapchains()
        log.info("OpenXR: %s %s, %s space, eye images %s", self.runtime_name,
                 self.runtime_version, self.space_kind,
                 " + ".join(f"{w}x{h}" for w, h in self.eye_sizes))

    @property
    def eye_sizes(self) -> list[tuple[int, int]]:
        return [(v.recommended_image_rect_width, v.recommended_image_rect_height)
                for v in self.config_views]

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

    def _make_swapchains(self) -> None:
        xr = self.xr
        formats = call("xrEnumerateSwapchainFormats", xr.enumerate_swapchain_formats,
                       self.session)
        fmt = next((f for f in COLOR_FORMATS if f in formats), None)
        if fmt is None:
            raise OpenXRError("the OpenXR runtime offers no RGBA8 colour swapchain format "
                              f"(offered: {', '.join(hex(f) for f in formats)})")
        # An sRGB swapchain takes sRGB-encoded bytes (the shader encodes, as for a window);
        # a UNORM one is read as linear by the compositor, so it gets linear values.
        self.srgb = fmt == GL_SRGB8_ALPHA8
        for w, h in self.eye_sizes:
            handle = call("xrCreateSwapchain", xr.create_swapchain, self.session,
                          xr.SwapchainCreateInfo(
                              usage_flags=(xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT
                                           | xr.SwapchainUsageFlags.SAMPLED_BIT),
                              format=fmt, sample_count=1, width=w, height=h, face_count=1,
                              array_size=1, mip_count=1))
            self._restore_context("xrCreateSwapchain")
            images = call("xrEnumerateSwapchainImages", xr.enumerate_swapchain_images, handle,
                          xr.SwapchainImageOpenGLKHR)
            depth = self.ctx.depth_renderbuffer((w, h))
            fbos = [self.ctx.framebuffer(
                        [self.ctx.external_texture(img.image, (w, h), 4, 0, "f1")], depth)
                    for img in images]
            self.swapchains.append(_Swapchain(handle, (w, h), fbos, depth))
        self._layer_views = (xr.CompositionLayerProjectionView * len(self.swapchains))(*(
            xr.CompositionLayerProjectionView(sub_image=xr.SwapchainSubImage(
                swapchain=sc.handle, image_rect=xr.Rect2Di(extent=xr.Extent2Di(*sc.size))))
            for sc in self.swapchains))
        self._layer = xr.CompositionLayerProjection(space=self.space, views=self._layer_views)
        self._acquire_info = xr.SwapchainImageAcquireInfo()
        self._wait_info = xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION)
        self._release_info = xr.SwapchainImageReleaseInfo()

    def close(self) -> None:
        """Leave the session (bounded wait for EXITING) and destroy everything; idempotent."""
        xr = self.xr
        if self.session is not None:
            try:
                self._leave()
            except OpenXRError as exc:
                log.warning("OpenXR: leaving the session: %s", exc)
        for sc in self.swapchains:
            for fbo in sc.framebuffers:
                fbo.release()  # the textures belong to the runtime: not released here
            sc.depth.release()
            self._destroy("xrDestroySwapchain", xr.destroy_swapchain, sc.handle)
        self.swapchains = []
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
        app's space (7), time (left as is), valid (1.0, or 0.0 untracked / no input)."""
        out[:, 8] = 0.0
        out[0, :7], valid = self._locate(self.view_space, display_time)
        out[0, 8] = float(valid)
        if self.controllers is None:
            return
        self.controllers.sync(self.session)
        for hand, space in enumerate(self.controllers.spaces, start=1):
            out[hand, :7], valid = self._locate(space, display_time)
            out[hand, 8] = float(valid)

    def acquire(self, frame: XrFrame) -> list[tuple[Any, tuple[int, int, int, int]]]:
        xr = self.xr
        if frame.acquired:
            raise OpenXRError("the eye images of this frame were already acquired")
        out = []
        for sc in self.swapchains:
            index = call("xrAcquireSwapchainImage", xr.acquire_swapchain_image, sc.handle,
                         self._acquire_info)
            call("xrWaitSwapchainImage", xr.wait_swapchain_image, sc.handle,
                 self._wait_info)
            self._restore_context("xrAcquireSwapchainImage")
            frame.acquired.append(index)
            out.append((sc.framebuffers[index], (0, 0, *sc.size)))
        return out

    def end_frame(self, frame: XrFrame, poses: np.ndarray | None = None,
                  fovs: np.ndarray | None = None) -> None:
        xr = self.xr
        if frame.ended:
            raise OpenXRError(f"frame {frame.index} was already ended")
        frame.ended = True
        layers = []
        try:
            for sc in self.swapchains[:len(frame.acquired)]:
                call("xrReleaseSwapchainImage", xr.release_swapchain_image, sc.handle,
                     self._release_info)
            if frame.acquired and (frame.views or poses is not None):
                self._fill_projection(frame, poses, fovs)
                layers = [ctypes.byref(self._layer)]
            call("xrEndFrame", xr.end_frame, self.session, xr.FrameEndInfo(
                display_time=frame.display_time,
                environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE, layers=layers))
        except LossPending:
            self.ended = "session_loss"
        self._restore_context("xrEndFrame")
        if self.ctx is not None:
            _ = self.ctx.error  # drop a GL error a runtime left behind (seen with SteamVR)

    def _fill_projection(self, frame: XrFrame, poses: np.ndarray | None,
                         fovs: np.ndarray | None) -> None:
        """Write this frame's eye poses and fields of view into the projection layer (its
        structures are built once, in ``_make_swapchains``, and updated in place)."""
        for eye, view in enumerate(self._layer_views):
            if poses is None:
                view.pose = frame.views[eye].pose
            else:
                p = poses[eye]
                o, t = view.pose.orientation, view.pose.position
                t.x, t.y, t.z = float(p[0]), float(p[1]), float(p[2])
                o.x, o.y, o.z, o.w = float(p[3]), float(p[4]), float(p[5]), float(p[6])
            if fovs is None:
                view.fov = frame.views[eye].fov
            else:
                f = view.fov
                a = fovs[eye]
                f.angle_left, f.angle_right = float(a[0]), float(a[1])
                f.angle_up, f.angle_down = float(a[2]), float(a[3])


# -- the target --------------------------------------------------------------------------


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
        from .openxr_gl import HiddenWindow

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
                                own_clock=True)
    sources = (layout.TARGET_POSES, layout.TARGET_FOV)

    def __init__(self, settings: DisplaySettings | None = None, *, frame_hz: float = 90.0,
                 app_name: str = "vrshare") -> None:
        from .openxr_gl import GLBindingError, choose_binding

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
        try:
            kind, binding_cls = choose_binding(set(runtime_extensions()))
            self.ctx, self._window = _context(kind)
            binding = binding_cls()
            self.session = XrSession(self.ctx, binding=binding, app_name=app_name)
        except GLBindingError as exc:
            self.close()
            raise OpenXRError(str(exc)) from exc
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
        try:
            self.session.locate_devices(xf.display_time, poses)
        except LossPending:  # the frame is still ended; the next one leaves
            self.session.ended = "session_loss"
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
        return (np.stack([eye_pose_from_view(v) for v in view]),
                np.stack([fov_from_projection(p) for p in proj]))

    def submit(self, frame: Frame) -> None:
        xf = self._frame
        if xf is None or xf.ended:
            return
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


# -- runtime discovery -------------------------------------------------------------------


def _manifest() -> str:
    """Where the loader looks for the runtime, in words."""
    path = os.environ.get("XR_RUNTIME_JSON")
    return f"XR_RUNTIME_JSON={path}" if path else "the system's active_runtime.json"


def runtime_extensions() -> list[str]:
    """Extension names the active runtime offers (RuntimeUnavailable when none answers)."""
    xr = _xr()
    try:
        props = call("xrEnumerateInstanceExtensionProperties",
                     xr.enumerate_instance_extension_properties)
    except RuntimeUnavailable as exc:
        raise RuntimeUnavailable(
            f"no OpenXR runtime answers (runtime from {_manifest()}): {exc} Start SteamVR or "
            "Monado, or set XR_RUNTIME_JSON to a runtime's manifest.", exc.result) from exc
    return [p.extension_name.decode() for p in props]


def probe_here() -> dict[str, Any]:
    """What :func:`probe` reports, computed in this process (may block on a bad runtime)."""
    manifest = _manifest()
    try:
        xr = _xr()
        extensions = runtime_extensions()
        instance = call("xrCreateInstance", xr.create_instance, xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name="vrshare info",
                                                engine_name="vrshare",
                                                api_version=xr.Version(1, 0, 0))))
        try:
            props = call("xrGetInstanceProperties", xr.get_instance_properties, instance)
            info: dict[str, Any] = {
                "available": False, "runtime": props.runtime_name.decode(errors="replace"),
                "runtime_version": str(xr.Version(props.runtime_version)), "manifest": manifest,
                "egl_binding": "XR_MNDX_egl_enable" in extensions}
            system = call("xrGetSystem", xr.get_system, instance,
                          xr.SystemGetInfo(xr.FormFactor.HEAD_MOUNTED_DISPLAY))
            sprops = call("xrGetSystemProperties", xr.get_system_properties, instance, system)
            views = call("xrEnumerateViewConfigurationViews",
                         xr.enumerate_view_configuration_views, instance, system,
                         xr.ViewConfigurationType.PRIMARY_STEREO)
            info.update(available=True, system=sprops.system_name.decode(errors="replace"),
                        recommended_eye_size=[views[0].recommended_image_rect_width,
                                              views[0].recommended_image_rect_height])
            return info
        except OpenXRError as exc:
            info["error"] = str(exc)
            return info
        finally:
            call("xrDestroyInstance", xr.destroy_instance, instance)
    except OpenXRError as exc:
        return {"available": False, "manifest": manifest, "error": str(exc)}


def probe(timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Whether an OpenXR runtime answers: runtime name and version, system, recommended
    per-eye size (px). Never raises and never hangs: the runtime is asked from a child
    process given ``timeout_s`` seconds, so a stuck runtime or loader cannot block the
    caller and its process-wide state stays out of this process."""
    code = ("import json, vrshare.targets.openxr as m; "
            "print('VRSHARE_PROBE ' + json.dumps(m.probe_here()))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"available": False, "error": f"the OpenXR runtime did not answer within "
                                             f"{timeout_s:.0f} s"}
    except OSError as exc:
        return {"available": False, "error": f"cannot start the OpenXR probe: {exc}"}
    for line in done.stdout.splitlines():
        if line.startswith("VRSHARE_PROBE "):
            return json.loads(line.removeprefix("VRSHARE_PROBE "))
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"available": False,
            "error": f"the OpenXR probe failed (exit {done.returncode}): {tail[0]}"}


__all__ = ["HeadsetUnavailable", "LossPending", "OpenXRError", "OpenXRTarget",
           "RuntimeUnavailable", "SessionLost", "XrFrame", "XrSession", "call", "probe",
           "runtime_extensions"]
