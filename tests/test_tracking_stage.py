"""The tracking stage: bad input, holding and loss, sources, and runs in a real frame loop."""

import logging
import math
import textwrap

import numpy as np
import pytest

from vrshare import (
    ConfigError,
    Frame,
    FrameLoop,
    Pipeline,
    Stage,
    StageConfig,
    VirtualClock,
    WeightBank,
    resources,
)
from vrshare.app import open_run
from vrshare.geometry import eyes, quat
from vrshare.layout import (
    DEVICE_POSES,
    DEVICE_VALID,
    EYE_PROJ,
    EYE_VIEW,
    HEAD_POSE,
    PREDICTOR_WEIGHTS,
    TARGET_FOV,
    TARGET_POSES,
)
from vrshare.pipeline import resolve
from vrshare.stages.tracking import TrackingSettings, TrackingStage
from vrshare.stages.tracking.stage import REST_POSES
from vrshare.stages.tracking.synthetic import SyntheticMotion
from vrshare.stages.tracking.trace import read_trace

OUTPUTS = (HEAD_POSE, DEVICE_POSES, DEVICE_VALID, EYE_VIEW, EYE_PROJ)
IDENTITY = [0.0, 0.0, 0.0, 1.0]


class Feed:
    """A tracking stage fed through ``target_poses``, frame by frame, as a target would."""

    def __init__(self, **settings):
        settings.setdefault("source", "openxr")
        self.bank = WeightBank()
        self.target = self.bank.state(TARGET_POSES, (3, 9), "float64")
        self.stage = TrackingStage(TrackingSettings(**settings))
        sources = [TARGET_POSES]
        if settings.get("fov_from_target"):
            self.fov = self.bank.state(TARGET_FOV, (2, 4), "float64")
            sources.append(TARGET_FOV)
        self.pipeline = Pipeline([self.stage], sources=sources)
        self.pipeline.setup(self.bank, StageConfig(self.stage.settings))
        self.index = 0

    def frame(self, t, rows=None, latency=0.02):
        """Run one frame at ``t`` (s) after writing ``rows`` {device: (pose7, t, valid)}."""
        for d, (pose, ts, valid) in (rows or {}).items():
            self.target[d, :7] = pose
            self.target[d, 7] = ts
            self.target[d, 8] = valid
        self.stage.process(Frame(self.index, t, t + latency, 1 / 90), self.bank)
        self.index += 1
        for name in OUTPUTS:
            assert np.all(np.isfinite(self.bank[name])), f"{name} is not finite at t={t}"
        return self.bank[DEVICE_POSES].copy()


def moving(t, v=(0.5, 0.0, -0.2)):
    """Head pose moving at constant velocity ``v`` (m/s), fixed orientation."""
    return [0.1 + v[0] * t, 1.6 + v[1] * t, -0.3 + v[2] * t, *IDENTITY]


def warm(feed, frames=5, dt=0.01):
    for k in range(frames):
        feed.frame(k * dt, {0: (moving(k * dt), k * dt, 1.0)})
    return (frames - 1) * dt


BAD_SAMPLES = {
    "nan_position": ([math.nan, 1.6, 0, *IDENTITY], "nonfinite"),
    "inf_position": ([0.1, math.inf, 0, *IDENTITY], "nonfinite"),
    "nan_quaternion": ([0.1, 1.6, 0, math.nan, 0, 0, 1], "nonfinite"),
    "zero_quaternion": ([0.1, 1.6, 0, 0, 0, 0, 0], "bad_quaternion"),
    "long_quaternion": ([0.1, 1.6, 0, 0, 0, 0, 1.5], "bad_quaternion"),
}


@pytest.mark.parametrize("case", list(BAD_SAMPLES))
def test_bad_sample_is_rejected_held_and_counted(case, caplog):
    pose, kind = BAD_SAMPLES[case]
    feed = Feed(predictor="constant_velocity")
    t = warm(feed)
    with caplog.at_level(logging.WARNING, logger="vrshare.stages.tracking.stage"):
        out = feed.frame(t + 0.01, {0: (pose, t + 0.01, 1.0)})
        feed.stage.close()
    assert feed.stage.rejections[kind] == 1
    assert sum(feed.stage.rejections.values()) == 1
    assert feed.stage.rejections_by_device[kind]["head"] == 1
    # held: extrapolated from the last good sample (t) to the display time (t + 0.03)
    np.testing.assert_allclose(out[0, :3], moving(t + 0.03)[:3], atol=1e-6)
    assert kind in caplog.text


def test_nan_time_is_rejected():
    feed = Feed()
    t = warm(feed)
    feed.frame(t + 0.01, {0: (moving(t + 0.01), math.nan, 1.0)})
    assert feed.stage.rejections["nonfinite"] == 1


