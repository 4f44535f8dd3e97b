"""The learned predictor's solve_every setting, and the whole tracking stage on the
strict backend (its array code, not the host copies the pipeline hands it)."""

from __future__ import annotations

import numpy as np
import pytest
from test_tracking_filter_predict import stationary_motion

from vrshare import ConfigError, Frame, StageConfig, WeightBank, backend, strict
from vrshare.layout import (
    DEVICE_POSES,
    DEVICE_VALID,
    EYE_VIEW,
    HEAD_POSE,
    PREDICTOR_WEIGHTS,
    TARGET_POSES,
)
from vrshare.stages.tracking import TrackingSettings, TrackingStage, learned
from vrshare.stages.tracking.predict import METHODS
from vrshare.stages.tracking.stage import REST_POSES

RATE = 90.0  # Hz, samples and predictions
HORIZON = 0.03  # s


def stream(predictors, frames):
    """Feed every predictor the same motion; returns each one's weights after each frame."""
    mask = np.ones(3, bool)
    out_p, out_q = np.zeros((3, 3)), np.zeros((3, 4))
    weights = [[] for _ in predictors]
    for k in range(frames):
        t = k / RATE
        pos, q = stationary_motion(np.full(1, t))
        for pred, seen in zip(predictors, weights, strict=True):
            pred.observe(mask, np.full(3, t), pos[:, 0], q[:, 0])
            pred.predict(np.full(3, t + HORIZON), 1.0, out_p, out_q)
            seen.append(pred.weights.copy())
    return weights


def learner(solve_every=1, k=4):
    return learned.LearnedPredictor(np, 3, learned.initial_weights(k), k=k, queue=12,
                                    solve_every=solve_every)


@pytest.mark.parametrize("every", [2, 5])
def test_solving_every_n_steps_gives_the_every_step_fit_on_those_steps(every):
    """The statistics take every step whatever the setting (features and targets do not
    depend on the weights), so on every N-th step the weights are the every-step fit,
    and in between they are the fit of the last such step."""
    exact, sparse = learner(), learner(every)
    frames = 60
    w_exact, w_sparse = stream([exact, sparse], frames)
    np.testing.assert_allclose(sparse.info, exact.info, rtol=1e-12)
    assert not np.allclose(w_exact[-1], learned.initial_weights(4))  # it did learn
    for i in range(frames):
        last_solved = (i + 1) // every * every - 1  # index of the last step solved at
        expected = w_exact[last_solved] if last_solved >= 0 else learned.initial_weights(4)
        np.testing.assert_allclose(w_sparse[i], expected, rtol=1e-9, atol=1e-12,
                                   err_msg=f"step {i + 1}")
    lagging = every * (40 // every)  # step lagging + 1 is one past a solve
    assert not np.allclose(w_sparse[lagging], w_exact[lagging])  # the weights did lag


def test_saving_solves_the_steps_left_unsolved(tmp_path):
    exact, sparse = learner(), learner(7)
    stream([exact, sparse], 30)  # 30 steps: the last 2 not yet solved for
    assert not np.allclose(sparse.weights, exact.weights)
    loaded, info = learned.load_weights(sparse.save(tmp_path / "w.npz"), 4)
    np.testing.assert_allclose(loaded, exact.weights, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(info, exact.info, rtol=1e-12)


@pytest.mark.parametrize("bad", [0, -3])
def test_solve_every_below_one_is_refused(bad):
    with pytest.raises(ValueError, match="solve_every"):
        learner(bad)
    with pytest.raises(ConfigError, match="solve_every"):
        TrackingSettings(predictor="learned", solve_every=bad)


def run_stage(bank, frames, **settings):
    """A tracking stage set up on ``bank`` directly (no pipeline placing it on the host)."""
    stage = TrackingStage(TrackingSettings(**settings))
    stage.setup(bank, StageConfig(stage.settings, frame_hz=RATE))
    for k in range(frames):
        stage.process(Frame(k, k / RATE, (k + 1) / RATE, 1 / RATE), bank)
    return stage


def test_the_stage_passes_solve_every_to_the_learner():
    stage = run_stage(WeightBank(), 3, predictor="learned", solve_every=4)
    assert stage.predictor.solve_every == 4


CASES = {
    "demo": {},
    "learned": {"predictor": "learned"},
    "filter": {"filter": True, "noise_mm": 0.5, "noise_deg": 0.1,
               "predictor": "constant_acceleration"},
}
OUTPUTS = (DEVICE_POSES, HEAD_POSE, DEVICE_VALID, EYE_VIEW)


@pytest.mark.parametrize("case", CASES)
def test_the_stage_on_the_strict_backend_crosses_nothing_and_matches_numpy(case, monkeypatch):
    """The stage's own array code on device arrays (the strict backend: CuPy's host
    boundary on NumPy) has no implicit crossing in a steady frame, and writes what it
    writes on NumPy."""
    settings = CASES[case]
    on_host = WeightBank()
    run_stage(on_host, 40, **settings)
    monkeypatch.setattr(strict.record, "mode", "count")
    strict.record.clear()
    backend.select("strict")
    try:
        bank = WeightBank()
        stage = run_stage(bank, 5, **settings)  # first frames: constants copied over once
        assert isinstance(bank[DEVICE_POSES], strict.StrictArray)
        strict.record.clear()
        for k in range(5, 40):
            stage.process(Frame(k, k / RATE, (k + 1) / RATE, 1 / RATE), bank)
        crossings = list(strict.record.crossings)
        result = {name: backend.to_host(bank[name]) for name in OUTPUTS}
        if case == "learned":
            np.testing.assert_allclose(backend.to_host(bank[PREDICTOR_WEIGHTS]),
                                       on_host[PREDICTOR_WEIGHTS], rtol=1e-12)
    finally:
        strict.record.clear()
        backend.select("numpy")
    assert crossings == [], "crossings in steady frames:\n" + "\n".join(map(str, crossings))
    for name, value in result.items():
        np.testing.assert_allclose(value, on_host[name], rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", [*METHODS, "learned"])
def test_every_method_holds_an_unseen_device_at_rest(name):
    """Before any sample the history's newest entry is the rest pose the stage put there,
    with no velocity: every method predicts that pose, and it is not counted as bad."""
    bank = WeightBank()
    bank.state(TARGET_POSES, (3, 9), "float64")  # a target that tracks nothing yet
    stage = run_stage(bank, 4, source="openxr", predictor=name)
    np.testing.assert_allclose(bank[DEVICE_POSES], REST_POSES, atol=1e-7)
    np.testing.assert_array_equal(bank[DEVICE_VALID], 0.0)
    assert int(stage.bad_predictions.sum()) == 0
