"""Pose prediction: extrapolate each device's recent samples to a future time.

Every predictor keeps a short history of samples per device (newest first) and
answers "where will each device be ``h`` seconds after its newest sample?".
Orientation is extrapolated with world-frame angular velocity: a rotation vector
``r`` turns the newest orientation ``q0`` into ``exp(r) * q0``.

* ``none``: the newest sample, held.
* ``constant_velocity``: the velocity (and angular velocity) between the two newest
  samples, held for ``h``. Exact for constant (angular) velocity.
* ``constant_acceleration``: a quadratic through the three newest samples (for
  orientation: angular velocity and its rate of change). Exact for constant
  acceleration (and for a rotation about a fixed axis with constant angular
  acceleration).

The learned predictor lives in :mod:`.learned` on the same history.
"""

from __future__ import annotations

from typing import Any

from vrshare.geometry import quat


class History:
    """The last ``size`` samples of each device, newest first, in arrays of ``xp``.

    Each sample's row also holds the velocity from the sample before it (linear m/s
    and world-frame angular rad/s), worked out once when the sample arrives rather
    than for every prediction: :attr:`rates` ``[D, size, 2, 3]``, entry ``j`` the
    velocity over the interval between samples ``j+1`` and ``j``, zero unless both
    exist.
    """

    def __init__(self, xp: Any, devices: int, size: int) -> None:
        self.xp = xp
        self.size = size
        # one row per sample, [t, px, py, pz, qx, qy, qz, qw, vx, vy, vz, wx, wy, wz],
        # so a push is one shift
        self.samples = xp.zeros((devices, size, 14))
        self.t = self.samples[..., 0]  # s
        self.pos = self.samples[..., 1:4]  # m
        self.quat = self.samples[..., 4:8]
        self.quat[..., 3] = 1.0
        self.rates = self.samples[..., 8:].reshape(devices, size, 2, 3)  # a view
        # views of the newest sample, made once (a slice costs as much as the arithmetic)
        self.newest = self.samples[:, 0, 1:8]  # pose [D, 7]
        self.t0, self.pos0, self.quat0 = self.t[:, 0], self.pos[:, 0], self.quat[:, 0]
        self.rate0 = self.rates[:, 0]  # [D, 2, 3]
        self._all_rates = self.samples[..., 8:]
        self.count = xp.zeros(devices, dtype=xp.int64)  # valid samples held, <= size
        self.step = xp.zeros((devices, 2, 3))  # last push: position (m), rotation vector (rad)
        self._step_pos, self._step_rot = self.step[:, 0], self.step[:, 1]
        self._steps = self.step.reshape(devices, 6)  # (contiguous: a view on any module)
        self.dt = xp.zeros(devices)  # last push: time since the previous newest sample (s)
        self._later = xp.arange(1, size)  # interval j needs more than j + 1 samples
        self._incoming = xp.zeros((devices, 1, 14))  # the row a push puts in front
        self._in_sample = self._incoming[:, 0, :8]
        self._in_rates = self._incoming[:, 0, 8:]  # [D, 6]: linear, angular
        self._older = self.samples[:, :-1]

    def push(self, mask: Any, t: Any, pos: Any, q: Any) -> None:
        """Add a sample for each masked device (``t`` s, ``pos`` m, unit ``q``).

        With ``size`` > 1 it also sets :attr:`step` and :attr:`dt`, the motion from the
        previous newest sample (meaningful for masked devices that had one).
        """
        xp = self.xp
        xp.concatenate([t[:, None], pos, q], axis=1, out=self._in_sample)
        if self.size > 1:  # (rates stay 0 while no intervals are kept)
            dt = self.dt
            xp.subtract(t, self.t0, out=dt)
            xp.subtract(pos, self.pos0, out=self._step_pos)
            self._step_rot[...] = quat.relative_rotvec(q, self.quat0)
            # step / dt (step / 1 s over no time); 0 without a previous sample (step / inf)
            span = xp.where(self.count >= 1, xp.where(dt > 0, dt, 1.0), xp.inf)
            xp.divide(self._steps, span[:, None], out=self._in_rates)
        shifted = xp.concatenate([self._incoming, self._older], axis=1)
        xp.copyto(self.samples, shifted, where=mask[:, None, None])
        self.count += mask & (self.count < self.size)

    def reset(self, mask: Any) -> None:
        """Forget the masked devices' samples (after a loss, velocities are meaningless)."""
        xp = self.xp
        xp.copyto(self.count, 0, where=mask)
        xp.copyto(self._all_rates, 0.0, where=mask[:, None, None])

    def velocities(self, k: int) -> tuple[Any, Any, Any]:
        """Linear (m/s) and world-frame angular (rad/s) velocities between the ``k+1`` newest.

        Returns ``(vel [D, k, 3], omega [D, k, 3], ok [D, k])``: entry ``j`` is the
        velocity over the interval between samples ``j+1`` and ``j`` (zero unless
        ``ok``, i.e. both samples exist).
        """
        ok = self._later[None, :k] < self.count[:, None]
        return self.samples[:, :k, 8:11], self.samples[:, :k, 11:14], ok


