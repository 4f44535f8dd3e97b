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

    ``idx`` (S, 4) integer entries and ``weights`` (S, 4) float32 summing to 1.
    """
    xp = array_module(unit)
    x, y, z = unit[:, 0], unit[:, 1], unit[:, 2]
    fa = xp.mod(xp.arctan2(x, -z), 2 * np.pi) / _STEP
    fe = (xp.arcsin(xp.clip(y, -1.0, 1.0)) + np.pi / 2) / _STEP
    a0 = xp.floor(fa)
    e0 = xp.clip(xp.floor(fe), 0, N_EL - 2)
    ta = (fa - a0).astype(np.float32)
    te = xp.clip(fe - e0, 0.0, 1.0).astype(np.float32)
    a0 = a0.astype(np.int64) % N_AZ
    a1 = (a0 + 1) % N_AZ
    r0 = e0.astype(np.int64) * N_AZ
    r1 = r0 + N_AZ
    idx[:, 0] = r0 + a0
    idx[:, 1] = r0 + a1
    idx[:, 2] = r1 + a0
    idx[:, 3] = r1 + a1
    weights[:, 0] = (1 - ta) * (1 - te)
    weights[:, 1] = ta * (1 - te)
    weights[:, 2] = (1 - ta) * te
    weights[:, 3] = ta * te
