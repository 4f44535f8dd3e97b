"""The eye images of a session: one colour swapchain per eye, its images wrapped as
ModernGL framebuffers, and the projection layer that hands them to the compositor.

The layer's structures are built once, in :meth:`EyeSwapchains.create`, and updated in
place each frame with the pose and field of view each eye was drawn with.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import OpenXRError, call

GL_SRGB8_ALPHA8 = 0x8C43
GL_RGBA8 = 0x8058
COLOR_FORMATS = (GL_SRGB8_ALPHA8, GL_RGBA8)  # preferred first: sRGB-encoded bytes, as drawn


@dataclass
class Swapchain:
    """One eye's swapchain and the framebuffers drawing into its images."""

    handle: Any
    size: tuple[int, int]  # width, height (px)
    framebuffers: list[Any]  # one ModernGL framebuffer per swapchain image
    depth: Any  # shared depth renderbuffer


class EyeSwapchains:
    """The per-eye :class:`Swapchain` s of a session (iterates over them, left first) and
    their projection layer.

    ``ctx`` is the session's ModernGL context (current on this thread); ``restore(what)``
    is called after each runtime call that may have changed the current GL context. Empty
    until :meth:`create` (and for a session without graphics, which never calls it).
    """

    def __init__(self, xr: Any, ctx: Any, restore: Callable[[str], None]) -> None:
        self.xr = xr
        self.ctx = ctx
        self._restore = restore
        self.chains: list[Swapchain] = []
        self.srgb = False  # whether the images are sRGB-encoded (set by create)

    def __iter__(self) -> Iterator[Swapchain]:
        return iter(self.chains)

    def __len__(self) -> int:
        return len(self.chains)

    def create(self, session: Any, space: Any, sizes: Sequence[tuple[int, int]]) -> None:
        """One swapchain of ``sizes[eye]`` (width, height px) per eye, and a projection
        layer in ``space``. Swapchains made before a failure stay for :meth:`destroy`."""
        xr = self.xr
        formats = call("xrEnumerateSwapchainFormats", xr.enumerate_swapchain_formats, session)
        fmt = next((f for f in COLOR_FORMATS if f in formats), None)
        if fmt is None:
            raise OpenXRError("the OpenXR runtime offers no RGBA8 colour swapchain format "
                              f"(offered: {', '.join(hex(f) for f in formats)})")
        # An sRGB swapchain takes sRGB-encoded bytes (the shader encodes, as for a window);
        # a UNORM one is read as linear by the compositor, so it gets linear values.
        self.srgb = fmt == GL_SRGB8_ALPHA8
        for w, h in sizes:
            handle = call("xrCreateSwapchain", xr.create_swapchain, session,
                          xr.SwapchainCreateInfo(
                              usage_flags=(xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT
                                           | xr.SwapchainUsageFlags.SAMPLED_BIT),
                              format=fmt, sample_count=1, width=w, height=h, face_count=1,
                              array_size=1, mip_count=1))
            self._restore("xrCreateSwapchain")
            images = call("xrEnumerateSwapchainImages", xr.enumerate_swapchain_images, handle,
                          xr.SwapchainImageOpenGLKHR)
            depth = self.ctx.depth_renderbuffer((w, h))
            fbos = [self.ctx.framebuffer(
                        [self.ctx.external_texture(img.image, (w, h), 4, 0, "f1")], depth)
                    for img in images]
            self.chains.append(Swapchain(handle, (w, h), fbos, depth))
        self._layer_views = (xr.CompositionLayerProjectionView * len(self.chains))(*(
            xr.CompositionLayerProjectionView(sub_image=xr.SwapchainSubImage(
                swapchain=sc.handle, image_rect=xr.Rect2Di(extent=xr.Extent2Di(*sc.size))))
            for sc in self.chains))
        self._layer = xr.CompositionLayerProjection(space=space, views=self._layer_views)
        self._acquire_info = xr.SwapchainImageAcquireInfo()
        self._wait_info = xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION)
        self._release_info = xr.SwapchainImageReleaseInfo()

    def acquire(self, acquired: list[int]) -> list[tuple[Any, tuple[int, int, int, int]]]:
        """Acquire and wait for one image per eye, appending each image index to
        ``acquired`` as it is taken: (framebuffer, viewport) per eye."""
        xr = self.xr
        out = []
        for sc in self.chains:
            index = call("xrAcquireSwapchainImage", xr.acquire_swapchain_image, sc.handle,
                         self._acquire_info)
            call("xrWaitSwapchainImage", xr.wait_swapchain_image, sc.handle,
                 self._wait_info)
            self._restore("xrAcquireSwapchainImage")
            acquired.append(index)
            out.append((sc.framebuffers[index], (0, 0, *sc.size)))
        return out

    def release(self, count: int) -> None:
        """Release the images of the first ``count`` eyes (those acquired this frame)."""
        for sc in self.chains[:count]:
            call("xrReleaseSwapchainImage", self.xr.release_swapchain_image, sc.handle,
                 self._release_info)

    def layer(self, views: Sequence[Any], poses: np.ndarray | None,
              fovs: np.ndarray | None) -> Any:
        """The projection layer (a pointer for ``FrameEndInfo.layers``) with ``poses``
        (2, 7) and ``fovs`` (2, 4, rad) per eye written in; where one is None, the located
        ``views`` (XrViews) give it."""
        for eye, view in enumerate(self._layer_views):
            if poses is None:
                view.pose = views[eye].pose
            else:
                p = poses[eye]
                o, t = view.pose.orientation, view.pose.position
                t.x, t.y, t.z = float(p[0]), float(p[1]), float(p[2])
                o.x, o.y, o.z, o.w = float(p[3]), float(p[4]), float(p[5]), float(p[6])
            if fovs is None:
                view.fov = views[eye].fov
            else:
                f = view.fov
                a = fovs[eye]
                f.angle_left, f.angle_right = float(a[0]), float(a[1])
                f.angle_up, f.angle_down = float(a[2]), float(a[3])
        return ctypes.byref(self._layer)

    def destroy(self, destroy: Callable[[str, Callable[[Any], Any], Any], None]) -> None:
        """Release the framebuffers and destroy the swapchains through
        ``destroy(what, fn, handle)``; idempotent."""
        for sc in self.chains:
            for fbo in sc.framebuffers:
                fbo.release()  # the textures belong to the runtime: not released here
            sc.depth.release()
            destroy("xrDestroySwapchain", self.xr.destroy_swapchain, sc.handle)
        self.chains = []