def test_slightly_off_quaternion_is_accepted_and_renormalised():
    feed = Feed(predictor="none")
    warm(feed)
    out = feed.frame(0.05, {0: ([0, 1.6, 0, 0, 0, 0, 1.005], 0.05, 1.0)})
    assert sum(feed.stage.rejections.values()) == 0
    np.testing.assert_allclose(out[0, 3:], IDENTITY, atol=1e-7)


def test_time_going_backwards_is_rejected():
    feed = Feed(predictor="constant_velocity")
    t = warm(feed)
    before = feed.frame(t + 0.01)  # no new sample: nothing counted
    assert sum(feed.stage.rejections.values()) == 0
    after = feed.frame(t + 0.01, {0: ([5.0, 5.0, 5.0, *IDENTITY], t - 0.02, 1.0)})
    assert feed.stage.rejections["time_backwards"] == 1
    np.testing.assert_allclose(after, before)  # the backwards sample changed nothing
    feed.frame(t + 0.02, {0: (moving(t + 0.01), t + 0.01, 1.0)})  # and later ones still count
    assert feed.stage.rejections["time_backwards"] == 1


def test_lost_device_is_held_extrapolated_at_most_and_then_marked_lost():
    feed = Feed(predictor="constant_velocity", max_extrapolation_ms=30.0, lost_after_ms=200.0)
    t = warm(feed)
    feed.target[0, 8] = 0.0  # the runtime stops tracking the head
    out = feed.frame(t + 0.01)
    assert feed.stage.rejections["lost"] == 1
    assert feed.bank[DEVICE_VALID][0] == 1.0  # held within limits
    far = feed.frame(t + 0.15)
    np.testing.assert_allclose(far[0, :3], moving(t + 0.03)[:3], atol=1e-6)  # capped at 30 ms
    np.testing.assert_allclose(out[0, :3], far[0, :3], atol=1e-6)
    feed.frame(t + 0.25)
    assert feed.bank[DEVICE_VALID][0] == 0.0
    assert feed.stage.rejections["lost"] == 1  # counted once per loss
    # back after a long gap: the first new sample is taken as is (no velocity across the gap)
    t2 = t + 1.0
    pose = [1.0, 1.5, -1.0, *IDENTITY]
    back = feed.frame(t2, {0: (pose, t2, 1.0)})
    np.testing.assert_allclose(back[0], pose, atol=1e-6)
    assert feed.bank[DEVICE_VALID][0] == 1.0


def test_unseen_devices_sit_at_rest_and_are_invalid():
    feed = Feed()
    warm(feed)
    np.testing.assert_allclose(feed.bank[DEVICE_POSES][1:], REST_POSES[1:], atol=1e-7)
    np.testing.assert_array_equal(feed.bank[DEVICE_VALID], [1.0, 0.0, 0.0])


def test_outputs_stay_finite_under_random_garbage():
    feed = Feed(predictor="learned", filter=True)
    rng = np.random.default_rng(0)
    specials = np.array([math.nan, math.inf, -math.inf, 0.0, 1e30])
    t = 0.0
    for _ in range(150):
        t += 0.011
        rows = {}
        for d in range(3):
            pose = np.array(moving(t), float)
            pose[3:] = quat.from_rotvec(rng.normal(0, 1, 3))
            if rng.random() < 0.3:
                pose[rng.integers(0, 7)] = rng.choice(specials)
            ts = t - 0.05 if rng.random() < 0.1 else t
            rows[d] = (pose, ts, float(rng.random() > 0.1))
        feed.frame(t, rows)  # asserts every output is finite
    counts = feed.stage.rejections
    assert counts["nonfinite"] > 0 and counts["bad_quaternion"] > 0 and counts["lost"] > 0


def test_fov_from_target_and_reads():
    feed = Feed(fov_from_target=True, near=0.1, far=50.0)
    assert feed.stage.reads == (TARGET_POSES, TARGET_FOV)
    fov = np.array([[-0.9, 0.7, 0.8, -0.95], [-0.7, 0.9, 0.8, -0.95]])
    feed.fov[...] = fov
    warm(feed, 2)
    for e in range(2):
        np.testing.assert_allclose(feed.bank[EYE_PROJ][e], eyes.projection(fov[e], 0.1, 50.0),
                                   rtol=1e-6)
    assert TrackingStage(TrackingSettings(source="desktop")).reads == (TARGET_POSES,)
    assert TrackingStage(TrackingSettings()).reads == ()


@pytest.mark.parametrize("settings,match", [
    (dict(source="trace"), "trace file"),
    (dict(fov_from_target=True), "fov_from_target"),
    (dict(fov_left=(0.5, -0.5, 0.5, -0.5)), "fov_left"),
    (dict(min_cutoff=0.0), "min_cutoff"),
    (dict(ipd=-0.01), "ipd"),
])
def test_bad_settings_raise(settings, match):
    with pytest.raises(ValueError, match=match):
        TrackingStage(TrackingSettings(**settings))


