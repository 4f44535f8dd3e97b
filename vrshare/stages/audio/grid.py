"""The regular direction grid the HRTF bank is stored on, and lookup into it.

Directions are in the head frame (OpenXR: +X right, +Y up, -Z forward). The grid
has :data:`N_EL` elevation rows (-90..90 deg) by :data:`N_AZ` azimuth columns
(0..355 deg, measured from the front towards the right), :data:`STEP_DEG` apart;
row ``e``, column ``a`` is entry ``e * N_AZ + a``. Measured HRTFs are interpolated
onto it once at setup (see :mod:`.hrtf`); at run time every source's filter is the
bilinear blend of the four grid entries around its direction, found by arithmetic
alone (:class:`Locator`), so the per-block lookup costs a few element-wise
operations for all sources together.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

STEP_DEG = 5.0  # grid spacing in azimuth and elevation (deg)
N_AZ = int(round(360 / STEP_DEG))  # 72 columns
N_EL = int(round(180 / STEP_DEG)) + 1  # 37 rows, both poles included
SIZE = N_AZ * N_EL
_STEP = np.deg2rad(STEP_DEG)


def directions() -> np.ndarray:
    """Unit vectors of every grid entry, (SIZE, 3) float64, in entry order."""
    el = np.deg2rad(np.arange(N_EL) * STEP_DEG - 90.0)[:, None]
    az = np.deg2rad(np.arange(N_AZ) * STEP_DEG)[None, :]
    d = np.stack(np.broadcast_arrays(np.sin(az) * np.cos(el), np.sin(el), -np.cos(az) * np.cos(el)),
                 axis=-1)
    return d.reshape(SIZE, 3)


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
        self.cell = xp.zeros(count, np.int64)
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
