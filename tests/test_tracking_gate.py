"""The tracking stage's outputs hold unit quaternions on every path: accepted samples
(renormalised by the gate), predictions, and the held last good sample when a
prediction is rejected."""

from __future__ import annotations

import numpy as np
import pytest

from vrshare import FrameLoop, Pipeline, Stage, StageConfig, VirtualClock, WeightBank
from vrshare.layout import DEVICE_POSES, TARGET_POSES
from vrshare.stages.tracking import TrackingSettings, TrackingStage
from vrshare.stages.tracking.gate import InputGate

LONG = 1.009  # |q| of every raw quaternion: off unit length, inside the 0.01 tolerance


def raw_rows(rng: np.random.Generator, n: int, t: float) -> np.ndarray:
    """``n`` valid rows at time ``t`` with quaternions of length LONG."""
    q = rng.normal(size=(n, 4))
    q *= LONG / np.linalg.norm(q, axis=1, keepdims=True)
    return np.c_[rng.uniform(-1, 1, (n, 3)), q, np.full(n, t), np.ones(n)]


def test_the_gate_renormalises_what_it_accepts_and_keeps_the_last_otherwise():
    rng = np.random.default_rng(0)
    gate = InputGate(np, 3, quat_tolerance=0.01, max_distance=10.0)
    raw = raw_rows(rng, 3, 0.1)
    assert gate.check(raw).all()
    np.testing.assert_allclose(np.linalg.norm(gate.pose[:, 3:], axis=1), 1.0, atol=1e-12)
    kept = gate.pose.copy()
    worse = raw_rows(rng, 3, 0.2)
    worse[:, 3:7] *= 1.05  # outside the tolerance: rejected
    assert not gate.check(worse).any()
    np.testing.assert_array_equal(gate.pose, kept)


@pytest.mark.parametrize("tolerance,distance,field", [
    (0.0, 10.0, "quat_tolerance"), (1.0, 10.0, "quat_tolerance"), (1.5, 10.0, "quat_tolerance"),
    (0.01, 0.0, "max_distance_m"), (0.01, -2.0, "max_distance_m"),
])
def test_the_gate_refuses_settings_outside_their_ranges(tolerance, distance, field):
    with pytest.raises(ValueError, match=field):
        InputGate(np, 1, quat_tolerance=tolerance, max_distance=distance)


def test_a_first_sample_at_an_infinite_time_is_counted_as_nonfinite():
    gate = InputGate(np, 2, quat_tolerance=0.01, max_distance=10.0)
    raw = np.array([[0, 0, 0, 0, 0, 0, 1, np.inf, 1], [0, 0, 0, 0, 0, 0, 1, np.nan, 1]])
    assert not gate.check(raw).any()
    np.testing.assert_array_equal(gate.counts[0], [1, 1])  # "nonfinite", once per device
    assert gate.counts[1:].sum() == 0


def test_the_distance_limit_is_on_the_position_alone_and_inclusive():
    """A position exactly at max_distance is kept, whatever the quaternion; a NaN row
    counts as nonfinite only, never also as out of range."""
    gate = InputGate(np, 3, quat_tolerance=0.01, max_distance=5.0)
    raw = np.array([[3.0, 4.0, 0.0, 0, 0, 0, 1, 0.1, 1],  # |p| = 5 m exactly
                    [4.9, 0.0, 0.0, 1, 0, 0, 0, 0.1, 1],  # |p| + |qx| would pass 5 m
                    [np.nan, 9.0, 9.0, 0, 0, 0, 1, 0.1, 1]])
    np.testing.assert_array_equal(gate.check(raw), [True, True, False])
    np.testing.assert_array_equal(gate.counts.sum(axis=1), [1, 0, 0, 0, 0])
    small = InputGate(np, 1, quat_tolerance=0.01, max_distance=1.0)
    small.check(np.array([[np.nan, 0, 0, 0, 0, 0, 1, 0.1, 1]]))
    np.testing.assert_array_equal(small.counts[:, 0], [1, 0, 0, 0, 0])


