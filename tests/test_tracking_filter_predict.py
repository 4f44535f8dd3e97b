"""The 1€ filter against its published definition; predictors on known motions."""

import math

import numpy as np
import pytest

from vrshare import WeightBank
from vrshare.geometry import quat
from vrshare.stages.tracking import learned
from vrshare.stages.tracking.one_euro import OneEuroFilter, OneEuroParams
from vrshare.stages.tracking.predict import METHODS


def one_euro_reference(xs, ts, min_cutoff, beta, d_cutoff):
    """Scalar 1€ filter transcribed from Casiez et al. (CHI 2012) and its pseudo-code."""

    def alpha(cutoff, te):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    out = []
    x_hat = dx_hat = t_prev = None
    for x, t in zip(xs, ts, strict=True):
        if x_hat is None:
            x_hat, dx_hat = x, 0.0
        else:
            te = t - t_prev
            dx = (x - x_hat) / te
            dx_hat = alpha(d_cutoff, te) * dx + (1 - alpha(d_cutoff, te)) * dx_hat
            cutoff = min_cutoff + beta * abs(dx_hat)
            x_hat = alpha(cutoff, te) * x + (1 - alpha(cutoff, te)) * x_hat
        t_prev = t
        out.append(x_hat)
    return np.array(out)


def irregular_times(n, seed):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.uniform(0.008, 0.02, n))


@pytest.mark.parametrize("params", [(1.0, 0.0, 1.0), (0.5, 2.0, 1.5), (3.0, 0.7, 0.8)])
def test_position_filter_matches_published_definition(params):
    """One axis moving per device: the vector filter reduces to the scalar one."""
    n = 300
    ts = irregular_times(n, 1)
    rng = np.random.default_rng(2)
    signals = np.cumsum(rng.normal(0, 0.01, (3, n)), axis=1) + np.sin(ts * 3)[None]
    p = OneEuroParams(*params)
    f = OneEuroFilter(np, 3, p, OneEuroParams())
    got = np.zeros((3, n))
    ident = np.tile([0, 0, 0, 1.0], (3, 1))
    for i in range(n):
        pos = np.zeros((3, 3))
        for d in range(3):
            pos[d, d] = signals[d, i]  # device d moves along axis d only
        f.update(np.ones(3, bool), np.full(3, ts[i]), pos, ident)
        got[:, i] = f.pos[np.arange(3), np.arange(3)]
    for d in range(3):
        np.testing.assert_allclose(got[d], one_euro_reference(signals[d], ts, *params),
                                   rtol=1e-10, atol=1e-12)


def test_orientation_filter_on_a_fixed_axis_is_the_scalar_filter_on_the_angle():
    """On the rotation manifold, a rotation about one axis filters like its angle."""
    n = 300
    ts = irregular_times(n, 3)
    angle = 1.2 * np.sin(2.0 * ts) + np.random.default_rng(4).normal(0, 0.01, n)
    axis = np.array([0.3, -0.8, 0.52])
    axis /= np.linalg.norm(axis)
    params = (0.8, 0.5, 1.2)
    f = OneEuroFilter(np, 1, OneEuroParams(), OneEuroParams(*params))
    got = []
    for i in range(n):
        q = quat.from_rotvec(axis * angle[i])[None]
        f.update(np.ones(1, bool), ts[i:i + 1], np.zeros((1, 3)), q)
        assert abs(np.linalg.norm(f.quat[0]) - 1) < 1e-12
        got.append(quat.to_rotvec(f.quat[0]) @ axis)
    np.testing.assert_allclose(got, one_euro_reference(angle, ts, *params), atol=1e-9)


def test_filter_leaves_unmasked_devices_alone_and_resets():
    f = OneEuroFilter(np, 2, OneEuroParams(1.0), OneEuroParams(1.0))
    q = np.tile([0, 0, 0, 1.0], (2, 1))
    f.update(np.array([True, True]), np.array([0.0, 0.0]), np.ones((2, 3)), q)
    f.update(np.array([True, False]), np.array([0.01, 0.01]), np.full((2, 3), 2.0), q)
    assert 1.0 < f.pos[0, 0] < 2.0
    assert f.pos[1, 0] == 1.0
    f.reset(np.array([True, False]))
    f.update(np.array([True, False]), np.array([0.02, 0.02]), np.full((2, 3), 5.0), q)
    assert f.pos[0, 0] == 5.0  # first sample after a reset passes unfiltered


