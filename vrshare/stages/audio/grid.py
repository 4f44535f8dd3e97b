"""The regular direction grid the HRTF bank is stored on, and lookup into it.

Directions are in the head frame (OpenXR: +X right, +Y up, -Z forward). The grid
has :data:`N_EL` elevation rows (-90..90 deg) by :data:`N_AZ` azimuth columns
(0..355 deg, measured from the front towards the right), :data:`STEP_DEG` apart;
row ``e``, column ``a`` is entry ``e * N_AZ + a``. Measured HRTFs are interpolated
onto it once at setup (see :mod:`.hrtf`); at run time every source's filter is the
bilinear blend of the four grid entries around its direction, found by arithmetic
alone (:class:`Locator`), so the per-block lookup costs a few element-wise
operations for all sources together.

Measured directions are brought onto the grid by :func:`interpolation_weights`:
every grid entry is a convex blend (weights >= 0, summing to 1) of the measurements
whose spherical triangle (a face of the convex hull of their unit vectors) contains
it, with barycentric weights from the gnomonic (ray-plane) intersection; a measured
direction takes its measurement alone. Hull faces through the centre or spanning a
gap (the cap under an upper-hemisphere set, joining opposite sides of the head) are
not used: a direction outside the measured cap keeps its azimuth, hence its lateral
side, and takes the nearest covered direction on its meridian (the nearest ring's
neighbours at that azimuth), never a blend across the head.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ...errors import require

STEP_DEG = 5.0  # grid spacing in azimuth and elevation (deg)
N_AZ = int(round(360 / STEP_DEG))  # 72 columns
N_EL = int(round(180 / STEP_DEG)) + 1  # 37 rows, both poles included
SIZE = N_AZ * N_EL
_STEP = np.deg2rad(STEP_DEG)


def directions() -> np.ndarray:
    """Unit vectors of every grid entry, (SIZE, 3) float64, in entry order."""
    el = np.deg2rad(np.arange(N_EL) * STEP_DEG - 90.0)[:, None]
    az = np.deg2rad(np.arange(N_AZ) * STEP_DEG)[None, :]
    return _unit(az, el).reshape(SIZE, 3)


class Locator:
    """Bilinear grid neighbours of ``count`` directions at a time.

    Every array it needs is allocated here, on ``xp``'s device; a call is a fixed
    number of element-wise operations written into them (no allocation), which
    keeps the per-block cost low for a handful of sources as for hundreds.
    """

    def __init__(self, xp: ModuleType, count: int) -> None:
        self.pos = xp.zeros((count, 2), np.float32)  # (row, column) grid coordinates
        self.lo = xp.zeros((count, 2), np.float32)  # the cell's lower corner
        self.pair = xp.zeros((count, 2, 2), np.float32)  # per coordinate: 1 - frac, frac
        self.across = xp.zeros(count, np.float32)
        self.flat = xp.zeros(count, np.float32)  # cell number, row * 2 N_AZ + column
        self.cell = xp.zeros(count, np.int64)  # after a call: each cell number, which fixes idx
        self.idx = xp.zeros((count, 4), np.int64)
        self.weights = xp.zeros((count, 4), np.float32)
        # elevation 0 is row 18; azimuth shifted by a full turn to stay positive
        self.offset = xp.asarray([N_EL // 2, N_AZ], np.float32)
        self.last = xp.asarray([N_EL - 2, np.inf], np.float32)  # top row: the cell below it
        self.stride = xp.asarray([2 * N_AZ, 1], np.float32)
        self.corners = xp.asarray(_corners())
        self.xp = xp
        # NumPy buffers ``take(out=...)`` unless told indices are in range (they are)
        self._take_kw = {"mode": "clip"} if xp is np else {}

    def __call__(self, unit: Any) -> tuple[Any, Any]:
        """Entries ``idx`` (S, 4) and weights (S, 4) summing to 1 for unit vectors (S, 3).

        Corner order: (e0, a0), (e0, a1), (e1, a0), (e1, a1). The arrays returned
        are this locator's own, overwritten by the next call.
        """
        xp, pos = self.xp, self.pos
        x, y, z = unit[:, 0], unit[:, 1], unit[:, 2]
        xp.hypot(x, z, out=self.across)
        xp.arctan2(y, self.across, out=pos[:, 0])  # elevation
        xp.negative(z, out=self.across)
        xp.arctan2(x, self.across, out=pos[:, 1])  # azimuth, from the front towards +X
        pos *= 1.0 / _STEP
        pos += self.offset
        xp.floor(pos, out=self.lo)
        xp.minimum(self.lo, self.last, out=self.lo)
        xp.subtract(pos, self.lo, out=self.pair[:, :, 1])
        xp.subtract(1.0, self.pair[:, :, 1], out=self.pair[:, :, 0])
        xp.multiply(self.pair[:, 0, :, None], self.pair[:, 1, None, :],
                    out=self.weights.reshape(-1, 2, 2))
        xp.matmul(self.lo, self.stride, out=self.flat)  # exact: small whole numbers
        self.cell[...] = self.flat
        xp.take(self.corners, self.cell, axis=0, out=self.idx, **self._take_kw)
        return self.idx, self.weights


def _corners() -> np.ndarray:
    """The four entries of every cell, (N_EL - 1) * 2 N_AZ rows of (e0a0, e0a1, e1a0, e1a1).

    A cell is numbered ``row * 2 N_AZ + column`` with its column in 0..2 N_AZ - 1
    (the locator's azimuth coordinate runs over N_AZ / 2..3 N_AZ / 2), wrapped onto
    the grid's N_AZ columns here.
    """
    row = np.arange(N_EL - 1)[:, None, None]
    col = np.arange(2 * N_AZ)[None, :, None]
    e = row + np.array([0, 0, 1, 1])
    a = (col + np.array([0, 1, 0, 1])) % N_AZ
    return (e * N_AZ + a).reshape(-1, 4).astype(np.int64)


# -- interpolating measured directions onto the grid -----------------------------------

EXACT_RAD = 1e-6  # a target this close to a measured direction takes it alone (rad)
INSIDE_EPS = 1e-9  # barycentric coordinates down to -INSIDE_EPS count as inside a face
CAP_EDGE_FACTOR = 3.0  # a hull face with an edge this many times the median spans a gap
MERIDIAN_STEP_DEG = 0.5  # step of the search along a meridian for a measured face
_CHUNK = 512  # targets tested against all faces at a time


def interpolation_weights(measured: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Convex weights of ``measured`` unit vectors (M, 3) for ``targets`` (G, 3).

    Returns ``idx`` (G, 3) int64 and ``w`` (G, 3) float64 (``w >= 0``, rows summing
    to 1): target ``g`` is ``sum_j w[g, j] * measured[idx[g, j]]`` in the sense of a
    blend of their responses. Any frame will do as long as both share it (elevation
    and azimuth, for the fallbacks, are taken in the head frame: +Y up, -Z front).

    - A target within :data:`EXACT_RAD` of a measured direction takes that one alone.
    - Otherwise the measured directions are triangulated (``scipy.spatial.ConvexHull``
      of the unit vectors) and the target takes the barycentric weights of the face
      its ray passes through (gnomonic projection: ``V λ = d`` with all three ``λ``
      >= 0; weights ``λ / sum λ``). Faces that pass through (or behind) the centre,
      and faces spanning a gap in the measurements (an edge longer than
      :data:`CAP_EDGE_FACTOR` times the median edge of the triangulation,
      e.g. the cap closing the bottom of an upper-hemisphere set, which joins
      directions on opposite sides of the head) are not used.
    - A target outside every usable face (below the lowest measured ring, say) keeps
      its azimuth and so its lateral side: it takes the weights of the nearest
      direction on its own meridian (same azimuth, elevation stepped by
      :data:`MERIDIAN_STEP_DEG`) that a usable face covers, i.e. a blend of the
      nearest ring's two neighbours at that azimuth, never of directions across the
      head.
    - With no usable face at all (fewer than 4 directions, or all in one plane, as a
      horizontal-plane set), the measured directions are grouped into rings of equal
      elevation, and a target blends the two directions of the ring nearest in
      elevation that bracket its azimuth (linearly in azimuth).
    """
    measured = np.asarray(measured, np.float64)
    targets = np.asarray(targets, np.float64)
    g = len(targets)
    idx = np.zeros((g, 3), np.int64)
    w = np.zeros((g, 3), np.float64)
    done = np.zeros(g, bool)
    cos = np.clip(targets @ measured.T, -1.0, 1.0)
    near = np.argmax(cos, axis=1)
    exact = np.arccos(cos[np.arange(g), near]) <= EXACT_RAD
    idx[exact] = near[exact, None]
    w[exact, 0] = 1.0
    done |= exact
    faces = _usable_faces(measured)
    if faces is not None and not done.all():
        simplices = faces[0]
        todo = np.flatnonzero(~done)
        f, lam = _containing(faces, targets[todo])
        hit = f >= 0
        idx[todo[hit]], w[todo[hit]] = simplices[f[hit]], lam[hit]
        done[todo[hit]] = True
        todo = np.flatnonzero(~done)
        if len(todo):
            f_idx, f_w, found = _along_meridian(faces, targets[todo])
            idx[todo[found]], w[todo[found]] = f_idx[found], f_w[found]
            done[todo[found]] = True
    if not done.all():
        todo = np.flatnonzero(~done)
        idx[todo], w[todo] = _ring_weights(measured, targets[todo])
    w = np.clip(w, 0.0, None)
    return idx, w / w.sum(axis=1, keepdims=True)


def _usable_faces(measured: np.ndarray):
    """The usable hull faces: vertex indices (F, 3), inverse vertex matrices (F, 3, 3),
    centroid directions (F, 3) and the cosine of their circumscribing caps (F,)."""
    if len(measured) < 4:
        return None
    spatial = require("scipy.spatial", "audio", "interpolating HRTF directions")
    try:
        hull = spatial.ConvexHull(measured)
    except spatial.QhullError:  # all in one plane (a horizontal-plane set, for instance)
        return None
    simplices = hull.simplices.astype(np.int64)
    verts = measured[simplices]  # (F, 3 vertices, 3 coords)
    # plane offset: a face through or behind the centre is not a direction patch
    normal = np.cross(verts[:, 1] - verts[:, 0], verts[:, 2] - verts[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
    offset = np.abs(np.sum(normal * verts[:, 0], axis=1))
    ends = verts[:, [1, 2, 0]]
    edge = np.degrees(np.arccos(np.clip(np.sum(verts * ends, axis=2), -1, 1)))  # (F, 3)
    limit = CAP_EDGE_FACTOR * float(np.median(edge))
    keep = (offset > 1e-6) & (edge.max(axis=1) <= limit)
    keep &= np.abs(np.linalg.det(verts)) > 1e-12
    if not keep.any():
        return None
    simplices, verts = simplices[keep], verts[keep]
    inverse = np.linalg.inv(verts.transpose(0, 2, 1))  # columns: vertices
    centre = verts.sum(axis=1)
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    cos_radius = np.min(np.sum(verts * centre[:, None], axis=2), axis=1) - 1e-9
    return simplices, inverse, centre, cos_radius


def _containing(faces: tuple, d: np.ndarray):
    """The face (or -1) whose cone contains each direction, and its weights (N, 3).

    Only faces whose circumscribing cap (around their centroid) holds the direction
    are tested, so the cost grows with the number of directions, not with
    directions times faces.
    """
    _, inverse, centre, cos_radius = faces
    face = np.full(len(d), -1, np.int64)
    lam = np.zeros((len(d), 3), np.float64)
    for s in range(0, len(d), _CHUNK):
        part = d[s:s + _CHUNK]
        rows, cols = np.nonzero(part @ centre.T >= cos_radius)
        if not len(rows):
            continue
        b = np.einsum("pij,pj->pi", inverse[cols], part[rows])  # barycentric, unnormalised
        total = b.sum(axis=1)
        inside = (total > 0) & np.all(b >= -INSIDE_EPS * np.maximum(total, 1)[:, None], axis=1)
        rows, cols, b, total = rows[inside], cols[inside], b[inside], total[inside]
        # two faces share an edge: the nearest plane along the ray (largest total)
        order = np.lexsort((-total, rows))
        first = order[np.unique(rows[order], return_index=True)[1]]
        face[s + rows[first]] = cols[first]
        lam[s + rows[first]] = b[first] / total[first, None]
    return face, lam


def _az_el(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head-frame azimuth (from the front towards +X) and elevation, rad."""
    return (np.arctan2(d[:, 0], -d[:, 2]),
            np.arctan2(d[:, 1], np.hypot(d[:, 0], d[:, 2])))


def _unit(az: np.ndarray, el: np.ndarray) -> np.ndarray:
    """Head-frame unit vectors of azimuths and elevations (rad, broadcast together)."""
    return np.stack(np.broadcast_arrays(np.sin(az) * np.cos(el), np.sin(el),
                                        -np.cos(az) * np.cos(el)), axis=-1)


def _along_meridian(faces: tuple, d: np.ndarray):
    """For each direction, the weights of the nearest covered one at its azimuth."""
    az, el = _az_el(d)
    merid, which = np.unique(np.round(az, 9), return_inverse=True)
    steps = np.deg2rad(np.arange(-90.0, 90.0 + 1e-9, MERIDIAN_STEP_DEG))  # (K,)
    cand = _unit(np.repeat(merid[:, None], len(steps), axis=1),
                 np.broadcast_to(steps, (len(merid), len(steps))))
    f, lam = _containing(faces, cand.reshape(-1, 3))
    f, lam = f.reshape(len(merid), -1), lam.reshape(len(merid), -1, 3)
    covered = f[which] >= 0  # (N, K)
    dist = np.where(covered, np.abs(steps[None, :] - el[:, None]), np.inf)
    best = np.argmin(dist, axis=1)
    found = np.isfinite(dist[np.arange(len(d)), best])
    idx = np.where(found[:, None], faces[0][np.maximum(f[which, best], 0)], 0)
    w = np.where(found[:, None], lam[which, best], 0.0)
    return idx, w, found


def _ring_weights(measured: np.ndarray, d: np.ndarray):
    """Blend of the two bracketing directions (in azimuth) on the nearest ring."""
    m_az, m_el = _az_el(measured)
    rings = np.round(np.degrees(m_el) * 2) / 2  # rings of equal elevation, to 0.5 deg
    levels = np.unique(rings)
    az, el = _az_el(d)
    ring = levels[np.argmin(np.abs(np.degrees(el)[:, None] - levels[None, :]), axis=1)]
    idx = np.zeros((len(d), 3), np.int64)
    w = np.zeros((len(d), 3), np.float64)
    for level in np.unique(ring):
        members = np.flatnonzero(rings == level)
        order = members[np.argsort(m_az[members])]
        ring_az = m_az[order]
        rows = np.flatnonzero(ring == level)
        if len(order) == 1:
            idx[rows] = order[0]
            w[rows, 0] = 1.0
            continue
        # the ring's neighbours before and after each target's azimuth, cyclically
        after = np.searchsorted(ring_az, az[rows]) % len(order)
        before = (after - 1) % len(order)
        a0, a1 = ring_az[before], ring_az[after]
        span = (a1 - a0) % (2 * np.pi)
        span = np.where(span == 0, 2 * np.pi, span)
        t = ((az[rows] - a0) % (2 * np.pi)) / span
        idx[rows, 0], idx[rows, 1], idx[rows, 2] = order[before], order[after], order[after]
        w[rows, 0], w[rows, 1] = 1 - t, t
    return idx, w
