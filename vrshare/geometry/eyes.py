"""Per-eye view and projection matrices from the head pose, the IPD and the field of
view, and the way back to OpenXR's eye poses and field-of-view angles.

The eyes sit on the head's +X axis at -ipd/2 (left) and +ipd/2 (right), looking down
the head's -Z axis (OpenXR's view space). Projections map to OpenGL clip space
(NDC z in [-1, 1]) from OpenXR-style field-of-view angles: ``left`` and ``down`` are
negative for a centred eye, ``right`` and ``up`` positive (radians).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import array_module
from . import quat

DEFAULT_IPD = 0.063  # m: interpupillary distance drawn when a run file gives none


def projection(fov: Sequence[float], near: float, far: float) -> list[list[float]]:
    """4x4 projection (row-major, column vectors) of one eye; angles left, right, up, down (rad).

    The same matrix as OpenXR's reference ``XrMatrix4x4f_CreateProjectionFov`` for
    OpenGL: an asymmetric frustum through ``near * tan(angle)`` on the near plane.
    """
    left, right, up, down = fov
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near} far={far}")
    if not (-math.pi / 2 < left < right < math.pi / 2 and -math.pi / 2 < down < up < math.pi / 2):
        raise ValueError(
            f"field of view (left={left}, right={right}, up={up}, down={down}) rad must have "
            "-pi/2 < left < right < pi/2 and -pi/2 < down < up < pi/2"
        )
    tl, tr, tu, td = (math.tan(a) for a in (left, right, up, down))
    w, h = tr - tl, tu - td
    return [
        [2 / w, 0.0, (tr + tl) / w, 0.0],
        [0.0, 2 / h, (tu + td) / h, 0.0],
        [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0.0, 0.0, -1.0, 0.0],
    ]


def projection_batch(fov: Any, near: float, far: float, out: Any) -> Any:
    """:func:`projection` of ``fov`` ``[E, 4]`` on any array module, into ``out`` ``[E, 4, 4]``.

    Used when the field of view arrives each frame from a target (no host round trip).
    """
    xp = array_module(fov, out)
    t = xp.tan(fov)
    tl, tr, tu, td = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
    w, h = tr - tl, tu - td
    out[...] = 0
    out[:, 0, 0] = 2 / w
    out[:, 0, 2] = (tr + tl) / w
    out[:, 1, 1] = 2 / h
    out[:, 1, 2] = (tu + td) / h
    out[:, 2, 2] = -(far + near) / (far - near)
    out[:, 2, 3] = -2 * far * near / (far - near)
    out[:, 3, 2] = -1.0
    return out


# the eyes' offsets along the head's x axis, in units of ipd/2 (left -1, right +1), as
# seen from the eye (so negated), and the bottom row of every view matrix
EYE_SIDES = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
BOTTOM = np.array([0.0, 0.0, 0.0, 1.0])


def eye_views(head_pose: Any, ipd: float, out: Any = None) -> Any:
    """World-to-eye matrices ``[2, 4, 4]`` (left, right) of a head pose ``[7]``, into ``out``
    (a new float64 array when None).

    The inverse of the eye's pose ``head @ translate(+-ipd/2, 0, 0)``, written out:
    rotation ``R^T`` and translation ``-R^T p -+ (ipd/2, 0, 0)``, worked in float64.
    """
    xp = quat.module(head_pose) if out is None else quat.module(head_pose, out)
    if out is None:
        out = xp.zeros((2, 4, 4))
    pose = head_pose.astype(xp.float64, copy=False)
    rt = quat.to_matrix(pose[3:7]).T
    out[:, :3, :3] = rt
    out[:, :3, 3] = quat.constant(xp, EYE_SIDES, xp.float64) * (0.5 * ipd) - rt @ pose[:3]
    out[:, 3] = quat.constant(xp, BOTTOM, xp.float64)
    return out


def eye_pose_from_view(view: np.ndarray) -> np.ndarray:
    """The eye pose [px, py, pz, qx, qy, qz, qw] of a world->eye matrix (4x4, row-major):
    what an OpenXR projection layer wants to know each eye was drawn from (host)."""
    r = view[:3, :3].T  # eye -> world rotation
    return np.concatenate([-r @ view[:3, 3], quat.from_matrix(r)])


def fov_from_projection(proj: np.ndarray) -> np.ndarray:
    """Field-of-view angles [left, right, up, down] (rad) of an OpenGL off-axis projection
    (the inverse of :func:`projection`, host)."""
    return np.arctan([(proj[0, 2] - 1) / proj[0, 0], (proj[0, 2] + 1) / proj[0, 0],
                      (proj[1, 2] + 1) / proj[1, 1], (proj[1, 2] - 1) / proj[1, 1]])
