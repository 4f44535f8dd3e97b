"""The scene filter's compiled path: the same culling, listing, LOD and compaction as
:class:`~vrshare.stages.scene_filter.stage.SceneFilterStage`'s array code, as two loops
over the objects compiled by Numba (NumPy backend only).

Why a second path: the array code makes a dozen passes over N-sized temporaries (12 N
plane values written and read back, a sort, scattered gathers), so at 100k objects it is
bound by memory traffic several times over what reading the inputs costs. Here the
plane values of an object never leave the registers, the listing is one running count,
and the LOD step orders the kept objects by (draw slot, index) with a counting sort
instead of the key sort. Both loops release the GIL, so an off-loop scene filter does
not hold up the frame.

Results are those of the array code, with one difference at the frustum's edge: plane
values are summed here in a fixed order (there by a float32 matrix product, whose order
is the BLAS library's), so an object within float32 rounding of a plane (about 1e-7 of
the scene's scale) may be kept by one path and not the other. A NaN plane value (from a
non-finite bounding sphere or eye matrix) culls the object on both paths. The tests check
both paths against each other and against the per-object reference.

Importing this module imports Numba (the ``fast`` extra); the stage chooses the path at
setup and logs which.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def cull_and_list(planes: np.ndarray, columns: np.ndarray, visible: np.ndarray,
                  order: np.ndarray) -> int:
    """List the objects either eye sees in ``order[:k]`` (index order); returns ``k``.

    ``planes`` (12, 4) float32: both eyes' normalised planes ``[nx, ny, nz, offset]``
    (m); ``columns`` (4, N) float32: the bounding spheres ``[cx, cy, cz, r]`` (m) with
    one contiguous row per coordinate, so that the plane loop runs on SIMD lanes;
    ``visible`` (N,) bool scratch. An object is kept when, for either eye, all six
    plane values ``n.c + r + offset`` are >= 0; a NaN plane value culls it whatever the
    others, as the array code's NaN-propagating min and max do.
    """
    x, y, z, r = columns[0], columns[1], columns[2], columns[3]
    for i in range(x.shape[0]):  # no branches: vectorised over objects
        best = np.float32(-np.inf)
        nan = False
        for eye in range(2):
            worst = np.float32(np.inf)
            for p in range(6):
                k = 6 * eye + p
                s = planes[k, 0] * x[i] + planes[k, 1] * y[i] + planes[k, 2] * z[i] \
                    + r[i] + planes[k, 3]
                nan |= s != s
                worst = min(worst, s)
            best = max(best, worst)
        visible[i] = (best >= 0) & (not nan)
    count = 0
    for i in range(x.shape[0]):  # a running count, not a branch per object
        order[count] = i
        count += visible[i]
    return count


@njit(cache=True, nogil=True)
def lod_and_compact(count: int, order: np.ndarray, bounds: np.ndarray, viewer: np.ndarray,
                    focal: np.float32, mesh: np.ndarray, up2: np.ndarray,
                    down2: np.ndarray, table: np.ndarray, lod: np.ndarray,
                    slot: np.ndarray, model: np.ndarray, color: np.ndarray,
                    instances: np.ndarray, ranges: np.ndarray) -> None:
    """LOD with hysteresis for the ``count`` objects listed in ``order``, then
    ``draw_ranges`` and ``instances`` ordered by (slot, index).

    The measure compared with ``up2`` / ``down2`` is the squared distance ``d2`` (m^2)
    from ``viewer`` (3,) to the centre of the object's sphere in ``bounds`` (N, 4),
    float32 summed over x, y, z as the array code sums it; with ``focal`` > 0 (by
    projected size) it is ``d2 / max((r f)^2, 1e-30)`` (see the stage).
    ``lod`` (N,) int32 is every object's LOD, updated for the listed ones; ``slot`` is
    scratch of N. ``model`` (N, 4, 4) row-major is written transposed (GL column-major)
    into ``instances[:, :16]``, ``color`` into ``[:, 16:20]``.
    """
    levels = up2.shape[0] + 1
    slots = ranges.shape[0]
    counts = np.zeros(slots, np.int64)  # a few entries: the one allocation per frame
    for k in range(count):
        i = order[k]
        m = mesh[i]
        rx, ry, rz = bounds[i, 0] - viewer[0], bounds[i, 1] - viewer[1], bounds[i, 2] - viewer[2]
        measure = np.float32(0.0) + rx * rx + ry * ry + rz * rz
        if focal > 0:
            rf = bounds[i, 3] * focal
            measure = measure / max(rf * rf, np.float32(1e-30))
        lo, hi = 0, 0
        for level in range(levels - 1):
            lo += measure >= up2[level, m]
            hi += measure >= down2[level, m]
        chosen = min(max(lod[i], lo), hi)
        lod[i] = chosen
        s = table[m * levels + chosen]
        slot[k] = s
        counts[s] += 1
    start = 0
    for s in range(slots):  # counts become each slot's next free row
        ranges[s, 0] = start
        ranges[s, 1] = counts[s]
        counts[s] = start
        start += ranges[s, 1]
    flat = model.reshape(model.shape[0], 16)
    for k in range(count):
        row = counts[slot[k]]
        counts[slot[k]] = row + 1
        out, m4 = instances[row], flat[order[k]]
        for c in range(4):
            out[4 * c] = m4[c]
            out[4 * c + 1] = m4[4 + c]
            out[4 * c + 2] = m4[8 + c]
            out[4 * c + 3] = m4[12 + c]
        rgba = color[order[k]]
        for j in range(4):
            out[16 + j] = rgba[j]
