"""The learned predictor against a reference written one prediction at a time.

The reference keeps, per device, a list of the samples since its last reset and a ring
of pending predictions, and applies the documented rules one by one: a prediction is
learned from when a sample at or after its time arrives with the sample before it at or
before that time (the true pose is interpolated between the two, slerp in rotation),
unless the true displacement is an outlier; a prediction whose time passed while its
device was not observed is dropped; the RLS step forgets only when something was learned.
The times lie on a grid of 2^-7 s, so a prediction can fall exactly on a sample.
"""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vrshare import backend
from vrshare.stages.tracking import learned

GRID = 2.0 ** -7  # s: sums of grid times are exact in float64


def rotvec_between(q_to, q_from):
    """World-frame rotation vector turning ``q_from`` into ``q_to`` (rad)."""
    return (Rotation.from_quat(q_to) * Rotation.from_quat(q_from).inv()).as_rotvec()


class Reference:
    """One device-and-prediction at a time; units: s, m, rad; features in mm and mrad."""

    def __init__(self, devices, k, queue, forgetting, prior, w0):
        self.k, self.queue, self.lam = k, queue, forgetting
        self.samples = [[] for _ in range(devices)]  # newest first: (t, pos, quat)
        self.pending = [[None] * queue for _ in range(devices)]
        self.slot = 0
        f = 2 * k
        self.gram0 = np.zeros((learned.MODELS, f, f + 1))
        self.gram0[:, :, :f] = np.eye(f) / prior
        self.gram0[:, :, f] = w0 / prior
        self.gram = self.gram0.copy()
        self.weights = w0.copy()
        self.updates = 0

    def rates(self, d):
        """Velocities over the ``k`` newest intervals ``[k, 2, 3]`` (m/s, rad/s), 0 if absent."""
        s = self.samples[d]
        out = np.zeros((self.k, 2, 3))
        for j in range(min(self.k, len(s) - 1)):
            (t0, p0, q0), (t1, p1, q1) = s[j], s[j + 1]
            span = t0 - t1 if t0 > t1 else 1.0
            out[j] = [(p0 - p1) / span, rotvec_between(q0, q1) / span]
        return out

    def features(self, d, h):
        """``[2, 3, 2k]``: ``h v_j`` then ``(h^2 / tau) v_j`` per model and axis (mm, mrad)."""
        v = self.rates(d).transpose(1, 2, 0)  # model, axis, interval
        return np.concatenate([h * v, h * h / learned.TAU * v], axis=-1) * learned.UNITS

    def predict(self, target, max_h):
        for d, s in enumerate(self.samples):
            t0, p0, q0 = s[0] if s else (None, None, None)
            h = min(max(target[d] - t0, 0.0), max_h) if s else 0.0
            usable = len(s) >= 2 and h > 0
            self.pending[d][self.slot] = ((t0 + h, self.features(d, h), p0, q0)
                                          if usable else None)
        self.slot = (self.slot + 1) % self.queue

    def observe(self, mask, t, pos, q):
        rows = []
        for d in np.flatnonzero(mask):
            s = self.samples[d]
            s.insert(0, (t[d], pos[d].copy(), q[d].copy()))
            del s[self.k + 1:]
            if len(s) < 2 or s[0][0] <= s[1][0]:
                continue  # no step to interpolate along: predictions wait
            (t1, p1, q1), (t0, p0, q0) = s[0], s[1]
            for i, p in enumerate(self.pending[d]):
                if p is None or p[0] > t1:
                    continue
                self.pending[d][i] = None  # due: learned from or dropped
                p_t, phi, p_pos, p_quat = p
                if p_t < t0:
                    continue  # its time passed unobserved
                u = (p_t - t0) / (t1 - t0)
                y_pos = p0 + u * (p1 - p0) - p_pos
                turn = Rotation.from_rotvec(u * rotvec_between(q1, q0)) * Rotation.from_quat(q0)
                y_rot = (turn * Rotation.from_quat(p_quat).inv()).as_rotvec()
                y = np.stack([y_pos, y_rot]) * learned.UNITS  # model, axis
                if np.all(np.abs(y) < learned.OUTLIER):
                    rows.append(np.concatenate([phi, y[..., None]], axis=-1))
        lam = self.lam if rows else 1.0
        self.gram = lam * self.gram + (1 - lam) * self.gram0
        for r in rows:  # [2, 3, 2k + 1]
            self.gram += np.einsum("mai,maj->mij", r[..., :-1], r)
        self.updates += len(rows)
        f = 2 * self.k
        self.weights = np.linalg.solve(self.gram[:, :, :f], self.gram[:, :, f:])[..., 0]

    def reset(self, mask):
        for d in np.flatnonzero(mask):
            self.samples[d] = []
            self.pending[d] = [None] * self.queue


def motion(rng, devices, frames):
    """Grid times (some repeated), smooth motion with rare jumps of over a metre or radian."""
    steps = rng.choice([0, 1, 1, 1, 2], size=(frames, devices))
    t = np.cumsum(steps, axis=0) * GRID
    pos = np.cumsum(rng.normal(0.0, 0.004, (frames, devices, 3)), axis=0)
    rv = np.cumsum(rng.normal(0.0, 0.01, (frames, devices, 3)), axis=0)
    jumps = rng.random((2, frames, devices)) < 0.015  # in position, in rotation
    pos[jumps[0]] += rng.choice([-1.5, 1.5], size=(jumps[0].sum(), 3))
    rv_jump = np.zeros_like(rv)
    rv_jump[jumps[1]] = rng.choice([-1.2, 1.2], size=(jumps[1].sum(), 3))
    quat = Rotation.from_rotvec((rv + np.cumsum(rv_jump, axis=0)).reshape(-1, 3))
    return t, pos, quat.as_quat().reshape(frames, devices, 4)