def test_resetting_one_device_leaves_a_device_without_samples_unstarted():
    """A device that has had no sample yet takes its first one unfiltered, whatever other
    devices' resets happened before (a reset only forgets the masked devices)."""
    f = OneEuroFilter(np, 2, OneEuroParams(1.0), OneEuroParams(1.0))
    q = np.tile([0, 0, 0, 1.0], (2, 1))
    f.update(np.array([True, False]), np.zeros(2), np.ones((2, 3)), q)
    np.testing.assert_array_equal(f.pos[1], [0.0, 0.0, 0.0])  # unmasked: left as it was
    f.reset(np.array([True, False]))
    f.update(np.array([False, True]), np.full(2, 0.01), np.full((2, 3), 3.0), q)
    np.testing.assert_array_equal(f.pos[1], [3.0, 3.0, 3.0])


def test_a_reset_device_restarts_like_a_new_filter_and_the_others_go_on():
    """After a reset a device forgets its estimate and its speeds (a fresh filter fed the
    same samples gives the same output); the devices not reset stay filtered, also
    after a frame in which they had no sample."""
    params = OneEuroParams(0.5, 2.0, 1.5)
    f = OneEuroFilter(np, 2, params, params)
    for k in range(5):  # fast motion: large speed estimates on both devices
        f.update(np.ones(2, bool), np.full(2, 0.01 * k), np.full((2, 3), 0.1 * k),
                 quat.from_rotvec(np.full((2, 3), 0.2 * k)))
    f.reset(np.array([True, False]))
    fresh = OneEuroFilter(np, 1, params, params)
    samples = [(0.1, 2.0, 1.0, [True, False]), (0.11, 2.05, 1.1, [True, True]),
               (0.12, 2.1, 1.2, [True, True])]
    for t, x, angle, mask in samples:
        pos = np.full((2, 3), x)
        q = quat.from_rotvec(np.tile([0.0, angle, 0.0], (2, 1)))
        before = f.pos[1].copy()
        f.update(np.array(mask), np.full(2, t), pos, q)
        fresh.update(np.ones(1, bool), np.full(1, t), pos[:1], q[:1])
        np.testing.assert_allclose(f.pos[0], fresh.pos[0], atol=1e-12)
        np.testing.assert_allclose(f.quat[0], fresh.quat[0], atol=1e-12)
        if mask[1]:  # device 1: filtered, so strictly between its last estimate and x
            assert np.all((before < f.pos[1]) & (f.pos[1] < x))


def test_each_device_is_filtered_on_its_own_speed():
    """With beta > 0 the cutoff follows each device's own speed: filtering devices
    together gives what filtering each alone gives."""
    rng = np.random.default_rng(11)
    ts = irregular_times(30, 3)
    params = OneEuroParams(0.5, 2.0, 1.5)
    pos = np.cumsum(rng.normal(0, 0.02, (30, 3, 3)), axis=0) * np.array([1, 5, 20])[:, None]
    rots = np.cumsum(rng.normal(0, 0.05, (30, 3, 3)), axis=0) * np.array([1, 5, 20])[:, None]
    qs = quat.from_rotvec(rots)

    def run(devices):
        f = OneEuroFilter(np, len(devices), params, params)
        for k, t in enumerate(ts):
            f.update(np.ones(len(devices), bool), np.full(len(devices), t),
                     pos[k, devices], qs[k, devices])
        return f.pos, f.quat

    together_p, together_q = run([0, 1, 2])
    for d in range(3):
        alone_p, alone_q = run([d])
        np.testing.assert_allclose(together_p[d], alone_p[0], atol=1e-12)
        np.testing.assert_allclose(together_q[d], alone_q[0], atol=1e-12)


def test_bad_filter_params_raise():
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroParams(min_cutoff=0.0)
    with pytest.raises(ValueError):
        OneEuroParams(beta=-1.0)


# -- model-based predictors -------------------------------------------------------------

def feed(pred, times, positions, quats):
    mask = np.ones(positions.shape[1], bool)
    for i, t in enumerate(times):
        pred.observe(mask, np.full(len(mask), t), positions[i], quats[i])