def test_registry_names_the_stage():
    assert resolve("tracking") is TrackingStage


# -- in a real pipeline and frame loop ------------------------------------------------------

def run_loop(frames, stages, sources=()):
    bank = WeightBank()
    pipeline = Pipeline(stages, sources=sources)
    pipeline.setup(bank, {s.name: StageConfig(s.settings) for s in stages})
    loop = FrameLoop(pipeline, bank, VirtualClock(90.0))
    stats = loop.run(frames)
    assert not stats.faults, stats.faults
    return bank, loop


def head_error_mm(predictor, frames=180):
    """Mean distance (mm) between the predicted head and the true head at display time."""
    stage = TrackingStage(TrackingSettings(source="synthetic", seed=3, sample_hz=90.0,
                                           predictor=predictor))
    errors = []

    class Check(Stage):
        name = "check"
        reads = (HEAD_POSE, EYE_VIEW)

        def process(self, frame, bank):
            truth = SyntheticMotion(3).poses(frame.t_display)[0, 0]
            head = bank[HEAD_POSE]
            errors.append(np.linalg.norm(head[:3] - truth[:3]) * 1e3)
            # the eye views are those of the head pose just written
            np.testing.assert_allclose(bank[EYE_VIEW], eyes.eye_views(
                head, 0.063, np.zeros((2, 4, 4), np.float32)), atol=1e-5)

    bank, _ = run_loop(frames, [Check(), stage])  # listed first, scheduled after tracking
    np.testing.assert_array_equal(bank[DEVICE_VALID], [1, 1, 1])
    return float(np.mean(errors[5:]))


def test_synthetic_source_in_a_frame_loop_predicts_the_display_time():
    held, cv = head_error_mm("none"), head_error_mm("constant_velocity")
    assert cv < 0.25 * held
    assert cv < 3.0  # mm, 90 Hz samples predicted 22-33 ms ahead


def test_trace_replay_in_simulated_time():
    trace = read_trace(resources.path("scenes", "traces/synthetic_3s.csv"))
    t_head, p_head = trace.of(0)
    stage = TrackingStage(TrackingSettings(source="trace", trace="traces/synthetic_3s.csv",
                                           predictor="none", speed=2.0, loop=False))
    stage_config = StageConfig(stage.settings, base_dir=resources.folder("scenes"))
    bank = WeightBank()
    pipeline = Pipeline([stage])
    pipeline.setup(bank, stage_config)
    clock = VirtualClock(90.0)
    for _ in range(60):
        frame = clock.wait_frame()
        stage.process(frame, bank)
        i = np.searchsorted(t_head, frame.t_now * 2.0, side="right") - 1  # twice the pace
        np.testing.assert_allclose(bank[HEAD_POSE], p_head[i], atol=1e-6)
    np.testing.assert_array_equal(bank[DEVICE_VALID], [1, 1, 1])


def test_trace_loops_without_a_velocity_spike(tmp_path):
    rows = ["t,device,px,py,pz,qx,qy,qz,qw"]
    rows += [f"{k * 0.01:.2f},head,{k * 0.01:.3f},1.6,0,0,0,0,1" for k in range(30)]
    (tmp_path / "line.csv").write_text("\n".join(rows) + "\n")
    stage = TrackingStage(TrackingSettings(source="trace", trace="line.csv",
                                           predictor="constant_velocity", loop=True))
    bank = WeightBank()
    Pipeline([stage]).setup(bank, StageConfig(stage.settings, base_dir=tmp_path))
    clock = VirtualClock(100.0)
    xs = []
    for _ in range(100):
        stage.process(clock.wait_frame(), bank)
        xs.append(float(bank[HEAD_POSE][0]))
    # x ramps 0 -> 0.29 m and starts again; prediction never overshoots the ramp's range
    assert max(xs) <= 0.29 + 0.02 * 1.0 + 1e-6 and min(xs) >= -1e-6
    assert sum(stage.rejections.values()) == 0


