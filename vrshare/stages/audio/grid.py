"""The regular direction grid the HRTF bank is stored on, and lookup into it.

Directions are in the head frame (OpenXR: +X right, +Y up, -Z forward). The grid
has :data:`N_EL` elevation rows (-90..90 deg) by :data:`N_AZ` azimuth columns
(0..355 deg, measured from the front towards the right), :data:`STEP_DEG` apart;
row ``e``, column ``a`` is entry ``e * N_AZ + a``. Measured HRTFs are interpolated
onto it once at setup (see :mod:`.hrtf`); at run time every source's filter is the
bilinear blend of the four grid entries around its direction, found by arithmetic
alone, so the per-block lookup costs a few element-wise operations for all sources
together.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from ...backend import array_module

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


def locate(unit: Any, idx: Any, weights: Any) -> None:
    """Bilinear grid neighbours of directions ``unit`` (S, 3), written in place.

    ``idx`` (S, 4) integer entries and ``weights`` (S, 4) float32 summing to 1, in
    the order (row, column) = (e0, a0), (e0, a1), (e1, a0), (e1, a1).
    """
    xp = array_module(unit)
    offset, last, row_step, col_step = _constants(xp)
    # grid coordinates: azimuth shifted positive by a full turn, elevation from the nadir
    az = xp.arctan2(unit[:, 0], -unit[:, 2])
    el = xp.arcsin(xp.clip(unit[:, 1], -1.0, 1.0))
    pos = xp.stack([el, az], axis=1) * (1.0 / _STEP) + offset  # (S, 2): rows, columns
    lo = xp.minimum(xp.floor(pos), last)  # the top row's cell is the one below it
    frac = (pos - lo).astype(np.float32)
    lo = lo.astype(np.int64)
    rows = lo[:, :1] * N_AZ + row_step  # (S, 2): e0, e1 entry bases
    cols = (lo[:, 1:] + col_step) % N_AZ  # (S, 2): a0, a1
    idx[...] = (rows[:, :, None] + cols[:, None, :]).reshape(-1, 4)
    pair = xp.stack([1 - frac, frac], axis=2)  # (S, 2 coords, 2 corners)
    weights[...] = (pair[:, 0, :, None] * pair[:, 1, None, :]).reshape(-1, 4)


@cache
def _constants(xp: ModuleType) -> tuple[Any, ...]:
    """:func:`locate`'s constant vectors on ``xp``'s device (CuPy mixes no NumPy arrays)."""
    return (xp.asarray([N_EL // 2, N_AZ], np.float64),  # elevation 0 is row 18; azimuth > 0
            xp.asarray([N_EL - 2, np.inf]),  # last row whose cell has a row above
            xp.asarray([0, N_AZ], np.int64),  # e0 -> e1
            xp.asarray([0, 1], np.int64))  # a0 -> a1