class Predictor:
    """Base predictor: holds the newest sample (the ``none`` method)."""

    name = "none"
    history_size = 1

    def __init__(self, xp: Any, devices: int, history_size: int | None = None) -> None:
        self.xp = xp
        self.history = History(xp, devices, max(history_size or 0, self.history_size))

    def observe(self, mask: Any, t: Any, pos: Any, q: Any) -> None:
        """Take new (filtered) samples of the masked devices."""
        self.history.push(mask, t, pos, q)

    def reset(self, mask: Any) -> None:
        self.history.reset(mask)

    def horizon(self, target_t: Any, max_h: float) -> Any:
        """Seconds from each device's newest sample to ``target_t``, clamped to ``[0, max_h]``."""
        xp = self.xp
        return xp.minimum(xp.maximum(target_t - self.history.t0, 0.0), max_h)

    def predict(self, target_t: Any, max_h: float, pos_out: Any, quat_out: Any) -> Any:
        """Poses of all devices at ``target_t`` (s) into ``pos_out`` [D, 3] and ``quat_out`` [D, 4].

        The horizon after each device's newest sample is clamped to ``[0, max_h]``, so a
        held device is extrapolated at most ``max_h`` seconds. Returns the horizons used.
        """
        pos_out[...] = self.history.pos0
        quat_out[...] = self.history.quat0
        return self.horizon(target_t, max_h)


class Extrapolator(Predictor):
    """A predictor that moves the newest sample by a :meth:`displacement` over the horizon."""

    def displacement(self, h: Any) -> tuple[Any, Any]:
        """Position change (m) and world rotation vector (rad) over ``h`` ``[D]`` seconds."""
        raise NotImplementedError

    def predict(self, target_t: Any, max_h: float, pos_out: Any, quat_out: Any) -> Any:
        xp = self.xp
        hist = self.history
        h = self.horizon(target_t, max_h)
        dp, dr = self.displacement(h)
        xp.add(hist.pos0, dp, out=pos_out)
        # a product of unit quaternions, unit to rounding: the newest sample's is (the
        # gate and the filter renormalise), and this result is never fed back
        quat_out[...] = quat.multiply(quat.from_rotvec(dr), hist.quat0)
        return h


class ConstantVelocity(Extrapolator):
    name = "constant_velocity"
    history_size = 2

    def displacement(self, h: Any) -> tuple[Any, Any]:
        d = self.history.rate0 * h[:, None, None]  # D, 2, 3
        return d[:, 0], d[:, 1]


class ConstantAcceleration(Extrapolator):
    """Quadratic extrapolation; falls back to constant velocity with only two samples."""

    name = "constant_acceleration"
    history_size = 3

    def displacement(self, h: Any) -> tuple[Any, Any]:
        xp = self.xp
        hist = self.history
        vel, omega, ok = self.history.velocities(2)
        dt0 = hist.t[:, 0] - hist.t[:, 1]
        dt1 = hist.t[:, 1] - hist.t[:, 2]
        span = xp.where(ok[:, 1], 0.5 * (dt0 + dt1), 1.0)[:, None]
        have = ok[:, 1:2]
        hh = h[:, None]
        half0 = 0.5 * dt0[:, None]
        out = []
        for v in (vel, omega):
            # v[:, j] is the mean velocity over interval j, i.e. the velocity at its midpoint
            acc = xp.where(have, (v[:, 0] - v[:, 1]) / span, 0.0)
            v_now = v[:, 0] + acc * half0
            out.append(v_now * hh + 0.5 * acc * hh * hh)
        return out[0], out[1]


METHODS: dict[str, type[Predictor]] = {
    cls.name: cls for cls in (Predictor, ConstantVelocity, ConstantAcceleration)
}
