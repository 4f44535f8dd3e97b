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
        self.was_valid = xp.zeros(devices, dtype=bool)
        # the last accepted row's pose and time, in the raw rows' layout, so one masked
        # copy takes both
        self.accepted = xp.zeros((devices, 8))
        self.pose = self.accepted[:, :7]
        self.t_good = self.accepted[:, 7]  # time of the last accepted row
        self.t_good[...] = -xp.inf
        # the checks passed so far, one row per level: all rows, finite, within reach,
        # unit quaternion, in time order; a rejection is a step down between two levels,
        # so each rejected row is counted once, under the first check it failed
        self._levels = xp.ones((len(KINDS), devices), dtype=bool)
        self._finite, self._near, self._unit, self._ordered = self._levels[1:]
        self._above, self._below = self._levels[:-1], self._levels[1:]
        self._steps, self._lost = self.counts[:-1], self.counts[-1]
        self._pose_q = self.pose[:, 3:]
        self._sq = xp.zeros((devices, 7))  # squared pose components
        self._sq_p, self._sq_q = self._sq[:, :3], self._sq[:, 3:]
        self._raw: Any = None  # the rows the views below were made of

    def _views(self, raw: Any) -> tuple[Any, Any, Any, Any]:
        """Time, valid flag, pose and time, pose of ``raw`` (made once per rows array)."""
        if raw is not self._raw:
            self._raw = raw
            self._cols = raw[:, 7], raw[:, 8], raw[:, :8], raw[:, :7]
        return self._cols

    def check(self, raw: Any) -> Any:
        """Accept mask ``[D]`` for ``raw`` ``[D, 9]``; accepted poses are in :attr:`pose`."""
        xp = self.xp
        t, valid, values, pose = self._views(raw)
        flag = valid > 0.5
        new = flag & (t != self.t_seen)
        xp.isfinite(values).all(axis=1, out=self._finite)
        # NaN and infinity pass through the sums quietly; the levels drop those rows first.
        # bool a > b is a & ~b: passed the level before and not this check
        xp.multiply(pose, pose, out=self._sq)
        xp.greater(self._finite, self._sq_p.sum(axis=1) > self.max_distance ** 2,
                   out=self._near)
        norm = xp.sqrt(self._sq_q.sum(axis=1))
        xp.greater(self._near, xp.abs(norm - 1.0) > self.tol, out=self._unit)
        xp.greater(self._unit, t < self.t_good, out=self._ordered)
        self._steps += (self._above > self._below) & new  # nonfinite .. time_backwards
        self._lost += self.was_valid > flag  # valid before, not now
        accept = new & self._ordered
        self.was_valid[...] = flag
        xp.copyto(self.t_seen, t, where=new)
        xp.copyto(self.accepted, values, where=accept[:, None])
        self._pose_q /= xp.where(accept, norm, 1.0)[:, None]  # renormalised when accepted
        return accept