@pytest.mark.parametrize("devices, k, queue, forgetting, seed", [
    (1, 2, 3, 0.9, 1),  # one device: frames where exactly one prediction matures
    (3, 3, 4, 0.8, 2),
    (4, 1, 2, 1.0, 3),  # no fading, the smallest history, a queue that overflows
])
def test_learning_matches_the_reference_frame_by_frame(devices, k, queue, forgetting, seed):
    rng = np.random.default_rng(seed)
    frames = 400
    t, pos, q = motion(rng, devices, frames)
    w0 = learned.initial_weights(k)
    prior = 0.5
    pred = learned.LearnedPredictor(np, devices, w0.copy(), k=k, forgetting=forgetting,
                                    prior=prior, queue=queue)
    ref = Reference(devices, k, queue, forgetting, prior, w0)
    out_p, out_q = np.zeros((devices, 3)), np.zeros((devices, 4))
    max_h = 5 * GRID
    # repeated timestamps (no step to learn along) must not divide by zero either
    with np.errstate(all="raise"):
        for n in range(frames):
            resets = rng.random(devices) < 0.03
            if resets.any():
                pred.reset(resets)
                ref.reset(resets)
            mask = rng.random(devices) < 0.8
            pred.observe(mask, t[n], pos[n], q[n])
            ref.observe(mask, t[n], pos[n], q[n])
            np.testing.assert_allclose(pred.weights, ref.weights, rtol=1e-7, atol=1e-9,
                                       err_msg=f"frame {n}")
            assert int(pred.updates) == ref.updates, f"frame {n}"
            # horizons of 0 (a target in the past), on the grid (due exactly at a later
            # sample) and past max_h (clamped)
            target = t[n] + rng.integers(-2, 8, size=devices) * GRID
            pred.predict(target, max_h, out_p, out_q)
            ref.predict(target, max_h)
    assert ref.updates > 100  # the reference's rules were exercised, not skipped


def test_features_are_h_and_h_squared_over_tau_times_each_velocity():
    rng = np.random.default_rng(4)
    devices, k = 2, 3
    pred = learned.LearnedPredictor(np, devices, learned.initial_weights(k), k=k)
    ref = Reference(devices, k, 8, 0.999, 1.0, learned.initial_weights(k))
    t, pos, q = motion(rng, devices, 6)
    mask = np.ones(devices, bool)
    for n in range(6):
        pred.observe(mask, t[n], pos[n], q[n])
        ref.observe(mask, t[n], pos[n], q[n])
    h = np.array([0.013, 0.031])
    phi = pred.features(h)  # D, model, axis, 2k
    for d in range(devices):
        np.testing.assert_allclose(phi[d], ref.features(d, h[d]), rtol=1e-9, atol=1e-12)
    assert np.abs(phi[..., k:]).max() > 0  # the h^2 half is not all zero here


def test_a_weights_file_is_read_as_float64_with_or_without_its_information_matrix(tmp_path):
    k = 2
    w = learned.initial_weights(k).astype(np.float32)
    info = np.tile(np.eye(2 * k, dtype=np.float32), (learned.MODELS, 1, 1))
    np.savez(tmp_path / "both.npz", weights=w, info=info)
    np.savez(tmp_path / "weights.npz", weights=w)  # written by another tool: no info
    loaded, loaded_info = learned.load_weights(tmp_path / "both.npz", k)
    assert loaded.dtype == loaded_info.dtype == np.float64
    np.testing.assert_array_equal(loaded, w)
    np.testing.assert_array_equal(loaded_info, info)
    loaded, loaded_info = learned.load_weights(tmp_path / "weights.npz", k)
    assert loaded.dtype == np.float64 and loaded_info is None


def test_weights_files_of_another_size_are_refused_with_both_shapes(tmp_path):
    path = tmp_path / "w.npz"
    learned.save_weights(path, learned.initial_weights(3), np.zeros((2, 6, 6)))
    with pytest.raises(ValueError) as err:
        learned.load_weights(path, 4)
    assert str(err.value) == (f"{path}: weights have shape (2, 6), expected (2, 8) for "
                              "history_k=4")
    np.savez(path, weights=learned.initial_weights(3), info=np.zeros((2, 5, 6)))
    with pytest.raises(ValueError) as err:
        learned.load_weights(path, 3)
    assert str(err.value) == (f"{path}: information matrix has shape (2, 5, 6), expected "
                              "(2, 6, 6)")


def test_saving_counts_its_two_host_copies_by_name(tmp_path):
    pred = learned.LearnedPredictor(np, 1, learned.initial_weights(2), k=2)
    backend.transfers.reset()
    pred.save(tmp_path / "w.npz")
    assert backend.transfers.by_label == {"to_host:predictor_weights": 1,
                                          "to_host:predictor_info": 1}