def motion(times, v, a, omega, alpha):
    """Positions p0 + v t + a t^2/2 and rotations about fixed axes, angle w t + al t^2/2."""
    t = times[:, None, None]
    p0 = np.array([[0.1, 1.6, -0.2], [-0.2, 1.1, -0.3], [0.2, 1.1, -0.3]])
    pos = p0[None] + v[None] * t + 0.5 * a[None] * t * t
    rv = omega[None] * t + 0.5 * alpha[None] * t * t
    base = quat.from_rotvec(np.array([[0.1, 0.2, 0.3], [0.0, 1.0, 0.0], [-0.5, 0.1, 0.0]]))
    return pos, quat.multiply(quat.from_rotvec(rv), base[None])


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_constant_velocity_is_exact_on_constant_velocity_motion(rng):
    times = np.cumsum(rng.uniform(0.009, 0.014, 12))
    v, omega = rng.normal(0, 1, (3, 3)), rng.normal(0, 2, (3, 3))
    pos, q = motion(times, v, np.zeros((3, 3)), omega, np.zeros((3, 3)))
    for name in ("constant_velocity", "constant_acceleration"):
        pred = METHODS[name](np, 3)
        feed(pred, times, pos, q)
        target = times[-1] + 0.045
        out_p, out_q = np.zeros((3, 3)), np.zeros((3, 4))
        h = pred.predict(target, 0.1, out_p, out_q)
        np.testing.assert_allclose(h, 0.045)
        tp, tq = motion(np.array([target]), v, np.zeros((3, 3)), omega, np.zeros((3, 3)))
        np.testing.assert_allclose(out_p, tp[0], atol=1e-12)
        assert all(np.abs(np.abs(np.sum(out_q * tq[0], axis=1)) - 1) < 1e-12)


def test_constant_acceleration_is_exact_on_constant_acceleration(rng):
    times = np.cumsum(rng.uniform(0.009, 0.014, 5))
    v, a = rng.normal(0, 1, (3, 3)), rng.normal(0, 5, (3, 3))
    axes = rng.normal(0, 1, (3, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    omega, alpha = axes * 1.5, axes * 4.0  # fixed axis per device
    pos, q = motion(times, v, a, omega, alpha)
    pred = METHODS["constant_acceleration"](np, 3)
    feed(pred, times, pos, q)
    target = times[-1] + 0.03
    out_p, out_q = np.zeros((3, 3)), np.zeros((3, 4))
    pred.predict(target, 0.1, out_p, out_q)
    tp, tq = motion(np.array([target]), v, a, omega, alpha)
    np.testing.assert_allclose(out_p, tp[0], atol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(out_q * tq[0], axis=1)), 1.0, atol=1e-10)


def test_constant_acceleration_with_two_samples_is_constant_velocity(rng):
    """Until a third sample arrives there is no acceleration to estimate: the quadratic
    predictor extrapolates exactly as the constant-velocity one does."""
    times = np.array([0.5, 0.511])
    v, a = rng.normal(0, 1, (3, 3)), rng.normal(0, 5, (3, 3))
    omega, alpha = rng.normal(0, 2, (3, 3)), rng.normal(0, 5, (3, 3))
    pos, q = motion(times, v, a, omega, alpha)
    outputs = []
    for name in ("constant_velocity", "constant_acceleration"):
        pred = METHODS[name](np, 3)
        feed(pred, times, pos, q)
        out_p, out_q = np.zeros((3, 3)), np.zeros((3, 4))
        pred.predict(times[-1] + 0.04, 0.1, out_p, out_q)
        outputs.append((out_p, out_q))
    (cv_p, cv_q), (ca_p, ca_q) = outputs
    np.testing.assert_allclose(ca_p, cv_p, atol=1e-12)
    np.testing.assert_allclose(ca_q, cv_q, atol=1e-12)
    v_est = (pos[1] - pos[0]) / (times[1] - times[0])  # and that is the measured velocity
    np.testing.assert_allclose(cv_p, pos[1] + 0.04 * v_est, atol=1e-12)


@pytest.mark.parametrize("name", ["none", "constant_velocity", "constant_acceleration"])
def test_a_predictor_without_samples_holds_the_origin_at_rest(name):
    out_p, out_q = np.full((3, 3), 9.0), np.zeros((3, 4))
    METHODS[name](np, 3).predict(0.5, 0.1, out_p, out_q)
    np.testing.assert_array_equal(out_p, 0.0)
    np.testing.assert_array_equal(out_q, np.tile([0.0, 0.0, 0.0, 1.0], (3, 1)))


def test_two_samples_at_one_time_give_finite_predictions(rng):
    times = np.array([0.2, 0.2, 0.21])
    pos, q = motion(times, rng.normal(0, 1, (3, 3)), np.zeros((3, 3)),
                    rng.normal(0, 1, (3, 3)), np.zeros((3, 3)))
    pos[1] += 0.01  # a jump with no time between
    for name in ("constant_velocity", "constant_acceleration"):
        pred = METHODS[name](np, 3)
        feed(pred, times, pos, q)
        out_p, out_q = np.zeros((3, 3)), np.zeros((3, 4))
        pred.predict(0.25, 0.1, out_p, out_q)
        assert np.isfinite(out_p).all() and np.isfinite(out_q).all(), name


def make_predictor(name):
    if name == "learned":  # weights on every past velocity, so stale ones would show
        w = np.random.default_rng(2).uniform(0.1, 0.5, (2, 8))
        return learned.LearnedPredictor(np, 3, w, k=4, learn=False)
    return METHODS[name](np, 3)


@pytest.mark.parametrize("name", [*METHODS, "learned"])
def test_a_reset_predictor_predicts_like_a_new_one(name, rng):
    """After a loss the history is forgotten: velocities from before it must not leak
    into predictions made from the samples that follow."""
    times = np.cumsum(rng.uniform(0.009, 0.014, 8))
    pos, q = motion(times, rng.normal(0, 3, (3, 3)), rng.normal(0, 9, (3, 3)),
                    rng.normal(0, 4, (3, 3)), np.zeros((3, 3)))
    used = make_predictor(name)
    feed(used, times[:5], pos[:5], q[:5])
    used.reset(np.ones(3, bool))
    fresh = make_predictor(name)
    outputs = []
    for pred in (used, fresh):
        feed(pred, times[5:], pos[5:], q[5:])
        out_p, out_q = np.zeros((3, 3)), np.zeros((3, 4))
        pred.predict(times[-1] + 0.03, 0.1, out_p, out_q)
        outputs.append((out_p, out_q))
    np.testing.assert_allclose(outputs[0][0], outputs[1][0], atol=1e-12)
    np.testing.assert_allclose(outputs[0][1], outputs[1][1], atol=1e-12)


def test_none_holds_and_horizon_is_clamped(rng):
    times = np.array([0.0, 0.01, 0.02])
    v = np.ones((3, 3))
    pos, q = motion(times, v, np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 3)))
    hold = METHODS["none"](np, 3)
    cv = METHODS["constant_velocity"](np, 3)
    for p in (hold, cv):
        feed(p, times, pos, q)
    out_p, out_q = np.zeros((3, 3)), np.zeros((3, 4))
    hold.predict(1.0, 0.05, out_p, out_q)
    np.testing.assert_allclose(out_p, pos[-1])
    h = cv.predict(1.0, 0.05, out_p, out_q)  # 0.98 s ahead, clamped to 50 ms
    np.testing.assert_allclose(h, 0.05)
    np.testing.assert_allclose(out_p, pos[-1] + 0.05 * v, atol=1e-12)


