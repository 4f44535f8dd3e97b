"""NaN and inf in the audio stage's inputs never reach a WAV, the live output or audio_block."""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import vrshare
from vrshare.pipeline import FrameLoop, Pipeline, StageConfig, VirtualClock
from vrshare.stages.audio import (
    AudioStage,
    Settings,
    SourceSettings,
    convolve,
    hrtf,
    sources,
    stage,
)

RATE, BLOCK, TAPS = 48000, 256, 256
FRAMES, BAD_FROM = 60, 30  # frames run; the first frame whose input is bad
BAD_VALUES = {
    "nan translation": (np.s_[0, 0, 3], np.nan),
    "inf translation": (np.s_[0, 2, 3], np.inf),
    "nan rotation": (np.s_[0, 1, 1], np.nan),
    "-inf rotation": (np.s_[0, 0, 0], -np.inf),
}


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


class Head(vrshare.Stage):
    """Head at the origin looking down -Z; from frame ``bad_from`` its pose is ``bad``."""

    name = "head"
    writes = ("head_pose",)

    def __init__(self, bad_from: int | None = None, bad: float = np.nan) -> None:
        super().__init__()
        self.bad_from, self.bad = bad_from, bad

    def setup(self, bank, config):
        self.pose = bank.state("head_pose", (7,), "float32")
        self.pose[:] = [0, 0, 0, 0, 0, 0, 1]

    def process(self, frame, bank):
        if self.bad_from is not None and frame.index >= self.bad_from:
            self.pose[[0, 4]] = self.bad  # a position and a quaternion component


class Objects(vrshare.Stage):
    """One object 2 m to the left, 1 m ahead; from frame ``bad_from`` one matrix entry
    is ``value`` (as a broken scene_motion or plug-in stage would write it)."""

    name = "objects"
    writes = ("object_model",)

    def __init__(self, bad_from: int | None, where=np.s_[0, 0, 3], value: float = np.nan):
        super().__init__()
        self.bad_from, self.where, self.value = bad_from, where, value

    def setup(self, bank, config):
        self.model = bank.state("object_model", (1, 4, 4), "float32")

    def process(self, frame, bank):
        self.model[0] = np.eye(4)
        self.model[0, :3, 3] = [-2.0, 0.0, -1.0]
        if self.bad_from is not None and frame.index >= self.bad_from:
            self.model[self.where] = self.value


class Probe(vrshare.Stage):
    """Records, after the audio stage, each frame's audio_block and blocks rendered."""

    name = "probe"
    reads = ("audio_block",)

    def __init__(self, audio: AudioStage) -> None:
        super().__init__()
        self.audio, self.blocks, self.rendered = audio, [], []

    def process(self, frame, bank):
        self.blocks.append(bank["audio_block"].copy())
        self.rendered.append(self.audio.blocks)


def run(stages, frames: int = FRAMES) -> None:
    bank = vrshare.WeightBank()
    pipe = Pipeline(stages)
    pipe.setup(bank, StageConfig(None, base_dir=Path(".")))
    stats = FrameLoop(pipe, bank, VirtualClock(90.0)).run(frames)
    pipe.close()
    assert not stats.faults, stats.faults
    return stats


def on_object(tmp_path: Path, **kw) -> AudioStage:
    return AudioStage(Settings(output="wav", wav=tmp_path / "out.wav", follow_objects=True,
                               sources=[SourceSettings("car", position=(0.0, 0.0, 0.0),
                                                       object_index=0, signal="noise")], **kw))


def levels(blocks: list[np.ndarray]) -> np.ndarray:
    """(frames, 2) RMS of each frame's audio_block, left and right."""
    return np.array([(rms(b[0]), rms(b[1])) for b in blocks])


