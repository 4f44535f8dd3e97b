"""Rotation matrices from axes and angles, on the host (NumPy, float64).

Used where rotations are built once from numbers a person wrote: a scene object's
Euler angles, a motion's spin or orbit axis. Matrices are row-major and act on column
vectors; angles are radians unless a name says degrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

AXES = np.eye(3)  # rows: the world X, Y and Z axes


def cross_matrix(axes: np.ndarray) -> np.ndarray:
    """Cross-product matrices ``K`` ``[..., 3, 3]`` of vectors ``[..., 3]`` (``K v = a x v``)."""
    axes = np.asarray(axes, np.float64)
    k = np.zeros((*axes.shape[:-1], 3, 3))
    x, y, z = axes[..., 0], axes[..., 1], axes[..., 2]
    k[..., 0, 1], k[..., 0, 2] = -z, y
    k[..., 1, 0], k[..., 1, 2] = z, -x
    k[..., 2, 0], k[..., 2, 1] = -y, x
    return k


def axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` (rad) about the unit ``axis`` (right-handed), by
    Rodrigues' formula ``I + sin(a) K + (1 - cos(a)) K^2``."""
    k = cross_matrix(axis)
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def euler_xyz(degrees: Sequence[float]) -> np.ndarray:
    """3x3 rotation about world X, then Y, then Z (``R = Rz Ry Rx``), angles in degrees:
    the meaning of ``rotation`` in a run file's ``[[scene.object]]``."""
    rx, ry, rz = (math.radians(d) for d in degrees)
    return axis_angle(AXES[2], rz) @ axis_angle(AXES[1], ry) @ axis_angle(AXES[0], rx)
