"""A virtual camera in the scene: the renderer's view from a pinhole camera, as a grey
image in the bank, so optical tracking closes its loop against known poses.

The camera draws the same instance rows as the eyes (one more :class:`Renderer` over
the scene, bound to the bank's ``instances`` and ``draw_ranges`` and to its own view
and projection), into an offscreen framebuffer of the camera's size, reads it back,
converts it to 8-bit luma (ITU-R BT.601 weights) of *linear* intensity, as a raw
sensor records it (sRGB-encoding a filtered edge would move it: white bleeds into
black by about half a pixel, a bias a real linear sensor does not have), and adds
what a sensor adds on request: motion blur (sub-frames averaged over the exposure)
and Gaussian noise. Images are distortion-free.

It writes the camera buffers of :mod:`vrshare.layout` (``camera_image``,
``camera_exposure``, ``camera_matrix``): the mid-exposure time is the time of the
poses it was drawn with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import backend, layout
from ..geometry import eyes, quat, rotation
from ..geometry.pinhole import CameraSpec, fov_of
from .contract import RenderError
from .renderer import Renderer

if TYPE_CHECKING:
    import moderngl

    from ..scene import Scene
    from ..weights import WeightBank

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601 weights of R, G, B

PoseAt = Callable[[float], np.ndarray]  # time (s) -> camera pose (7,) in the world


@dataclass(frozen=True)
class CameraSurface:
    """The camera's framebuffer as the renderer takes a surface (the fields of
    ``vrshare.targets.base.EyeSurface``, which the renderer may not import)."""

    eye: int  # row of the view / projection drawn with
    framebuffer: Any
    viewport: tuple[int, int, int, int]  # x, y, width, height (px)
    encode_srgb: bool = False  # False: linear values stored (the buffer is plain RGBA8)


def declare(bank: WeightBank, spec: CameraSpec) -> tuple[str, ...]:
    """Declare the camera buffers (shapes per :mod:`vrshare.layout`); returns their names."""
    bank.state(layout.CAMERA_IMAGE, shape=(spec.height, spec.width), dtype="uint8")
    exposure = bank.state(layout.CAMERA_EXPOSURE, shape=(2,), dtype="float64")
    backend.to_device(np.array([0.0, -1.0]), out=exposure, label=layout.CAMERA_EXPOSURE)
    matrix = bank.state(layout.CAMERA_MATRIX, shape=(3, 3), dtype="float64")
    backend.to_device(spec.matrix(), out=matrix, label=layout.CAMERA_MATRIX)
    return layout.CAMERA_IMAGE, layout.CAMERA_EXPOSURE, layout.CAMERA_MATRIX


def mount_matrix(spec: CameraSpec) -> np.ndarray:
    """4x4 camera -> mount (head or world) transform of ``spec``'s pose, row-major."""
    m = np.eye(4)
    m[:3, :3] = rotation.euler_xyz(spec.rotation_deg)
    m[:3, 3] = spec.position
    return m