def check_held(probe: Probe, wav: Path) -> int:
    """Finite output, the source still heard and on the left after BAD_FROM; returns
    the blocks rendered from BAD_FROM on."""
    data, _ = sf.read(wav, dtype="float32")
    assert np.all(np.isfinite(data)) and len(data) == probe.audio.blocks * BLOCK
    lv = levels(probe.blocks)
    assert np.all(np.isfinite(lv))
    before, after = lv[5:BAD_FROM], lv[BAD_FROM:]
    assert np.all(before[:, 0] > 2 * before[:, 1]) and np.all(after[:, 0] > 2 * after[:, 1])
    assert after[:, 0].mean() == pytest.approx(before[:, 0].mean(), rel=0.2)
    left_wav = rms(data[probe.rendered[BAD_FROM - 1] * BLOCK:, 0])
    assert left_wav == pytest.approx(rms(data[BLOCK * 4:probe.rendered[BAD_FROM - 1] * BLOCK, 0]),
                                     rel=0.2)
    return probe.audio.blocks - probe.rendered[BAD_FROM - 1]


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_object_matrix_turning_non_finite_holds_the_last_good_position(tmp_path, caplog, case):
    where, value = BAD_VALUES[case]
    st = on_object(tmp_path)
    probe = Probe(st)
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        stats = run([probe, st, Objects(BAD_FROM, where, value), Head()])
    bad_blocks = check_held(probe, tmp_path / "out.wav")
    assert bad_blocks > 0
    counts = stats.counters["audio"]
    assert counts["non-finite positions"] == bad_blocks
    assert "non-finite samples" not in counts and "non-finite head poses" not in counts
    warnings = [r for r in caplog.records if "'car'" in r.getMessage()]
    assert len(warnings) == 1 and "last good position is held" in warnings[0].getMessage()


def test_object_never_finite_is_muted_and_counted(tmp_path, caplog):
    st = on_object(tmp_path)
    probe = Probe(st)
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        stats = run([probe, st, Objects(0), Head()], 20)
    data, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    assert np.all(data == 0) and all(np.all(b == 0) for b in probe.blocks)
    assert stats.counters["audio"]["non-finite positions"] == st.blocks
    warnings = [r for r in caplog.records if "'car'" in r.getMessage()]
    assert len(warnings) == 1 and "muted" in warnings[0].getMessage()


def test_only_the_broken_source_is_held(tmp_path):
    """Two sources on two objects; only object 1 turns NaN: object 0's source still
    follows its (moving) object, object 1's stays where it was."""
    st = AudioStage(Settings(output="none", follow_objects=True, sources=[
        SourceSettings("a", position=(0.0, 0.0, 0.0), object_index=0, signal="noise"),
        SourceSettings("b", position=(0.0, 0.0, 0.0), object_index=1, signal="tone")]))

    class Two(vrshare.Stage):
        name = "objects"
        writes = ("object_model",)

        def setup(self, bank, config):
            self.model = bank.state("object_model", (2, 4, 4), "float32")
            self.model[:] = np.eye(4)

        def process(self, frame, bank):
            self.model[0, :3, 3] = [-3.0 + 6.0 * frame.t_now, 0.0, -1.0]
            self.model[1, :3, 3] = [2.0, 0.0, -1.0] if frame.index < 5 else np.nan

    stats = run([st, Two(), Head()], 90)
    held = st.renderer.held
    assert held[0] == pytest.approx([-3.0 + 6.0 * 89 / 90, 0.0, -1.0], abs=1e-5)
    assert held[1] == pytest.approx([2.0, 0.0, -1.0])
    events = st.renderer.event_counts()["positions"]
    assert events[0] == 0 and 0 < events[1] < st.blocks
    assert stats.counters["audio"]["non-finite positions"] == events[1]


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_head_pose_turning_non_finite_keeps_the_last_good_one(tmp_path, caplog, value):
    st = AudioStage(Settings(output="wav", wav=tmp_path / "out.wav", sources=[
        SourceSettings("left", position=(-2.0, 0.0, -1.0), signal="noise")]))
    probe = Probe(st)
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        stats = run([probe, st, Head(BAD_FROM, value)])
    bad_blocks = check_held(probe, tmp_path / "out.wav")
    assert stats.counters["audio"]["non-finite head poses"] == bad_blocks
    warnings = [r for r in caplog.records if "head_pose" in r.getMessage()]
    assert len(warnings) == 1


def test_output_guard_zeroes_and_counts_non_finite_samples():
    """Whatever path a NaN takes (here: the signal itself), the block stays finite."""
    table = hrtf.on_grid(hrtf.spherical_head(RATE, TAPS))
    n_fft = convolve.fft_size(BLOCK, TAPS)
    srcs = sources.resolve([SourceSettings("a", position=(1.0, 0.0, 0.0), signal="noise")],
                           RATE, Path("."), n_objects=None)
    r = convolve.BinauralRenderer(convolve.spectra(table, n_fft), n_fft, BLOCK, srcs)
    pose = np.array([0, 0, 0, 0, 0, 0, 1], np.float32)
    assert rms(r.render(pose)) > 0 and r.event_counts()["samples"] == 0
    r.samples[:] = np.nan
    for _ in range(3):
        out = r.render(pose)
        assert np.all(out == 0)
    counts = r.event_counts()
    assert counts["samples"] == 3 * 2 * BLOCK and counts["head_pose"] == 0


