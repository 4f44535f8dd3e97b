"""Quaternion and rigid-transform helpers, written once for NumPy and CuPy.

Conventions (those of :mod:`vrshare.layout`): quaternions are ``[..., 4]`` arrays
``[x, y, z, w]`` (scalar last, as scipy and OpenXR store them) representing the
rotation that takes a vector from the device frame to the world frame; rotation
vectors are axis * angle (radians); matrices are row-major and act on column
vectors. Every function broadcasts over leading axes and takes its array module
from its inputs, so the same code runs on the CPU and the GPU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vrshare.backend import array_module

# rad^2, added to a squared angle (or squared sine) before its square root, so that
# exp and log need no branch at zero: sin(a/2)/a and atan2(s, w)/s stay finite and
# meet their limits there; above 1e-6 rad it is below float64 rounding
TINY_SQUARE = 1e-30


def _bilinear(terms: dict[int, list[tuple[int, int, float]]], width: int) -> np.ndarray:
    """``[16, width]`` matrix taking the outer product ``a_i b_j`` (flattened) to outputs."""
    m = np.zeros((16, width))
    for out, entries in terms.items():
        for i, j, sign in entries:
            m[4 * i + j, out] += sign
    return m


# Hamilton product and rotation matrix as one matrix product each on an outer product:
# a few large array operations instead of dozens of per-component ones (tiny arrays
# are dominated by the per-call cost of the array library)
X, Y, Z, W = range(4)
HAMILTON = _bilinear({
    0: [(W, X, 1), (X, W, 1), (Y, Z, 1), (Z, Y, -1)],
    1: [(W, Y, 1), (X, Z, -1), (Y, W, 1), (Z, X, 1)],
    2: [(W, Z, 1), (X, Y, 1), (Y, X, -1), (Z, W, 1)],
    3: [(W, W, 1), (X, X, -1), (Y, Y, -1), (Z, Z, -1)],
}, 4)
CONJ = np.array([-1.0, -1.0, -1.0, 1.0])  # q -> q^-1 for unit q
HAMILTON_CONJ = HAMILTON * np.tile(CONJ, 4)[:, None]  # a * b^-1
ROTATION = _bilinear({  # R - I, row-major 3x3, from the unit quaternion's outer product
    0: [(Y, Y, -2), (Z, Z, -2)], 1: [(X, Y, 2), (Z, W, -2)], 2: [(X, Z, 2), (Y, W, 2)],
    3: [(X, Y, 2), (Z, W, 2)], 4: [(X, X, -2), (Z, Z, -2)], 5: [(Y, Z, 2), (X, W, -2)],
    6: [(X, Z, 2), (Y, W, -2)], 7: [(Y, Z, 2), (X, W, 2)], 8: [(X, X, -2), (Y, Y, -2)],
}, 9)
IDENTITY9 = np.eye(3).reshape(9)  # the I that ROTATION leaves out
_on_device: dict[tuple[str, int, Any], Any] = {}


def constant(xp: Any, table: np.ndarray, dtype: Any) -> Any:
    """``table`` as ``dtype`` on the array module ``xp``, copied there once."""
    if xp is np and dtype == table.dtype:
        return table
    key = (xp.__name__, id(table), dtype)
    if key not in _on_device:
        _on_device[key] = xp.asarray(table, dtype=dtype)
    return _on_device[key]


def module(*arrays: Any) -> Any:
    """:func:`~vrshare.backend.array_module`, short-cut for NumPy arrays (called a lot)."""
    for a in arrays:
        if type(a) is not np.ndarray:
            return array_module(*arrays)
    return np


def norm(v: Any) -> Any:
    """Euclidean length over the last axis, kept as a length-1 axis."""
    return module(v).sqrt((v * v).sum(axis=-1, keepdims=True))


def normalize(q: Any) -> Any:
    """``q`` scaled to unit length (zero quaternions are the caller's to reject)."""
    return q / norm(q)


def conjugate(q: Any) -> Any:
    """The inverse of a unit quaternion."""
    return q * constant(module(q), CONJ, q.dtype)


def multiply(a: Any, b: Any) -> Any:
    """Hamilton product ``a * b``: rotate by ``b`` first, then by ``a``."""
    return _bilinear_product(a, b, HAMILTON)


def _bilinear_product(a: Any, b: Any, table: np.ndarray) -> Any:
    """The outer products of ``a`` and ``b`` (last axis, 4 each) times ``table`` [16, N]."""
    outer = a[..., None] * b[..., None, :]
    return outer.reshape(*outer.shape[:-2], 16) @ constant(module(a, b), table, outer.dtype)


def rotate(q: Any, v: Any) -> Any:
    """Vectors ``v`` ``[..., 3]`` rotated by unit quaternions ``q``."""
    xp = array_module(q, v)
    u = q[..., :3]
    w = q[..., 3:4]
    t = 2.0 * xp.cross(u, v)
    return v + w * t + xp.cross(u, t)


def from_rotvec(r: Any) -> Any:
    """Unit quaternion of the rotation vector ``r`` (axis * angle, rad): the exp map."""
    xp = module(r)
    angle = xp.sqrt((r * r).sum(axis=-1, keepdims=True) + TINY_SQUARE)
    half = 0.5 * angle
    # sin(a/2)/a: 1/2 at zero, where TINY_SQUARE keeps the angle from being 0
    return xp.concatenate([r * (xp.sin(half) / angle), xp.cos(half)], axis=-1)


def to_rotvec(q: Any) -> Any:
    """Rotation vector (axis * angle, angle in [0, pi]) of unit quaternions: the log map.

    ``q`` and ``-q`` give the same result (the shorter rotation is chosen).
    """
    xp = module(q)
    v = q[..., :3]
    w = q[..., 3:4]
    s = xp.sqrt((v * v).sum(axis=-1, keepdims=True) + TINY_SQUARE)  # sin(angle/2)
    # angle/sin(angle/2) = 2 atan2(s, |w|)/s, with |w| for the shorter way round and the
    # sign of w on the axis (q and -q: one rotation); near zero it is 2/|w|, which
    # TINY_SQUARE lets atan2(s, |w|)/s reach without a branch
    return (v + v) * xp.copysign(xp.arctan2(s, xp.abs(w)) / s, w)


def relative_rotvec(a: Any, b: Any) -> Any:
    """World-frame rotation vector ``r`` with ``exp(r) * b = a`` (the turn from b to a)."""
    return to_rotvec(_bilinear_product(a, b, HAMILTON_CONJ))


def slerp(a: Any, b: Any, t: Any) -> Any:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1); ``t`` broadcasts as ``[..., 1]``.

    Goes the short way round; ``t`` outside [0, 1] extrapolates along the same great circle.
    """
    return multiply(from_rotvec(relative_rotvec(b, a) * t), a)


def to_matrix(q: Any) -> Any:
    """3x3 rotation matrices ``[..., 3, 3]`` of unit quaternions."""
    m = _bilinear_product(q, q, ROTATION) + constant(module(q), IDENTITY9, q.dtype)
    return m.reshape(*m.shape[:-1], 3, 3)


def pose_matrix(pose: Any) -> Any:
    """4x4 device-to-world matrices ``[..., 4, 4]`` of poses ``[..., 7]`` (position, xyzw)."""
    xp = array_module(pose)
    m = xp.zeros((*pose.shape[:-1], 4, 4), dtype=pose.dtype)
    m[..., :3, :3] = to_matrix(pose[..., 3:7])
    m[..., :3, 3] = pose[..., :3]
    m[..., 3, 3] = 1.0
    return m


def rigid_inverse(m: Any) -> Any:
    """Inverse of rigid 4x4 transforms (rotation + translation), without a general solve."""
    xp = array_module(m)
    out = xp.zeros_like(m)
    rt = xp.swapaxes(m[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -(rt @ m[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


# -- host helpers: one rotation from a few numbers (NumPy, float64) ----------------------


def from_matrix(m: np.ndarray) -> np.ndarray:
    """Unit quaternion [x, y, z, w] of a 3x3 rotation matrix (Shepperd's method: the
    square root is taken of the largest of the trace and the diagonal, so it never
    divides by a small number)."""
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


def from_yaw_pitch(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """Unit quaternion [x, y, z, w] of a head turned by ``yaw`` about +Y (positive turns
    left), then pitched by ``pitch`` about its own +X (positive looks up); radians."""
    sy, cy = math.sin(yaw / 2), math.cos(yaw / 2)
    sp, cp = math.sin(pitch / 2), math.cos(pitch / 2)
    return np.array([cy * sp, sy * cp, -sy * sp, cy * cp])  # q_yaw * q_pitch
