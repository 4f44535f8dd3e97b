"""Geometry written once and used everywhere: quaternions, rotations, eye matrices.

* :mod:`.quat`: quaternions and rigid transforms for NumPy and CuPy alike (the
  tracking stage's per-frame maths), plus host helpers (from a matrix, from yaw/pitch).
* :mod:`.rotation`: rotation matrices from an axis and angle and from a run file's
  Euler angles, and cross-product matrices (host NumPy, at load time).
* :mod:`.eyes`: per-eye view and projection matrices, and their conversion back to
  OpenXR eye poses and fields of view.

Conventions (those of :mod:`vrshare.layout`): right-handed, +X right, +Y up, -Z
forward, metres, radians; quaternions ``[x, y, z, w]``; matrices row-major acting on
column vectors.
"""