def test_open_run_with_learned_predictor_saves_shared_weights(tmp_path):
    run_file = tmp_path / "track.toml"
    run_file.write_text(textwrap.dedent("""
        [pipeline]
        clock = "virtual"
        [[stage]]
        type = "tracking"
        [stage.settings]
        source = "synthetic"
        predictor = "learned"
        history_k = 4
        save_weights = "w.npz"
    """))
    with open_run(run_file) as run:
        stats = run.loop.run(120)
        assert not stats.faults
        weights = run.bank[PREDICTOR_WEIGHTS]
        assert weights.shape == (2, 8)
        assert not np.array_equal(weights[:, 0], [1.0, 1.0])  # adapted online
        assert run.bank.buffer(PREDICTOR_WEIGHTS).kind == "param"
    assert (tmp_path / "w.npz").is_file()
    # a second run starts from the saved weights
    text = run_file.read_text().replace('save_weights = "w.npz"', 'weights = "w.npz"')
    run_file.write_text(text)
    with open_run(run_file) as run:
        np.testing.assert_allclose(run.bank[PREDICTOR_WEIGHTS], weights)


def test_open_run_reports_bad_settings_with_the_file(tmp_path):
    run_file = tmp_path / "bad.toml"
    run_file.write_text('[[stage]]\ntype = "tracking"\n[stage.settings]\nsource = "trace"\n')
    with pytest.raises(ConfigError, match="bad.toml.*trace file"):
        open_run(run_file)
    run_file.write_text('[[stage]]\ntype = "tracking"\n[stage.settings]\nbeeta = 1.0\n')
    with pytest.raises(ConfigError, match="bad.toml.*'beeta'"):
        open_run(run_file)


class FakeTarget(Stage):
    """A stand-in target: writes target_poses moving at constant velocity each frame,
    with a NaN head position every ``nan_every``-th frame when given."""

    name = "fake_target"
    writes = (TARGET_POSES,)

    def __init__(self, nan_every: int = 0):
        super().__init__()
        self.nan_every = nan_every

    def setup(self, bank, config):
        self.out = bank.state(TARGET_POSES, (3, 9), "float64")

    def process(self, frame, bank):
        self.out[:, :7] = moving(frame.t_now)
        self.out[:, 7] = frame.t_now
        self.out[:, 8] = 1.0
        if self.nan_every and frame.index % self.nan_every == self.nan_every - 1:
            self.out[0, 0] = math.nan


def test_openxr_source_in_a_frame_loop():
    """A stand-in target writes target_poses each frame; the stage follows it."""
    stage = TrackingStage(TrackingSettings(source="openxr", predictor="constant_velocity"))
    bank, _ = run_loop(30, [stage, FakeTarget()])
    t_display = 29 / 90 + 2 / 90
    np.testing.assert_allclose(bank[HEAD_POSE][:3], moving(t_display)[:3], atol=1e-5)


def test_rejections_reach_the_run_stats():
    """Bad samples from a target are counted in the frame loop's stats, by reason."""
    stage = TrackingStage(TrackingSettings(source="openxr", predictor="constant_velocity"))
    bank, loop = run_loop(40, [stage, FakeTarget(nan_every=10)])
    assert loop.stats.counters["tracking"]["rejected nonfinite"] == 4
    assert np.isfinite(bank[HEAD_POSE]).all()


class FakeFov(Stage):
    """A stand-in headset's per-eye fields of view (rad), asymmetric as real ones are."""

    name = "fake_fov"
    writes = (TARGET_FOV,)
    FOV = ((-0.9, 0.7, 0.8, -0.85), (-0.7, 0.9, 0.8, -0.85))

    def setup(self, bank, config):
        self.out = bank.state(TARGET_FOV, (2, 4), "float64")

    def process(self, frame, bank):
        self.out[...] = self.FOV


def test_prefer_target_follows_the_target_when_one_writes_poses():
    settings = TrackingSettings(source="synthetic", prefer_target=True)
    # listed before the target: the optional read still orders it after the writer
    stage = TrackingStage(settings)
    bank, loop = run_loop(30, [stage, FakeTarget(), FakeFov()])
    assert loop.active_stages.index("tracking") > loop.active_stages.index("fake_target")
    assert stage.follows_target and stage.fov_from_target
    np.testing.assert_allclose(bank[HEAD_POSE][:3], moving(29 / 90 + 2 / 90)[:3], atol=1e-5)
    for eye, fov in enumerate(FakeFov.FOV):
        np.testing.assert_allclose(bank[EYE_PROJ][eye], eyes.projection(fov, 0.05, 100.0),
                                   rtol=1e-5, atol=1e-6)


def test_prefer_target_without_a_target_uses_its_own_source():
    alone = TrackingStage(TrackingSettings(source="synthetic", seed=4, prefer_target=True))
    plain = TrackingStage(TrackingSettings(source="synthetic", seed=4), name="plain")
    bank_a, _ = run_loop(20, [alone])
    bank_p, _ = run_loop(20, [plain])
    assert not alone.follows_target and not alone.fov_from_target
    np.testing.assert_array_equal(bank_a[HEAD_POSE], bank_p[HEAD_POSE])
    np.testing.assert_array_equal(bank_a[EYE_PROJ], bank_p[EYE_PROJ])
