"""The scene filter's constant tables: frustum-plane rows, the 4 x 4 transpose as a
product, and the check of the LOD tables a stage hands it (all host NumPy, setup only)."""

from __future__ import annotations

import numpy as np

from ... import layout

# Row combinations of ``proj @ view`` giving the planes left, right, bottom, top, near,
# far (GL clip space: -w <= x, y, z <= w).
PLANE_ROWS = np.array([[1, 0, 0, 1], [-1, 0, 0, 1], [0, 1, 0, 1], [0, -1, 0, 1],
                       [0, 0, 1, 1], [0, 0, -1, 1]], np.float32)


def transpose_matrix() -> np.ndarray:
    """16 x 16 permutation ``P`` with ``(M.ravel() @ P) == M.T.ravel()`` for a 4 x 4 ``M``."""
    p = np.zeros((16, 16), np.float32)
    for k in range(16):  # output k = 4 * column + row reads input 4 * row + column
        p[4 * (k % 4) + k // 4, k] = 1.0
    return p


def check_lod_tables(draw: np.ndarray, distance: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Validate the LOD tables and mesh ids; return each mesh's number of LODs."""
    where = f"{layout.MESH_LOD_DRAW!r}/{layout.MESH_LOD_DISTANCE!r}"
    valid = draw >= 0
    counts = valid.sum(axis=1)
    for m in range(draw.shape[0]):
        k = int(counts[m])
        if k == 0 or not valid[m, :k].all():
            raise ValueError(f"{where}: mesh {m} must have LOD 0 and contiguous levels "
                             f"(-1 only past the last), got draw slots {draw[m].tolist()}")
        if np.any(draw[m] < -1):
            raise ValueError(f"{where}: mesh {m} has a draw slot below -1: {draw[m].tolist()}")
        d = distance[m, :k]
        if not (np.all(np.isfinite(d[1:])) and np.all(d[1:] >= 0) and np.all(np.diff(d) >= 0)):
            raise ValueError(f"{where}: mesh {m} switch distances must be finite, >= 0 and "
                             f"non-decreasing, got {d.tolist()}")
    if mesh.size and (mesh.min() < 0 or mesh.max() >= draw.shape[0]):
        bad = int(np.flatnonzero((mesh < 0) | (mesh >= draw.shape[0]))[0])
        raise ValueError(f"{layout.OBJECT_MESH!r}: object {bad} has mesh {int(mesh[bad])}, "
                         f"expected 0..{draw.shape[0] - 1}")
    return counts