# -- the learned, shared-weight predictor --------------------------------------------------

def stationary_motion(t):
    """A stationary (not constant-velocity) motion: sums of sinusoids, per device phase."""
    phase = np.array([0.0, 1.0, 2.5])[:, None]
    ph = t + phase
    pos = np.stack([0.08 * np.sin(2.1 * ph) + 0.03 * np.sin(5.3 * ph),
                    0.02 * np.sin(3.7 * ph), 0.05 * np.cos(1.7 * ph)], axis=-1)
    rv = np.stack([0.3 * np.sin(1.9 * ph), 0.6 * np.sin(1.3 * ph) + 0.2 * np.sin(4.1 * ph),
                   0.1 * np.cos(2.9 * ph)], axis=-1)
    return pos, quat.from_rotvec(rv)


def run_online(pred, seconds, rate=90.0, horizon=0.05):
    """Stream the motion; returns per-step mean position error (mm) of the predictions."""
    errs = []
    mask = np.ones(3, bool)
    out_p, out_q = np.zeros((3, 3)), np.zeros((3, 4))
    for k in range(int(seconds * rate)):
        t = k / rate
        pos, q = stationary_motion(np.full(1, t))
        pred.observe(mask, np.full(3, t), pos[:, 0], q[:, 0])
        pred.predict(np.full(3, t + horizon), 1.0, out_p, out_q)
        true_p, _ = stationary_motion(np.full(1, t + horizon))
        errs.append(np.linalg.norm(out_p - true_p[:, 0], axis=1).mean() * 1e3)
    return np.array(errs)


