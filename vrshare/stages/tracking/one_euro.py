"""The 1€ filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over devices.

A first-order low-pass whose cutoff rises with speed: at rest it smooths hard (low
jitter), in fast motion it follows closely (low lag). Per new sample of a device,
with ``dt`` the time since its previous sample (s)::

    alpha(fc) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx   = (x - x_hat_prev) / dt                      # raw speed
    dx_hat = alpha(d_cutoff) * dx + (1 - alpha(d_cutoff)) * dx_hat_prev
    fc   = min_cutoff + beta * |dx_hat|
    x_hat = alpha(fc) * x + (1 - alpha(fc)) * x_hat_prev

The speed is taken against the previous *filtered* value, as in the algorithm's
published pseudo-code (the authors' first reference code differed by using the
previous raw value; the two differ only in the speed that sets the cutoff).

Position is filtered as a 3-vector (one cutoff per device, from the speed's norm).
Orientation is filtered on the rotation manifold: the "difference" is the rotation
vector from the previous estimate to the new sample, the speed an angular velocity
(rad/s), and the blend a slerp by ``alpha``, so the output is always a unit
quaternion and never takes the long way round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vrshare.config import check_ranges, setting
from vrshare.geometry import quat


@dataclass(frozen=True)
class OneEuroParams:
    """Tuning of one quantity: cutoffs in Hz, ``beta`` in 1/(unit of the speed)."""

    min_cutoff: float = setting(1.0, gt=0, unit="Hz")  # the cutoff at rest
    beta: float = setting(0.0, ge=0)  # cutoff gain per unit speed (per m/s or per rad/s)
    d_cutoff: float = setting(1.0, gt=0, unit="Hz")  # the cutoff of the speed estimate

    def __post_init__(self) -> None:
        check_ranges(self)


def smoothing(cutoff: Any, dt: Any) -> Any:
    """The exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """1€ filters of ``devices`` poses (position and orientation), updated with a mask.

    State lives in arrays of the given array module; :meth:`update` filters the
    devices whose ``mask`` is set and leaves the others as they were.
    """

    def __init__(self, xp: Any, devices: int, position: OneEuroParams,
                 orientation: OneEuroParams) -> None:
        self.xp = xp
        self.position = position
        self.orientation = orientation
        self.pos = xp.zeros((devices, 3))
        self.quat = xp.zeros((devices, 4))
        self.quat[:, 3] = 1.0
        self.dpos = xp.zeros((devices, 3))  # filtered velocity (m/s)
        self.drot = xp.zeros((devices, 3))  # filtered angular velocity (rad/s, world frame)
        self.t = xp.zeros(devices)
        self.started = xp.zeros(devices, dtype=bool)

    def reset(self, mask: Any) -> None:
        """Forget the history of the masked devices; their next sample passes unfiltered."""
        self.started &= ~mask

    def update(self, mask: Any, t: Any, pos: Any, q: Any) -> None:
        """Filter new samples (``t`` s, ``pos`` m, unit ``q``) of the masked devices."""
        xp = self.xp
        first = mask & ~self.started
        step = mask & self.started
        dt = xp.where(step, t - self.t, 1.0)
        dt = xp.maximum(dt, 1e-6)[:, None]

        p = self.position
        dpos = (pos - self.pos) / dt
        dpos = self.dpos + smoothing(p.d_cutoff, dt) * (dpos - self.dpos)
        cutoff = p.min_cutoff + p.beta * xp.linalg.norm(dpos, axis=-1, keepdims=True)
        new_pos = self.pos + smoothing(cutoff, dt) * (pos - self.pos)

        o = self.orientation
        drot = quat.relative_rotvec(q, self.quat) / dt
        drot = self.drot + smoothing(o.d_cutoff, dt) * (drot - self.drot)
        cutoff = o.min_cutoff + o.beta * xp.linalg.norm(drot, axis=-1, keepdims=True)
        new_quat = quat.normalize(quat.slerp(self.quat, q, smoothing(cutoff, dt)))

        s = step[:, None]
        f = first[:, None]
        self.pos[...] = xp.where(s, new_pos, xp.where(f, pos, self.pos))
        self.quat[...] = xp.where(s, new_quat, xp.where(f, q, self.quat))
        self.dpos[...] = xp.where(s, dpos, xp.where(f, 0.0, self.dpos))
        self.drot[...] = xp.where(s, drot, xp.where(f, 0.0, self.drot))
        self.t[...] = xp.where(mask, t, self.t)
        self.started |= mask