class VirtualCamera:
    """Draws ``scene`` from a camera into the bank's camera buffers.

    ``ctx`` must be current on the calling thread; :meth:`bind` once the pipeline's
    buffers exist, then :meth:`expose` per camera frame.
    """

    def __init__(self, ctx: moderngl.Context, scene: Scene, spec: CameraSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.renderer = Renderer(ctx, scene, gpu_timing=False)
        size = (spec.width, spec.height)
        self.color = ctx.renderbuffer(size, 4)
        self.depth = ctx.depth_renderbuffer(size)
        self.fbo = ctx.framebuffer(self.color, self.depth)
        self.surface = CameraSurface(0, self.fbo, (0, 0, *size))
        self.view = np.zeros((2, 4, 4), np.float32)
        proj = eyes.projection(fov_of(spec.matrix(), *size), spec.near, spec.far)
        self.proj = np.array([proj, proj], np.float32)
        self.rgba = np.empty((spec.height, spec.width, 4), np.uint8)
        self.sum = np.empty((spec.height, spec.width), np.float32)
        self.grey = np.empty((spec.height, spec.width), np.uint8)  # host copy of the image
        self.rng = np.random.default_rng(spec.seed)
        self.count = 0  # exposures made
        self.image: Any = None

    def bind(self, bank: WeightBank) -> None:
        """Draw from the bank's instance rows; write its camera buffers."""
        self.renderer.bind({layout.INSTANCES: bank[layout.INSTANCES],
                            layout.DRAW_RANGES: bank[layout.DRAW_RANGES],
                            layout.EYE_VIEW: self.view, layout.EYE_PROJ: self.proj})
        self.image = bank[layout.CAMERA_IMAGE]
        self.exposure = bank[layout.CAMERA_EXPOSURE]

    def expose(self, frame: Any, pose_at: PoseAt, t_mid: float) -> np.ndarray:
        """One exposure centred on ``t_mid`` (s): the camera at ``pose_at(t)`` (world pose,
        7 floats) for ``blur_samples`` times across ``exposure_ms`` (one at ``t_mid``
        without blur); writes the bank's ``camera_image`` and returns its host copy
        (reused by the next exposure)."""
        s = self.spec
        n = s.blur_samples if s.exposure_ms > 0 else 1
        offsets = (np.arange(n) + 0.5) / n - 0.5 if n > 1 else np.zeros(1)
        self.sum[...] = 0.0
        for dt in offsets * s.exposure_ms / 1e3:
            self.view[...] = world_to_camera(pose_at(t_mid + float(dt)))
            self.renderer.render(frame, [self.surface])
            self.fbo.read_into(self.rgba, components=4)
            self.sum += self.rgba[::-1, :, :3] @ LUMA  # GL's bottom row first -> top first
        self.sum *= 1.0 / n
        if s.noise > 0:
            self.sum += self.rng.normal(0.0, s.noise, self.sum.shape).astype(np.float32)
        np.clip(self.sum, 0, 255, out=self.sum)
        np.rint(self.sum, out=self.sum)
        self.grey[...] = self.sum
        backend.to_device(self.grey, out=self.image, label=layout.CAMERA_IMAGE)
        self.count += 1
        backend.to_device(np.array([t_mid, self.count - 1.0]), out=self.exposure,
                          label=layout.CAMERA_EXPOSURE)
        return self.grey

    def close(self) -> None:
        self.renderer.close()
        for obj in (self.fbo, self.color, self.depth):
            obj.release()


class CameraStep:
    """The virtual camera as a step of a displayed run (after ``render``): at most
    ``rate_hz`` exposures per second of the frame clock, each at the frame's
    ``t_display`` (the time the frame's poses were predicted for), from the head's
    ``device_poses`` row (mount ``"head"``) or from the room (``"world"``). The
    optical stage reads the image in the next frame."""

    def __init__(self, camera: VirtualCamera) -> None:
        self.camera = camera
        self.period = 1.0 / camera.spec.rate_hz
        self.due = -np.inf
        self.poses: Any = None
        self.fixed = camera_pose(np.array([0, 0, 0, 0, 0, 0, 1.0]), camera.spec)

    def bind(self, bank: WeightBank) -> None:
        """Bind the camera to the bank (once the pipeline's buffers exist)."""
        self.camera.bind(bank)
        if self.camera.spec.mount == "head":
            if layout.DEVICE_POSES not in bank:
                raise RenderError(f"a head-mounted virtual camera needs "
                                  f"{layout.DEVICE_POSES!r} (add a 'tracking' stage)")
            self.poses = bank[layout.DEVICE_POSES]

    def __call__(self, frame: Any, bank: WeightBank) -> None:
        if frame.t_now + 1e-9 < self.due:
            return
        self.due = max(self.due + self.period, frame.t_now)
        if self.poses is None:
            fixed = self.fixed
            self.camera.expose(frame, lambda t: fixed, frame.t_display)
            return
        head = np.asarray(backend.to_host(self.poses, label="camera_pose")[0], np.float64)
        pose = camera_pose(head, self.camera.spec)
        self.camera.expose(frame, lambda t: pose, frame.t_display)


def world_to_camera(pose: np.ndarray) -> np.ndarray:
    """4x4 world -> camera (OpenXR axes) view matrix of a camera pose (7,)."""
    return quat.rigid_inverse(quat.pose_matrix(np.asarray(pose, np.float64)))


def camera_pose(mount_pose: np.ndarray, spec: CameraSpec) -> np.ndarray:
    """World pose (7,) of the camera on a mount at ``mount_pose`` (7,; identity for a
    camera fixed in the world)."""
    m = quat.pose_matrix(np.asarray(mount_pose, np.float64)) @ mount_matrix(spec)
    return np.concatenate([m[:3, 3], quat.from_matrix(m[:3, :3])])


__all__ = ["CameraStep", "CameraSurface", "VirtualCamera", "camera_pose", "declare", "mount_matrix",
           "world_to_camera"]
