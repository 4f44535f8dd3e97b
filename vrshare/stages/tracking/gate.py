"""The input gate: which raw samples the tracking stage accepts, and why it rejects.

Raw input per device is one row ``[px, py, pz, qx, qy, qz, qw, t, valid]`` (the
layout of ``target_poses``). A row is a *new sample* when its source marks it valid
and its time differs from the last one seen; a new sample is rejected, and counted
under exactly one reason, when

* ``nonfinite``: a position, quaternion or time component is NaN or infinite;
* ``out_of_range``: the position is farther than ``max_distance`` from the origin
  (finite garbage such as 1e30 would overflow the float32 outputs);
* ``bad_quaternion``: the quaternion's length is off 1 by more than the tolerance
  (a zero quaternion included);
* ``time_backwards``: its time is earlier than the last accepted sample's;

and a device whose source flag drops from valid to invalid counts one ``lost``.
Accepted quaternions are renormalised. The gate keeps no pose: the filter and
predictor hold the last good one.
"""

from __future__ import annotations

from typing import Any

KINDS = ("nonfinite", "out_of_range", "bad_quaternion", "time_backwards", "lost")


class InputGate:
    """Validates raw device rows on the array module ``xp``; counts live on the device."""

    def __init__(self, xp: Any, devices: int, quat_tolerance: float,
                 max_distance: float) -> None:
        if not 0 < quat_tolerance < 1:
            raise ValueError(f"quat_tolerance must be in (0, 1), got {quat_tolerance}")
        if not max_distance > 0:
            raise ValueError(f"max_distance_m must be > 0, got {max_distance}")
        self.xp = xp
        self.tol = quat_tolerance
        self.max_distance = max_distance
        self.counts = xp.zeros((len(KINDS), devices), dtype=xp.int64)
        self.t_seen = xp.full(devices, -xp.inf)  # time of the last new row, good or bad
        self.t_good = xp.full(devices, -xp.inf)  # time of the last accepted row
        self.was_valid = xp.zeros(devices, dtype=bool)
        self.pose = xp.zeros((devices, 7))
        self._events = xp.zeros((len(KINDS), devices), dtype=bool)  # this row's counts

    def check(self, raw: Any) -> Any:
        """Accept mask ``[D]`` for ``raw`` ``[D, 9]``; accepted poses are in :attr:`pose`."""
        xp = self.xp
        pose, t = raw[:, :7], raw[:, 7]
        flag = raw[:, 8] > 0.5
        new = flag & (t != self.t_seen)
        finite = xp.isfinite(raw[:, :8]).all(axis=1)
        clean = xp.where(finite[:, None], pose, 0.0)
        sq = clean * clean
        far = sq[:, :3].sum(axis=1) > self.max_distance ** 2  # (0 where not finite)
        norm = xp.sqrt(sq[:, 3:].sum(axis=1))
        ok = finite & ~far
        bad_q = ok & (xp.abs(norm - 1.0) > self.tol)
        good = ok & ~bad_q
        back = good & (t < self.t_good)
        accept = new & good & ~back
        ev = self._events
        ev[0] = ~finite
        ev[1] = far
        ev[2] = bad_q
        ev[3] = back
        ev &= new
        ev[4] = self.was_valid & ~flag
        self.counts += ev
        self.was_valid[...] = flag
        self.t_seen[...] = xp.where(new, t, self.t_seen)
        self.t_good[...] = xp.where(accept, t, self.t_good)
        clean[:, 3:] /= xp.where(accept, norm, 1.0)[:, None]
        self.pose[...] = xp.where(accept[:, None], clean, self.pose)
        return accept
