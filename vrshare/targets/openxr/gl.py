"""The GL side of an OpenXR session: the context, its graphics binding, and keeping it current.

An OpenXR runtime renders nothing itself: it takes the application's GL context in the
session's graphics binding and composites the swapchain images the application draws.
Two bindings serve Linux:

* ``XR_MNDX_egl_enable`` (Monado, and vrshare's test runtime): an EGL context, which
  needs no X server. The runtime creates the swapchain textures in that context through
  the ``eglGetProcAddress`` it is handed.
* ``XrGraphicsBindingOpenGLXlibKHR`` (SteamVR, Monado under X): a GLX context with its X
  display, visual, FB config and drawable.

Handles are read with ctypes from libEGL / libGL rather than through PyOpenGL, whose
platform choice ``import xr`` overrides process-wide.

Some runtimes switch the current context inside their calls (SteamVR on Linux in
``xrCreateSwapchain``): :class:`GLBinding` remembers the application's context and
:meth:`GLBinding.restore` makes it current again after every runtime call that may
touch GL.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Any

from .errors import OpenXRError

# EGL / GLX enums (Khronos registry values)
EGL_CONFIG_ID = 0x3028
EGL_NONE = 0x3038
EGL_DRAW = 0x3059
EGL_READ = 0x305A
GLX_FBCONFIG_ID = 0x8013
GLX_SCREEN = 0x800C
GLX_VISUAL_ID = 0x800B


class GLBindingError(OpenXRError):
    """The GL context cannot be described to an OpenXR runtime (``result`` is None)."""


def _library(name: str, what: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        raise GLBindingError(f"{what} ({name}) is not loadable: {exc}") from exc


def _fn(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


@dataclass
class _Current:
    """The context current on this thread: display, draw and read surfaces, context."""

    display: int | None
    draw: int | None
    read: int | None
    context: int | None


class GLBinding:
    """A GL context as an OpenXR graphics binding; base of the EGL and GLX variants.

    ``extension`` names the OpenXR extension the binding needs besides
    ``XR_KHR_opengl_enable`` (None when that one is enough).
    """

    extension: str | None = None

    def __init__(self) -> None:
        self.saved = self._current()
        if not self.saved.context:
            raise GLBindingError("no GL context is current on this thread")

    def _current(self) -> _Current:
        raise NotImplementedError

    def _make_current(self, c: _Current) -> bool:
        raise NotImplementedError

    def restore(self) -> bool:
        """Make the application's context current again if a runtime call changed it.

        Returns True when it had to (the caller may want to log it once)."""
        if self._current() == self.saved:
            return False
        if not self._make_current(self.saved):
            raise GLBindingError("could not make the application's GL context current again")
        return True

    def struct(self, xr: Any) -> Any:
        """The pyopenxr binding structure to chain into ``SessionCreateInfo.next``."""
        raise NotImplementedError


class EGLBinding(GLBinding):
    """``XrGraphicsBindingEGLMNDX`` from the current EGL context (ModernGL ``backend="egl"``)."""

    extension = "XR_MNDX_egl_enable"

    def __init__(self) -> None:
        egl = _library("libEGL.so.1", "EGL")
        self._get_display = _fn(egl, "eglGetCurrentDisplay", ctypes.c_void_p)
        self._get_context = _fn(egl, "eglGetCurrentContext", ctypes.c_void_p)
        self._get_surface = _fn(egl, "eglGetCurrentSurface", ctypes.c_void_p, ctypes.c_int)
        self._query_context = _fn(egl, "eglQueryContext", ctypes.c_uint, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int))
        self._choose_config = _fn(egl, "eglChooseConfig", ctypes.c_uint, ctypes.c_void_p,
                                  ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_void_p),
                                  ctypes.c_int, ctypes.POINTER(ctypes.c_int))
        self._make = _fn(egl, "eglMakeCurrent", ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_void_p, ctypes.c_void_p)
        self._get_proc_address = ctypes.cast(egl.eglGetProcAddress, ctypes.c_void_p).value
        super().__init__()
        self.config = self._config()

    def _current(self) -> _Current:
        return _Current(self._get_display(), self._get_surface(EGL_DRAW),
                        self._get_surface(EGL_READ), self._get_context())

    def _make_current(self, c: _Current) -> bool:
        return bool(self._make(c.display, c.draw, c.read, c.context))

    def _config(self) -> int:
        """The EGLConfig the context was created with (found again by its id)."""
        cid = ctypes.c_int(0)
        if not self._query_context(self.saved.display, self.saved.context, EGL_CONFIG_ID,
                                   ctypes.byref(cid)) or cid.value <= 0:
            raise GLBindingError("eglQueryContext(EGL_CONFIG_ID) failed: the context has no "
                                 "config an OpenXR runtime could use")
        attribs = (ctypes.c_int * 3)(EGL_CONFIG_ID, cid.value, EGL_NONE)
        config, n = ctypes.c_void_p(), ctypes.c_int(0)
        if not self._choose_config(self.saved.display, attribs, ctypes.byref(config), 1,
                                   ctypes.byref(n)) or n.value != 1:
            raise GLBindingError(f"eglChooseConfig found no config with id {cid.value}")
        return config.value

    def struct(self, xr: Any) -> Any:
        from xr.platform import linux

        def handle(value: int, kind: Any) -> Any:
            return ctypes.cast(ctypes.c_void_p(value), kind)

        return xr.GraphicsBindingEGLMNDX(
            get_proc_address=xr.PFN_xrEglGetProcAddressMNDX(self._get_proc_address),
            display=handle(self.saved.display, linux.EGLDisplay),
            config=handle(self.config, linux.EGLConfig),
            context=handle(self.saved.context, linux.EGLContext),
        )


class GLXBinding(GLBinding):
    """``XrGraphicsBindingOpenGLXlibKHR`` from the current GLX context (under X11)."""

    def __init__(self) -> None:
        gl = _library("libGL.so.1", "GLX")
        self._get_display = _fn(gl, "glXGetCurrentDisplay", ctypes.c_void_p)
        self._get_drawable = _fn(gl, "glXGetCurrentDrawable", ctypes.c_ulong)
        self._get_read = _fn(gl, "glXGetCurrentReadDrawable", ctypes.c_ulong)
        self._get_context = _fn(gl, "glXGetCurrentContext", ctypes.c_void_p)
        self._query_context = _fn(gl, "glXQueryContext", ctypes.c_int, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int))
        self._configs = _fn(gl, "glXGetFBConfigs", ctypes.POINTER(ctypes.c_void_p),
                            ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int))
        self._fb_attrib = _fn(gl, "glXGetFBConfigAttrib", ctypes.c_int, ctypes.c_void_p,
                              ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int))
        self._make = _fn(gl, "glXMakeContextCurrent", ctypes.c_int, ctypes.c_void_p,
                         ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p)
        super().__init__()
        self.fbconfig, self.visualid = self._config()

    def _current(self) -> _Current:
        return _Current(self._get_display(), self._get_drawable(), self._get_read(),
                        self._get_context())

    def _make_current(self, c: _Current) -> bool:
        return bool(self._make(c.display, c.draw or 0, c.read or 0, c.context))

    def _config(self) -> tuple[int, int]:
        dpy, ctx = self.saved.display, self.saved.context
        fid, screen = ctypes.c_int(0), ctypes.c_int(0)
        if self._query_context(dpy, ctx, GLX_FBCONFIG_ID, ctypes.byref(fid)) != 0:
            raise GLBindingError("glXQueryContext(GLX_FBCONFIG_ID) failed")
        self._query_context(dpy, ctx, GLX_SCREEN, ctypes.byref(screen))
        # glXChooseFBConfig(GLX_FBCONFIG_ID) misses configs on Mesa: scan them all instead
        n, value = ctypes.c_int(0), ctypes.c_int(0)
        configs = self._configs(dpy, screen.value, ctypes.byref(n))
        for i in range(n.value if configs else 0):
            self._fb_attrib(dpy, configs[i], GLX_FBCONFIG_ID, ctypes.byref(value))
            if value.value == fid.value:
                self._fb_attrib(dpy, configs[i], GLX_VISUAL_ID, ctypes.byref(value))
                return configs[i], value.value
        raise GLBindingError(f"the context's GLX FB config (id {fid.value}) is not on screen "
                             f"{screen.value}")

    def struct(self, xr: Any) -> Any:
        from OpenGL import GLX

        return xr.GraphicsBindingOpenGLXlibKHR(
            x_display=ctypes.cast(ctypes.c_void_p(self.saved.display),
                                  ctypes.POINTER(GLX.Display)),
            visualid=self.visualid,
            glx_fbconfig=ctypes.cast(ctypes.c_void_p(self.fbconfig), GLX.GLXFBConfig),
            glx_drawable=self.saved.draw or 0,
            glx_context=ctypes.cast(ctypes.c_void_p(self.saved.context), GLX.GLXContext),
        )


class HiddenWindow:
    """A hidden GLFW window with a current OpenGL core context of version ``require``
    (e.g. 430); on X11 that is a GLX context with a visual, as runtimes under X expect."""

    def __init__(self, require: int) -> None:
        try:
            import glfw
        except ImportError as exc:
            raise GLBindingError(f"a GLX context for OpenXR needs glfw: {exc}") from exc
        self.glfw = glfw
        if not glfw.init():
            raise GLBindingError("GLFW could not open the X display for a GLX context")
        glfw.default_window_hints()
        glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, require // 100)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, require % 100 // 10)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, glfw.TRUE)
        glfw.window_hint(glfw.CONTEXT_CREATION_API, glfw.NATIVE_CONTEXT_API)
        self.window = glfw.create_window(64, 64, "vrshare OpenXR", None, None)
        if not self.window:
            raise GLBindingError(f"GLFW could not create an OpenGL {require / 100:.1f} core "
                                 "context")
        glfw.make_context_current(self.window)

    def close(self) -> None:
        if self.window:
            self.glfw.destroy_window(self.window)
            self.window = None


def choose_binding(runtime_extensions: set[str]) -> tuple[str, type[GLBinding]]:
    """The context kind ("egl" or "glx") and binding to use with a runtime's extensions.

    EGL when the runtime offers ``XR_MNDX_egl_enable`` (it needs no X server), else
    GLX through Xlib when an X display is set; otherwise no binding can work.
    """
    if EGLBinding.extension in runtime_extensions:
        return "egl", EGLBinding
    if os.environ.get("DISPLAY"):
        return "glx", GLXBinding
    raise GLBindingError(
        "the OpenXR runtime offers no XR_MNDX_egl_enable and no X display is set (DISPLAY): "
        "it needs GraphicsBindingOpenGLXlibKHR, so run under X"
    )