def test_a_row_first_sent_invalid_is_new_when_it_turns_valid_at_the_same_time():
    """Only valid rows count as seen: a tracker that fills a sample in two steps (the
    row first with its flag off, then on, same time) has it taken once it is valid."""
    gate = InputGate(np, 2, quat_tolerance=0.01, max_distance=10.0)
    row = [0.1, 0.2, 0.3, 0, 0, 0, 1, 0.5]
    assert not gate.check(np.array([row + [0], row + [0]])).any()
    np.testing.assert_array_equal(gate.check(np.array([row + [1], row + [0]])), [True, False])
    np.testing.assert_array_equal(gate.check(np.array([row + [1], row + [1]])), [False, True])
    np.testing.assert_array_equal(gate.pose, [row[:7], row[:7]])


def test_each_rejection_is_counted_once_under_its_reason():
    """Limits are "more than": exactly at the tolerance or the last accepted time is
    kept; a row the source repeats unchanged is one sample, counted once."""
    gate = InputGate(np, 4, quat_tolerance=0.25, max_distance=5.0)
    ok = [0, 0, 0, 0, 0, 0, 1]
    rows = np.array([[5.01, 0, 0, 0, 0, 0, 1, 1.0, 1],  # 1 cm beyond 5 m: out of range
                     [0, 0, 0, 0, 0, 0, 1.25, 1.0, 1],  # |q| - 1 == tolerance: kept
                     [0, 0, 0, 0, 0, 0, 1.26, 1.0, 1],  # beyond it: bad quaternion
                     [*ok, 1.0, 1]])
    np.testing.assert_array_equal(gate.check(rows), [False, True, False, True])
    for _ in range(2):  # the same rows two more frames: not new, nothing accepted
        assert not gate.check(rows).any()
    np.testing.assert_array_equal(gate.counts.T, [[0, 1, 0, 0, 0], [0, 0, 0, 0, 0],
                                                  [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    later = np.array([[*ok, 2.0, 1], [*ok, 0.5, 1], [*ok, 2.0, 1], [np.nan] * 7 + [2.0, 1]])
    np.testing.assert_array_equal(gate.check(later), [True, False, True, False])
    np.testing.assert_array_equal(gate.counts[3], [0, 1, 0, 0])  # time_backwards: device 1
    # device 3 was rejected at t = 2; the time of its last accepted sample (1 s) is kept
    assert gate.check(np.array([[*ok, 3.0, 1]] * 3 + [[*ok, 1.0, 1]]))[3]
    np.testing.assert_array_equal(gate.counts.sum(axis=1), [1, 1, 1, 1, 0])


class Zigzag(Stage):
    """Target poses jumping +-0.9 m every frame with over-long quaternions: constant
    velocity extrapolates them past twice max_distance_m, so every prediction is
    rejected and the stage holds the last accepted sample."""

    name = "zigzag"
    writes = (TARGET_POSES,)

    def setup(self, bank, config):
        self.out = bank.state(TARGET_POSES, (3, 9), "float64")
        self.rng = np.random.default_rng(1)

    def process(self, frame, bank):
        self.out[...] = raw_rows(self.rng, 3, frame.t_now)
        self.out[:, :3] = [0.9 * (-1) ** frame.index, 0.0, 0.0]


@pytest.mark.parametrize("predictor", ["none", "constant_velocity", "learned"])
def test_device_poses_are_unit_quaternions_on_every_path(predictor):
    stage = TrackingStage(TrackingSettings(source="openxr", predictor=predictor,
                                           max_distance_m=1.0))
    bank = WeightBank()
    pipeline = Pipeline([Zigzag(), stage])
    pipeline.setup(bank, {s.name: StageConfig(s.settings) for s in pipeline.stages})
    loop = FrameLoop(pipeline, bank, VirtualClock(90.0))
    held = 0
    for _ in range(12):
        assert not loop.run(1).faults
        q = bank[DEVICE_POSES][:, 3:].astype(np.float64)
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)
        held = int(stage.bad_predictions.sum())
    if predictor == "constant_velocity":
        assert held > 0  # the held path was taken