class FakeStream:
    def start(self):
        pass

    def stop(self):
        pass

    def close(self):
        pass


def test_live_output_stays_finite(monkeypatch, caplog):
    """The device callback renders from snapshots: a NaN object gives a finite device
    buffer and audio_block, counted and warned once."""
    monkeypatch.setattr(stage, "open_device", lambda *a, **k: FakeStream())
    monkeypatch.setattr(stage, "start_stream", lambda stream: stream.start())
    st = AudioStage(Settings(output="device", follow_objects=True, sources=[
        SourceSettings("car", position=(0.0, 0.0, 0.0), object_index=0, signal="noise")]))
    bank = vrshare.WeightBank()
    pipe = Pipeline([st, Objects(3), Head()])
    pipe.setup(bank, StageConfig(None))
    feeder = st.render_callback()
    loop = FrameLoop(pipe, bank, VirtualClock(90.0))
    outdata = np.zeros((BLOCK, 2), np.float32)
    played = []
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        for _ in range(8):
            loop.run(1)
            thread = threading.Thread(target=feeder, args=(outdata, BLOCK, None, None))
            thread.start()
            thread.join()
            played.append(outdata.copy())
            assert np.all(np.isfinite(bank["audio_block"]))
        stats = loop.run(1)
        pipe.close()
    out = np.concatenate(played)
    assert feeder.errors == 0 and np.all(np.isfinite(out))
    assert rms(out[-3 * BLOCK:, 0]) > 2 * rms(out[-3 * BLOCK:, 1]) > 0  # held: still left
    assert stats.counters["audio"]["non-finite positions"] > 0
    assert len([r for r in caplog.records if "'car'" in r.getMessage()]) == 1


def test_the_output_guard_zeroes_only_the_non_finite_samples():
    table = hrtf.on_grid(hrtf.spherical_head(RATE, TAPS))
    n_fft = convolve.fft_size(BLOCK, TAPS)
    srcs = sources.resolve([SourceSettings("a", signal="noise")], RATE, Path("."), n_objects=None)
    r = convolve.BinauralRenderer(convolve.spectra(table, n_fft), n_fft, BLOCK, srcs)
    out = np.full((2, BLOCK), 0.5, np.float32)
    out[0, 3], out[1, 7] = np.nan, -np.inf
    r._guard(out)
    expected = np.full((2, BLOCK), 0.5, np.float32)
    expected[0, 3] = expected[1, 7] = 0.0
    np.testing.assert_array_equal(out, expected)
    assert r.event_counts()["samples"] == 2


def test_a_head_pose_never_finite_renders_as_the_identity():
    """Before any finite head pose the held one is the identity."""
    table = hrtf.on_grid(hrtf.spherical_head(RATE, TAPS))
    n_fft = convolve.fft_size(BLOCK, TAPS)
    srcs = sources.resolve([SourceSettings("a", position=(1.0, 0.5, -2.0), signal="noise")],
                           RATE, Path("."), n_objects=None)
    bad, good = (convolve.BinauralRenderer(convolve.spectra(table, n_fft), n_fft, BLOCK, srcs)
                 for _ in range(2))
    identity = np.array([0, 0, 0, 0, 0, 0, 1], np.float32)
    for value in (np.nan, np.inf, -np.inf):
        out = bad.render(np.full(7, value, np.float32))
        np.testing.assert_array_equal(out, good.render(identity))
    assert rms(out) > 0 and bad.event_counts()["head_pose"] == 3


def test_bad_input_raises_no_floating_point_warning():
    """Infinite or huge object matrices and head poses are counted, not warned about by
    NumPy on the way (the maths they pass through is silenced on the CPU)."""
    table = hrtf.on_grid(hrtf.spherical_head(RATE, TAPS))
    n_fft = convolve.fft_size(BLOCK, TAPS)
    srcs = sources.resolve([SourceSettings("a", position=(1.0, 0.5, -2.0), object_index=0,
                                           signal="noise")], RATE, Path("."), n_objects=1)
    r = convolve.BinauralRenderer(convolve.spectra(table, n_fft), n_fft, BLOCK, srcs)
    identity = np.array([0, 0, 0, 0, 0, 0, 1], np.float32)
    far = np.array([1e38, 1e38, 1e38, 0, 0, 0, 1], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in (np.inf, 3e38):
            for pose in (identity, far):
                out = r.render(pose, np.full((1, 4, 4), value, np.float32))
                assert np.isfinite(out).all()
    assert r.event_counts()["positions"][0] == 4