def test_learned_predictor_error_falls_as_it_adapts_and_weights_are_shared():
    bank = WeightBank()
    w = bank.param("predictor_weights", learned.initial_weights(6))
    pred = learned.LearnedPredictor(np, 3, w, k=6, queue=12)
    errs = run_online(pred, 8.0)
    early, late = errs[10:100].mean(), errs[-180:].mean()
    cv_errs = run_online(METHODS["constant_velocity"](np, 3), 8.0)
    assert late < 0.4 * early
    assert late < 0.4 * cv_errs[-180:].mean()
    assert bank["predictor_weights"] is w  # the bank's buffer was adapted in place
    assert not np.array_equal(w, learned.initial_weights(6))
    assert int(pred.updates) > 3 * 600  # every device's matured predictions trained the one model


def test_learned_starts_as_constant_velocity():
    w = learned.initial_weights(4)
    a = run_online(learned.LearnedPredictor(np, 3, w, k=4, learn=False), 2.0)
    b = run_online(METHODS["constant_velocity"](np, 3), 2.0)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_weights_save_and_load(tmp_path):
    w = learned.initial_weights(4)
    pred = learned.LearnedPredictor(np, 3, w, k=4)
    run_online(pred, 3.0)
    path = pred.save(tmp_path / "w.npz")
    loaded, info = learned.load_weights(path, 4)
    np.testing.assert_array_equal(loaded, pred.weights)
    np.testing.assert_array_equal(info, pred.info)
    resumed = learned.LearnedPredictor(np, 3, loaded.copy(), k=4, info=info)
    np.testing.assert_allclose(np.linalg.solve(resumed.info, resumed.rhs[..., None])[..., 0],
                               pred.weights, atol=1e-9)
    with pytest.raises(ValueError, match="history_k=5"):
        learned.load_weights(path, 5)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        learned.load_weights(tmp_path / "bad.npz", 4)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        learned.load_weights(tmp_path / "missing.npz", 4)


def test_learned_weights_are_the_forgetting_weighted_least_squares_fit_to_every_step():
    # after steps s = 1..S of rows [phi | y], the weights minimise, per model,
    #   (w - w0)' R0 (w - w0) + sum_s lambda^(S - s) |y_s - phi_s w|^2,  R0 = I / prior:
    # the prior is kept whole, older steps fade; a step with no rows changes nothing
    rng = np.random.default_rng(8)
    k, lam, prior = 3, 0.8, 2.0
    w0 = learned.initial_weights(k)
    f = w0.shape[1]
    pred = learned.LearnedPredictor(np, 1, w0.copy(), k=k, forgetting=lam, prior=prior)
    steps = [rng.normal(size=(learned.MODELS, 5, f + 1)) for _ in range(6)]
    for s, rows in enumerate(steps):
        pred._rls(rows, np.int64(5))
        if s == 2:
            before = pred.weights.copy()
            pred._rls(np.zeros_like(rows), np.int64(0))  # nothing matured this frame
            np.testing.assert_array_equal(pred.weights, before)
    for m in range(learned.MODELS):
        a = np.eye(f) / prior
        b = w0[m] / prior
        for s, rows in enumerate(steps):
            weight = lam ** (len(steps) - 1 - s)
            phi, y = rows[m, :, :f], rows[m, :, f]
            a = a + weight * phi.T @ phi
            b = b + weight * phi.T @ y
        np.testing.assert_allclose(pred.weights[m], np.linalg.solve(a, b), rtol=1e-10)


def test_learned_predictor_checks_its_arguments_at_their_bounds():
    w = learned.initial_weights
    learned.LearnedPredictor(np, 1, w(1), k=1, forgetting=1.0)  # the smallest history, no fading
    bad = [({"k": 0}, w(1), "history_k must be >= 1, got 0"),
           ({"forgetting": 0.0}, w(8), "forgetting must be in (0, 1], got 0.0"),
           ({"forgetting": 1.5}, w(8), "forgetting must be in (0, 1], got 1.5"),
           ({"k": 3}, w(4), r"weights have shape (2, 8), expected (2, 6)"),
           ({"prior": 0.0}, w(8), "prior must be > 0, got 0.0"),
           ({"solve_every": 0}, w(8), "solve_every must be >= 1, got 0")]
    for kwargs, weights, message in bad:
        with pytest.raises(ValueError) as err:
            learned.LearnedPredictor(np, 1, weights, **kwargs)
        assert str(err.value) == message
