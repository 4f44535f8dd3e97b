"""A small learned pose predictor whose weights are shared by every tracked device.

Model: the displacement over a horizon ``h`` along one axis is a linear function of
that axis's last ``K`` velocities (the pose deltas between consecutive samples,
divided by their time steps)::

    d(h) = sum_k  a_k * h * v_k  +  b_k * (h^2 / tau) * v_k          (tau = 20 ms)

with one weight vector ``[a_1..a_K, b_1..b_K]`` for position and one for orientation
(world-frame angular velocity), shared by all three axes and all devices. Starting
from ``a_1 = 1`` (constant velocity) it can learn to smooth the velocity over several
samples and to damp or boost the extrapolation with the horizon.

It needs no pretraining: each :meth:`LearnedPredictor.predict` is remembered, and
when a sample at or after the predicted time arrives, the true pose at that time is
interpolated between the two samples that bracket it, and the weights take a
recursive-least-squares step. The learner keeps the information form of RLS, a
``2k x 2k`` matrix ``R`` and vector ``r`` per model::

    R <- lam R + (1 - lam) R0 + sum phi phi^T,   r <- lam r + (1 - lam) R0 w0 + sum phi y
    w  = R^-1 r

with ``lam = forgetting`` per frame that matured predictions, ``R0 = I / prior`` and
``w0`` the starting weights. That is exponentially weighted least squares with a
ridge pull toward ``w0``, which keeps ``R`` well conditioned while a device rests,
and each step costs one small ``2k x 2k`` solve however many predictions matured.
With ``solve_every = N`` (``LearnedPredictor``'s argument, the stage's setting) ``R``
and ``r`` still take every step, but ``w`` is solved for on every ``N``-th step only:
the weights are then the exact fit of all steps up to at most ``N - 1`` steps ago,
and the solve, the largest single cost of a frame, runs ``1/N`` as often.
Everything is array code on the weights' array module, with fixed shapes (matured
predictions are selected by masks, not by indexing), so it runs on CuPy without
host round trips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vrshare.backend import to_host
from vrshare.geometry import quat

from .predict import Extrapolator

TAU = 0.02  # s, scale of the h^2 features (keeps both halves of the weights near 1)
UNITS = 1000.0  # the regression runs in mm and mrad so its prior is scale-sensible
MODELS = 2  # 0: position, 1: orientation
OUTLIER = 1000.0  # mm or mrad per axis: larger true displacements are not learned from


def initial_weights(k: int) -> np.ndarray:
    """Constant velocity: ``a_1 = 1``, everything else 0; shape ``(2, 2k)`` float64."""
    w = np.zeros((MODELS, 2 * k))
    w[:, 0] = 1.0
    return w


def save_weights(path: str | Path, weights: Any, info: Any) -> Path:
    """Write the shared weights (and the learner's information matrix) to ``.npz``."""
    path = Path(path)
    np.savez(path, weights=to_host(weights, label="predictor_weights"),
             info=to_host(info, label="predictor_info"))
    return path


def load_weights(path: str | Path, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Read weights saved by :func:`save_weights`; checks they fit ``k`` past deltas.

    Returns the weights and the information matrix (None if the file has none).
    """
    path = Path(path)
    try:
        with np.load(path) as f:
            weights = np.asarray(f["weights"], dtype=np.float64)
            info = np.asarray(f["info"], dtype=np.float64) if "info" in f else None
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: predictor weights file not found") from None
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a predictor weights file ({exc})") from None
    if weights.shape != (MODELS, 2 * k):
        raise ValueError(f"{path}: weights have shape {weights.shape}, expected "
                         f"{(MODELS, 2 * k)} for history_k={k}")
    if info is not None and info.shape != (MODELS, 2 * k, 2 * k):
        raise ValueError(f"{path}: information matrix has shape {info.shape}, expected "
                         f"{(MODELS, 2 * k, 2 * k)}")
    return weights, info


class LearnedPredictor(Extrapolator):
    """Shared-weight linear predictor over the last ``k`` deltas, adapted online (RLS).

    ``weights`` ``(2, 2k)`` is updated in place: pass a bank ``param`` buffer so every
    reader sees the adapted weights. ``prior`` is the prior variance of the weights
    (how far, in weight units, the first examples may move them); ``info`` resumes a
    learner saved with :meth:`save`; ``queue`` bounds the predictions awaiting their
    true pose per device.
    """

    name = "learned"

    def __init__(self, xp: Any, devices: int, weights: Any, *, k: int = 8,
                 forgetting: float = 0.999, prior: float = 1.0, info: Any = None,
                 queue: int = 8, learn: bool = True, solve_every: int = 1) -> None:
        if k < 1:
            raise ValueError(f"history_k must be >= 1, got {k}")
        if not 0 < forgetting <= 1:
            raise ValueError(f"forgetting must be in (0, 1], got {forgetting}")
        if tuple(weights.shape) != (MODELS, 2 * k):
            raise ValueError(f"weights have shape {tuple(weights.shape)}, expected "
                             f"{(MODELS, 2 * k)}")
        if solve_every < 1:
            raise ValueError(f"solve_every must be >= 1, got {solve_every}")
        super().__init__(xp, devices, k + 1)
        self.k = k
        self.weights = weights
        self.forgetting = forgetting
        self.learn = learn
        self.solve_every = solve_every
        self._unsolved = 0  # learning steps since the weights were last solved for
        if prior <= 0:
            raise ValueError(f"prior must be > 0, got {prior}")
        f = 2 * k
        # R and r side by side, [R | r], so one product of the rows [phi | y] with
        # themselves updates both (the bottom row, sums of y^2, is not used)
        self._gram0 = xp.zeros((MODELS, f + 1, f + 1))
        self._gram0[:, :f, :f] = xp.eye(f) / prior  # R0
        self._gram0[:, :f, f] = weights / prior  # R0 w0
        self._gram = self._gram0.copy()
        if info is not None:
            self._gram[:, :f, :f] = xp.asarray(info)
            self._gram[:, :f, f] = (self._gram[:, :f, :f] @ weights[:, :, None])[..., 0]
        self.info = self._gram[:, :f, :f]  # R
        self.rhs = self._gram[:, :f, f]  # r, so that R^-1 r = w
        # horizon features h * v and (h^2 / tau) * v, in mm and mrad
        self._power = xp.asarray([1.0, 2.0])
        self._scale = xp.asarray([UNITS, UNITS / TAU])
        self._phi = xp.zeros((devices, MODELS, 3, f))
        # predictions awaiting their true pose, model axis first so the learning step's
        # rows are one reshape away
        self.p_t = xp.zeros((devices, queue))  # predicted-for times (s)
        self.p_used = xp.zeros((devices, queue), dtype=bool)
        # rows [phi | y]: features when predicting, target once it is known
        self.p_rows = xp.zeros((MODELS, devices, queue, 3, f + 1))
        self.p_pos = xp.zeros((devices, queue, 3))  # newest sample when predicting
        self.p_conj = xp.zeros((devices, queue, 4))  # and its orientation's inverse
        self._slot = 0
        self.updates = xp.zeros((), dtype=xp.int64)  # matured predictions learned from
        # views made once: a slice costs as much as the arithmetic on these few numbers
        hist = self.history
        self._phi_halves = self._phi.reshape(devices, MODELS, 3, 2, k)  # h and h^2 halves
        self._rates_k = hist.rates[:, :k].transpose(0, 2, 3, 1)[:, :, :, None]  # D,2,3,1,k
        self._weight_cols = weights[None, :, :, None]
        self._slot_phi = [self.p_rows[:, :, i, :, :-1] for i in range(queue)]
        self._y = self.p_rows[..., -1]  # 2, D, Q, 3
        self._y_pos, self._y_rot = self._y
        self._rows = self.p_rows.reshape(MODELS, -1, f + 1)
        self._t1 = hist.t[:, 1:2]  # the sample before the newest
        self._pos1, self._quat1 = hist.pos[:, None, 1], hist.quat[:, None, 1]
        self._step_pos, self._step_rot = hist.step[:, None, 0], hist.step[:, None, 1]
        self._solution = self.rhs[..., None]

    # -- prediction ------------------------------------------------------------------

    def features(self, h: Any) -> Any:
        """Regression inputs ``[D, 2, 3, 2k]`` for horizons ``h`` ``[D]`` (s), in mm / mrad."""
        coef = (h[:, None] ** self._power) * self._scale  # D, 2: h, h^2 / tau
        self.xp.multiply(self._rates_k, coef[:, None, None, :, None], out=self._phi_halves)
        return self._phi

    def displacement(self, h: Any) -> tuple[Any, Any]:
        self.features(h)
        d = (self._phi @ self._weight_cols)[..., 0] / UNITS  # D, 2, 3
        return d[:, 0], d[:, 1]

    def predict(self, target_t: Any, max_h: float, pos_out: Any, quat_out: Any) -> Any:
        h = super().predict(target_t, max_h, pos_out, quat_out)
        if self.learn:
            hist = self.history
            i = self._slot
            self._slot = (i + 1) % self.p_t.shape[1]
            self.p_used[:, i] = (h > 0) & (hist.count >= 2)
            self.p_t[:, i] = hist.t0 + h
            self._slot_phi[i][...] = self.xp.swapaxes(self._phi, 0, 1)
            self.p_pos[:, i] = hist.pos0
            self.p_conj[:, i] = quat.conjugate(hist.quat0)
        return h

    # -- learning ----------------------------------------------------------------------

    def observe(self, mask: Any, t: Any, pos: Any, q: Any) -> None:
        super().observe(mask, t, pos, q)
        if self.learn:
            self._learn(mask, t)

    def reset(self, mask: Any) -> None:
        super().reset(mask)
        self.p_used &= ~mask[:, None]

    def _learn(self, mask: Any, t: Any) -> None:
        """Score the predictions whose time has come and take one RLS step on them.

        Runs after the new samples were pushed: for a masked device, history entry 1
        is the sample before, and :attr:`History.step` the motion since.
        """
        xp = self.xp
        hist = self.history
        t_prev = self._t1
        have = (mask & (hist.count >= 2) & (hist.dt > 0))[:, None]
        due = self.p_used & have & (self.p_t <= t[:, None])
        ripe = due & (self.p_t >= t_prev)  # bracketed by the previous sample and this one
        self.p_used &= ~due
        span = xp.where(have, hist.dt[:, None], 1.0)
        u = ((self.p_t - t_prev) / span)[..., None]  # D, Q, 1
        # targets: the true displacement from the newest sample of the time (mm, mrad),
        # the true pose interpolated between the samples around it (slerp in rotation)
        xp.multiply(self._pos1 - self.p_pos + u * self._step_pos, UNITS, out=self._y_pos)
        turn = quat.multiply(quat.from_rotvec(u * self._step_rot),
                             quat.multiply(self._quat1, self.p_conj))
        xp.multiply(quat.to_rotvec(turn), UNITS, out=self._y_rot)
        # learn from plausible motion only: one wild sample must not wreck the shared weights
        ripe &= (xp.abs(self._y) < OUTLIER).all(axis=(0, 3))
        rows = xp.where(ripe[None, :, :, None, None], self.p_rows, 0.0)
        n = xp.count_nonzero(ripe)
        self._rls(rows.reshape(self._rows.shape), n)
        self.updates += n

    def _rls(self, rows: Any, n: Any) -> None:
        """One information-form RLS step on rows ``[phi | y]`` ``[2, M, F + 1]``.

        All-zero rows (predictions not due) add nothing; forgetting applies only when
        ``n`` > 0 rows are real. ``R`` and ``r`` take every step; the weights ``R^-1 r``
        are solved for on every ``solve_every``-th step (and kept in between).
        """
        xp = self.xp
        lam = self.forgetting ** (n > 0)
        gram = self._gram
        gram *= lam
        gram += (1 - lam) * self._gram0
        gram += xp.ascontiguousarray(xp.swapaxes(rows, 1, 2)) @ rows  # (a BLAS product)
        self._unsolved += 1
        if self._unsolved == self.solve_every:
            self._unsolved = 0
            self.solve()

    def solve(self) -> None:
        """Set the shared weights to ``R^-1 r``, the least-squares fit of every step so far."""
        self.weights[...] = self.xp.linalg.solve(self.info, self._solution)[..., 0]

    def save(self, path: str | Path) -> Path:
        """Save the shared weights and information matrix (``.npz``) for a later run.

        Steps not yet solved for (``solve_every`` > 1) are solved for first, so that the
        weights saved are the fit of the information saved.
        """
        if self._unsolved:
            self._unsolved = 0
            self.solve()
        return save_weights(path, self.weights, self.info)
