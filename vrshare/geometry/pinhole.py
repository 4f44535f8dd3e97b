"""A pinhole camera: intrinsics in OpenCV's convention, and the virtual camera's table.

Intrinsics follow OpenCV: ``fx, fy`` focal lengths (px), ``cx, cy`` the principal point
(px) with pixel centres at integer coordinates (the top-left pixel's centre is 0, 0),
x right, y down, the camera looking down +Z. vrshare's camera frame is OpenXR's (x
right, y up, looking down -Z); :data:`CV_FROM_XR` turns one into the other.

:class:`CameraSpec` is shared by the parts that meet at a camera image: the virtual
camera that draws it (:mod:`vrshare.render.camera`) and the optical tracker that reads
it, so both agree on the intrinsics without either importing the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..config import check_ranges, setting

CV_FROM_XR = np.diag([1.0, -1.0, -1.0, 1.0])  # 4x4: OpenXR camera axes -> OpenCV's (own inverse)


@dataclass
class CameraSpec:
    """A camera's image size, intrinsics and, for the virtual camera, how it exposes.

    Without ``fx`` (0) the focal length follows from ``hfov_deg``; without ``cx``/``cy``
    (negative) the principal point is the image centre. ``mount`` says what the pose
    ``position`` / ``rotation_deg`` is relative to: ``"head"`` (inside-out: the camera
    on the headset, offset in head space) or ``"world"`` (outside-in: fixed in the room).
    """

    width: int = setting(640, ge=8, le=8192, unit="px")
    height: int = setting(480, ge=8, le=8192, unit="px")
    hfov_deg: float = setting(70.0, gt=1, lt=179, unit="deg")
    fx: float = setting(0.0, ge=0, unit="px")
    fy: float = setting(0.0, ge=0, unit="px")  # 0: fx
    cx: float = setting(-1.0, unit="px")
    cy: float = setting(-1.0, unit="px")
    distortion: tuple[float, ...] = setting((), unit="OpenCV k1 k2 p1 p2 k3")
    rate_hz: float = setting(30.0, gt=0, le=1000, unit="Hz")  # exposures per second
    mount: Literal["head", "world"] = "head"
    position: tuple[float, float, float] = setting((0.0, 0.0, 0.0), unit="m")
    rotation_deg: tuple[float, float, float] = setting((0.0, 0.0, 0.0), unit="deg")
    noise: float = setting(0.0, ge=0, le=128, unit="grey levels (std)")  # sensor noise
    exposure_ms: float = setting(0.0, ge=0, le=1000, unit="ms")  # motion blur: shutter open
    blur_samples: int = setting(4, ge=1, le=64)  # sub-frames averaged over the exposure
    near: float = setting(0.02, gt=0, unit="m")
    far: float = setting(50.0, gt=0, unit="m")
    seed: int = setting(0, ge=0)  # of the sensor noise

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.near < self.far:
            raise ValueError(f"camera near ({self.near}) must be < far ({self.far})")
        if len(self.distortion) not in (0, 4, 5, 8, 12, 14):
            raise ValueError(f"camera distortion has {len(self.distortion)} coefficients; "
                             "OpenCV takes 4, 5, 8, 12 or 14")

    def matrix(self) -> np.ndarray:
        """The 3x3 intrinsic matrix K (px), OpenCV's convention."""
        fx = self.fx or self.width / 2 / math.tan(math.radians(self.hfov_deg) / 2)
        fy = self.fy or fx
        cx = self.cx if self.cx >= 0 else (self.width - 1) / 2
        cy = self.cy if self.cy >= 0 else (self.height - 1) / 2
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    def dist_coeffs(self) -> np.ndarray:
        """OpenCV distortion coefficients (zeros without any)."""
        return np.asarray(self.distortion or (0.0,) * 5, np.float64)


def fov_of(k: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    """OpenXR-style field of view (left, right, up, down, rad) of intrinsics ``k`` on a
    ``width`` x ``height`` image: the frustum through the image's outer pixel edges."""
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    return (math.atan(-(cx + 0.5) / fx), math.atan((width - cx - 0.5) / fx),
            math.atan((cy + 0.5) / fy), math.atan(-(height - cy - 0.5) / fy))
