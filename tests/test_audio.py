"""The audio stage: binaural cues, exactness, smoothness, sources, live and headless output."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate, fftconvolve

import vrshare
from vrshare import backend
from vrshare.app import open_run
from vrshare.config import ConfigError, build
from vrshare.geometry import quat
from vrshare.pipeline import FrameLoop, Pipeline, StageConfig, VirtualClock
from vrshare.pipeline.loop import StageSetupError
from vrshare.stages.audio import (
    AudioError,
    AudioStage,
    Settings,
    SourceSettings,
    convolve,
    grid,
    hrtf,
    sources,
    stage,
)

RATE, BLOCK, TAPS = 48000, 256, 256
IDENTITY = np.array([0, 0, 0, 0, 0, 0, 1], np.float32)


def yaw_pose(deg: float) -> np.ndarray:
    """Head at the origin turned ``deg`` degrees to the left (about +Y)."""
    a = np.deg2rad(deg) / 2
    return np.array([0, 0, 0, 0, np.sin(a), 0, np.cos(a)], np.float32)


@pytest.fixture(scope="module")
def spherical() -> np.ndarray:
    return hrtf.on_grid(hrtf.spherical_head(RATE, TAPS))


@pytest.fixture(scope="module")
def kemar() -> np.ndarray:
    return hrtf.on_grid(hrtf.load("kemar", RATE, TAPS, Path(".")))


def renderer(table: np.ndarray, specs: list[SourceSettings], block: int = BLOCK):
    n_fft = convolve.fft_size(block, table.shape[-1])
    srcs = sources.resolve(specs, RATE, Path("."), n_objects=None)
    return convolve.BinauralRenderer(convolve.spectra(table, n_fft), n_fft, block, srcs), srcs


def render(r, blocks: int, pose=IDENTITY) -> np.ndarray:
    poses = pose if callable(pose) else (lambda k: pose)
    return np.concatenate([r.render(poses(k)).copy() for k in range(blocks)], axis=1)


def ear_lead(out: np.ndarray) -> int:
    """Samples by which the left ear leads the right (cross-correlation peak)."""
    c = correlate(out[1], out[0], mode="full", method="fft")
    return int(np.argmax(c)) - (out.shape[1] - 1)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


# -- binaural cues ----------------------------------------------------------------------


@pytest.mark.parametrize("table_name", ["spherical", "kemar"])
def test_lateral_source_is_louder_and_earlier_on_its_side(table_name, request):
    table = request.getfixturevalue(table_name)
    for x, near in ((-2.0, 0), (2.0, 1)):
        r, _ = renderer(table, [SourceSettings("n", position=(x, 0.0, -0.3), signal="noise")])
        out = render(r, 60)[:, 4 * BLOCK:]
        far = 1 - near
        assert rms(out[near]) > 2.0 * rms(out[far]), (table_name, x)
        lead = ear_lead(out) if near == 0 else -ear_lead(out)
        assert 5 <= lead <= 40, (table_name, x, lead)  # ~0.1-0.8 ms interaural delay


def log_spectrum(h: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(h, 1024))
    f = np.fft.rfftfreq(1024, 1 / RATE)
    return 20 * np.log10(spec[(f > 2000) & (f < 14000)] + 1e-9)


def entry(az_deg: float, el_deg: float) -> int:
    row = int(round((el_deg + 90) / grid.STEP_DEG))
    return row * grid.N_AZ + int(round(az_deg / grid.STEP_DEG))


@pytest.mark.parametrize("table_name", ["spherical", "kemar"])
def test_front_back_and_elevation_cues_in_spectra(table_name, request):
    table = request.getfixturevalue(table_name)
    front, back, up = table[entry(0, 0)], table[entry(180, 0)], table[entry(0, 40)]
    for ear in (0, 1):
        # same lateral angle, so the interaural cues match; only the spectrum tells them apart
        fb = np.abs(log_spectrum(front[ear]) - log_spectrum(back[ear])).mean()
        fu = np.abs(log_spectrum(front[ear]) - log_spectrum(up[ear])).mean()
        assert fb > 1.0, (table_name, ear, fb)
        assert fu > 1.0, (table_name, ear, fu)
    # a median-plane source reaches both ears alike
    assert abs(ear_lead(np.stack([fftconvolve(np.r_[1.0, np.zeros(400)], front[e])
                                  for e in (0, 1)]))) <= 1


# -- exactness ----------------------------------------------------------------------------


def reference(table: np.ndarray, signal: np.ndarray, direction: np.ndarray, gain: float):
    """Offline: the whole signal convolved with the bilinearly blended responses."""
    idx, w = grid.Locator(np, 1)(direction[None, :].astype(np.float32))
    h = np.einsum("j,jet->et", w[0].astype(np.float64), table[idx[0]].astype(np.float64))
    return gain * np.stack([fftconvolve(signal.astype(np.float64), h[e]) for e in (0, 1)])


@pytest.mark.parametrize("block", [256, 96])
def test_static_source_block_by_block_equals_offline_convolution(spherical, tmp_path, block):
    rng = np.random.default_rng(1)
    signal = (0.3 * rng.standard_normal(5000)).astype(np.float32)  # 5000 % 96, % 256 != 0
    sf.write(tmp_path / "s.wav", signal, RATE, subtype="FLOAT")
    pos = np.array([1.2, 0.5, -2.0])  # between grid directions, 2.4 m away
    r, _ = renderer(spherical, [SourceSettings("f", position=tuple(pos),
                                               file=tmp_path / "s.wav", loop=False)], block)
    blocks = (5000 + TAPS) // block + 2
    out = render(r, blocks)
    ref = reference(spherical, signal, pos / np.linalg.norm(pos), 1.0 / np.linalg.norm(pos))
    n = ref.shape[1]
    assert np.abs(out[:, :n] - ref).max() < 1e-5
    assert np.abs(out[:, n:]).max() < 1e-6  # a one-shot source ends in silence (FFT rounding)


def test_looping_file_with_block_not_dividing_its_length(spherical, tmp_path):
    rng = np.random.default_rng(2)
    signal = (0.3 * rng.standard_normal(1000)).astype(np.float32)
    sf.write(tmp_path / "loop.wav", signal, RATE, subtype="FLOAT")
    r, _ = renderer(spherical, [SourceSettings("l", position=(0.0, 0.0, -1.0),
                                               file=tmp_path / "loop.wav")], 96)
    out = render(r, 40)
    ref = reference(spherical, np.resize(signal, 40 * 96), np.array([0, 0, -1.0]), 1.0)
    assert np.abs(out - ref[:, : out.shape[1]]).max() < 1e-5


# -- smoothness ----------------------------------------------------------------------------


def max_step(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=1)).max())


def test_fast_head_turn_makes_no_jump_above_the_signals_own(spherical):
    spec = [SourceSettings("t", position=(0.0, 0.0, -1.0), signal="tone", frequency_hz=200.0)]
    deg_per_block = 180.0 * BLOCK / RATE  # 180 deg/s
    r, _ = renderer(spherical, spec)
    turning = render(r, 400, lambda k: yaw_pose(k * deg_per_block))[:, 4 * BLOCK:]
    own = 0.0
    for deg in range(0, 360, 15):  # the same source heard still from along the path
        r, _ = renderer(spherical, spec)
        own = max(own, max_step(render(r, 12, yaw_pose(deg))[:, 4 * BLOCK:]))
    assert max_step(turning) <= 1.05 * own
    assert rms(turning[0]) > 0.1 and rms(turning[1]) > 0.1  # it did play during the turn


def test_pose_jump_is_crossfaded_not_switched(spherical):
    """A 180-degree jump between two blocks: with the crossfade, no step; switched, a click."""
    spec = [SourceSettings("t", position=(-1.0, 0.0, 0.0), signal="tone", frequency_hz=200.0)]

    def jump(k: int) -> np.ndarray:
        return IDENTITY if k < 10 else yaw_pose(180)

    r, _ = renderer(spherical, spec)
    still = max(max_step(render(r, 10, IDENTITY)[:, 4 * BLOCK:]),
                max_step(render(r, 10, yaw_pose(180))[:, 4 * BLOCK:]))
    r, _ = renderer(spherical, spec)
    assert max_step(render(r, 20, jump)[:, 4 * BLOCK:]) <= 1.25 * still
    r, _ = renderer(spherical, spec)
    r.ramp[:] = 1.0  # no crossfade: switch filters at the block edge
    assert max_step(render(r, 20, jump)[:, 4 * BLOCK:]) > 2 * still


def test_many_sources_in_groups_sum_to_each_source_alone(spherical):
    """More sources than are filtered at once: the groups add up to every source's own render."""
    count = convolve.UNGROUPED + convolve.GROUP // 2 + 3  # groups of GROUP and a remainder
    rng = np.random.default_rng(5)
    pos = rng.standard_normal((count, 3)) * 2.0
    specs = [SourceSettings(f"s{i}", position=tuple(pos[i]), signal="noise" if i % 2 else "tone",
                            frequency_hz=float(100 + 20 * i), gain=0.1) for i in range(count)]
    r, _ = renderer(spherical, specs)
    assert r.group < count
    turn = lambda k: yaw_pose(k * 5.0)  # noqa: E731 (filters change every block)
    together = render(r, 12, turn)
    alone = sum(render(renderer(spherical, [sp])[0], 12, turn) for sp in specs)
    assert np.abs(together - alone).max() < 1e-5 * max(np.abs(alone).max(), 1.0)
    assert rms(together[0]) > 0.1


@pytest.mark.parametrize("turn_deg", [1.0, 7.0], ids=["some-cells-change", "most-change"])
def test_moving_sources_equal_direct_crossfaded_convolution(spherical, turn_deg):
    """Filters that change every block (the head turns and moves): each block of the
    batched renderer is, summed over sources and per ear, np.convolve of the last two
    input blocks with the previous and with the new response (the bilinear grid blend
    times the distance gain), faded linearly from one to the other over the block.
    Turning 1 deg per block, a few sources enter another grid cell each block (their
    kept grid spectra are gathered again); at 7 deg most do."""
    count = convolve.UNGROUPED + 5  # filtered in groups, with a remainder
    rng = np.random.default_rng(8)
    pos = rng.standard_normal((count, 3)) * 2.0
    specs = [SourceSettings(f"s{i}", position=tuple(pos[i]), signal="noise" if i % 2 else "tone",
                            frequency_hz=float(150 + 25 * i), gain=0.1) for i in range(count)]
    r, srcs = renderer(spherical, specs)

    def pose(k: int) -> np.ndarray:
        p = yaw_pose(turn_deg * k)
        p[:3] = [0.05 * k, 0.0, -0.03 * k]
        return p

    blocks = 8
    out = render(r, blocks, pose)
    d = convolve.Distance()
    locate = grid.Locator(np, count)
    ramp = np.arange(1, BLOCK + 1) / BLOCK
    x = np.concatenate([np.zeros((count, BLOCK)),  # silence before the first block
                        np.stack([np.resize(s.signal, blocks * BLOCK) for s in srcs])], axis=1)
    world = np.array([s.position for s in srcs])
    ref, old = np.zeros((2, blocks * BLOCK)), None
    for k in range(blocks):
        p = pose(k).astype(np.float64)
        v = quat.rotate(quat.conjugate(p[3:]), world - p[:3])  # world -> head
        dist = np.linalg.norm(v, axis=1)
        idx, w = locate((v / dist[:, None]).astype(np.float32))
        gain = 0.1 / np.clip(dist, d.min_m, d.max_m)
        new = gain[:, None, None] * np.einsum("sj,sjet->set", w, spherical[idx].astype(np.float64))
        old = new if old is None else old
        for s in range(count):
            window = x[s, k * BLOCK:(k + 2) * BLOCK]  # the previous block and this one
            for e in (0, 1):
                y_old = np.convolve(window, old[s, e])[BLOCK:2 * BLOCK]
                y_new = np.convolve(window, new[s, e])[BLOCK:2 * BLOCK]
                ref[e, k * BLOCK:(k + 1) * BLOCK] += y_old + ramp * (y_new - y_old)
        old = new
    assert np.abs(out - ref).max() < 1e-5 * np.abs(ref).max()
    assert rms(ref[0]) > 0.05 and rms(ref[1]) > 0.05


# -- sources -----------------------------------------------------------------------------


def test_silent_and_zero_gain_sources(spherical, tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(3000, np.float32), RATE)
    quiet = [SourceSettings("silent", position=(1.0, 0.0, 0.0), file=tmp_path / "silence.wav"),
             SourceSettings("muted", position=(0.0, 1.0, 0.0), signal="noise", gain=0.0)]
    r, _ = renderer(spherical, quiet)
    assert np.all(render(r, 20) == 0.0)
    tone = SourceSettings("tone", position=(-1.0, 0.0, -1.0), signal="tone")
    alone, _ = renderer(spherical, [tone])
    mixed, _ = renderer(spherical, [tone, *quiet])
    a, m = render(alone, 20), render(mixed, 20)
    assert np.abs(a - m).max() < 1e-7 and rms(a) > 0.05


def test_generated_signals_and_distance_gain(spherical):
    for kind in ("tone", "noise", "chirp"):
        x = sources.generate(kind, 440.0, RATE, seed=3)
        assert x.dtype == np.float32 and np.all(np.isfinite(x)) and 0.1 < rms(x) < 1.0
    near, _ = renderer(spherical, [SourceSettings("a", position=(0, 0, -1.0), signal="noise")])
    far, _ = renderer(spherical, [SourceSettings("a", position=(0, 0, -4.0), signal="noise")])
    very_near, _ = renderer(spherical, [SourceSettings("a", position=(0, 0, -0.01),
                                                       signal="noise")])
    n, f, v = render(near, 20), render(far, 20), render(very_near, 20)
    assert rms(n) / rms(f) == pytest.approx(4.0, rel=1e-3)  # inverse distance
    assert rms(v) / rms(n) == pytest.approx(4.0, rel=1e-3)  # clamped at 0.25 m


def test_tone_loops_seamlessly():
    x = sources.generate("tone", 441.3, RATE)
    looped = np.concatenate([x, x])
    assert max_step(looped[None, :]) <= max_step(x[None, :]) * 1.001


# -- stages, pipelines, output -----------------------------------------------------------


class Head(vrshare.Stage):
    """Writes a head turning left at ``deg_per_s``."""

    name = "head"
    writes = ("head_pose",)

    def __init__(self, deg_per_s: float = 0.0) -> None:
        super().__init__()
        self.rate = deg_per_s

    def setup(self, bank, config):
        self.pose = bank.state("head_pose", (7,), "float32")

    def process(self, frame, bank):
        self.pose[:] = yaw_pose(self.rate * frame.t_now)


class Objects(vrshare.Stage):
    """Writes one object moving from x = -3 to x = +3 m over 1 s, 1 m in front."""

    name = "objects"
    writes = ("object_model",)

    def setup(self, bank, config):
        self.model = bank.state("object_model", (1, 4, 4), "float32")
        self.model[0] = np.eye(4)

    def process(self, frame, bank):
        self.model[0, :3, 3] = [-3.0 + 6.0 * frame.t_now, 0.0, -1.0]


def run_stages(stages, frames: int, bank=None, scene=None):
    bank = bank if bank is not None else vrshare.WeightBank()
    pipe = Pipeline(stages)
    pipe.setup(bank, StageConfig(None, scene=scene, base_dir=Path(".")))
    stats = FrameLoop(pipe, bank, VirtualClock(90.0)).run(frames)
    pipe.close()
    assert not stats.faults, stats.faults
    return bank


def test_headless_wav_is_deterministic_and_counts_due_blocks(tmp_path):
    outs = []
    for i in range(2):
        path = tmp_path / f"run{i}.wav"
        st = AudioStage(Settings(output="wav", wav=path, sources=[
            SourceSettings("a", position=(-1.0, 0.0, -1.0), signal="noise"),
            SourceSettings("b", position=(2.0, 1.0, 1.0), signal="chirp", frequency_hz=1000.0)]))
        run_stages([st, Head(180.0)], 45)
        data, rate = sf.read(path, dtype="float32")
        assert rate == RATE
        # frame 44 starts at 44/90 s: blocks 0..floor(44/90 * 187.5) are due
        assert data.shape == ((int(44 / 90 * RATE / BLOCK) + 1) * BLOCK, 2)
        assert st.counters() == {"blocks": int(44 / 90 * RATE / BLOCK) + 1}
        outs.append(data)
    assert np.array_equal(outs[0], outs[1]) and rms(outs[0]) > 0.01


def test_source_on_a_moving_object_follows_it():
    st = AudioStage(Settings(output="none", follow_objects=True, sources=[
        SourceSettings("car", position=(0.0, 0.0, 0.0), object_index=0, signal="noise")]))
    assert "object_model" in st.reads
    levels = []

    class Probe(vrshare.Stage):
        name = "probe"
        reads = ("audio_block",)

        def process(self, frame, bank):
            b = bank["audio_block"]
            levels.append((rms(b[0]), rms(b[1])))

    run_stages([Probe(), st, Objects(), Head()], 90)
    left, right = np.array(levels[5:20]), np.array(levels[-15:])
    assert np.all(left[:, 0] > left[:, 1]) and np.all(right[:, 1] > right[:, 0])


def still_head_bank() -> vrshare.WeightBank:
    """A bank whose head_pose (a pipeline source in these run files) stays at rest."""
    bank = vrshare.WeightBank()
    bank.state("head_pose", (7,), "float32")[:] = IDENTITY
    return bank


def test_scene_sounds_and_toml_settings(tmp_path):
    (tmp_path / "run.toml").write_text("""
[pipeline]
clock = "virtual"
sources = ["head_pose"]

[[stage]]
type = "audio"
[stage.settings]
output = "none"
block = 128
[[stage.settings.sources]]
name = "bell"
position = [-1.0, 0.0, 0.0]
signal = "tone"
frequency_hz = 880
""")

    class Sound:
        name, position, object_index, file = "hum", (1.0, 0.0, 0.0), -1, None
        signal, frequency_hz, gain, loop = "tone", 110.0, 0.5, True

    class Scene:
        sounds = [Sound()]

    bank = still_head_bank()
    with open_run(tmp_path / "run.toml", bank=bank, scene=Scene()) as run:
        st = run.pipeline.stages[0]
        assert [s.name for s in st.sources] == ["hum", "bell"]
        run.loop.run(3)
        assert bank["audio_block"].shape == (2, 128) and rms(bank["audio_block"]) > 0


def test_a_relative_wav_path_is_relative_to_the_run_file(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "run.toml").write_text("""
[pipeline]
clock = "virtual"
sources = ["head_pose"]
[[stage]]
type = "audio"
[stage.settings]
output = "wav"
wav = "out/bell.wav"
[[stage.settings.sources]]
name = "bell"
signal = "tone"
""")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with open_run(folder / "run.toml", bank=still_head_bank()) as run:
        run.loop.run(3)
    assert (folder / "out" / "bell.wav").is_file() and not (elsewhere / "out").exists()


def test_two_stages_share_one_hrtf_buffer():
    bank = vrshare.WeightBank()
    a = AudioStage(Settings(output="none"), name="audio")
    b = AudioStage(Settings(output="none"), name="audio2")
    b.writes = ("audio_block2",)  # a second listener would write its own block
    run_stages([a, Head()], 1, bank=bank)
    b.setup(bank, StageConfig(None))
    report = bank.report()
    assert report.shared_params == {"audio2/hrtf_spectra": "audio/hrtf_spectra"}
    assert report.bytes_saved == bank["audio/hrtf_spectra"].nbytes


class FakeStream:
    """Stands in for a sounddevice stream: the test drives the callback itself."""

    stopped = False

    def start(self):
        pass

    def stop(self):
        self.stopped = True

    def close(self):
        pass


def test_device_callback_fed_from_another_thread(monkeypatch):
    """The live path without a device: the callback runs on a thread while frames run."""
    monkeypatch.setattr(stage, "open_device", lambda *a, **k: FakeStream())
    monkeypatch.setattr(stage, "start_stream", lambda stream: stream.start())
    st = AudioStage(Settings(output="device", sources=[
        SourceSettings("left", position=(-2.0, 0.0, 0.0), signal="noise")]))
    bank = vrshare.WeightBank()
    pipe = Pipeline([st, Head(0.0)])
    pipe.setup(bank, StageConfig(None))
    feeder = st.render_callback()
    assert feeder is not None
    blocks, done = [], threading.Event()

    class Flags:
        output_underflow = False

    def device():
        outdata = np.zeros((300, 2), np.float32)  # the device's buffer size need not be a block
        for i in range(40):
            Flags.output_underflow = i == 3
            feeder(outdata, 300, None, Flags)
            blocks.append(outdata.copy())
        done.set()

    thread = threading.Thread(target=device)
    thread.start()
    loop = FrameLoop(pipe, bank, VirtualClock(90.0))
    while not done.is_set():
        loop.run(1)
    thread.join()
    loop.run(1)
    pipe.close()
    out = np.concatenate(blocks)
    assert feeder.errors == 0 and feeder.underruns == 1
    assert feeder.blocks == -(-40 * 300 // BLOCK)
    assert np.all(np.isfinite(out)) and rms(out[:, 0]) > 2 * rms(out[:, 1])
    assert rms(bank["audio_block"]) > 0  # the frame loop sees the latest live block


def test_callback_survives_a_failing_render(caplog):
    calls = []

    def broken(out):
        calls.append(1)
        raise RuntimeError("boom")

    from vrshare.stages.audio.output import BlockFeeder

    feeder = BlockFeeder(broken, 64)
    outdata = np.ones((128, 2), np.float32)
    with caplog.at_level(logging.ERROR):
        feeder(outdata, 128, None, None)
    assert np.all(outdata == 0) and feeder.errors == 2 and "boom" in caplog.text


# -- bad input ---------------------------------------------------------------------------


def setup_error(settings: Settings, **config) -> str:
    bank = vrshare.WeightBank()
    bank.state("head_pose", (7,), "float32")
    with pytest.raises(StageSetupError) as exc:
        Pipeline([AudioStage(settings)], sources=["head_pose"]).setup(
            bank, StageConfig(None, base_dir=config.get("base_dir", Path("."))))
    return str(exc.value)


def test_missing_and_unreadable_files(tmp_path):
    msg = setup_error(Settings(output="none", sources=[
        SourceSettings("x", file=tmp_path / "nope.wav")]))
    assert "nope.wav" in msg and "not found" in msg and "'x'" in msg
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 10)
    msg = setup_error(Settings(output="none", sources=[SourceSettings("y", file="bad.wav")]),
                      base_dir=tmp_path)
    assert "cannot read sound file" in msg and "bad.wav" in msg
    msg = setup_error(Settings(output="none", hrtf=str(tmp_path / "none.sofa")))
    assert "none.sofa" in msg and "not found" in msg
    (tmp_path / "bad.sofa").write_bytes(b"\x89HDF garbage")
    msg = setup_error(Settings(output="none", hrtf=str(tmp_path / "bad.sofa")))
    assert "not a readable SOFA file" in msg


def test_wrong_sofa_convention(tmp_path):
    sofar = pytest.importorskip("sofar")
    sofa = sofar.Sofa("GeneralTF")
    sofar.write_sofa(str(tmp_path / "tf.sofa"), sofa)
    msg = setup_error(Settings(output="none", hrtf=str(tmp_path / "tf.sofa")))
    assert "GeneralTF" in msg and "SimpleFreeFieldHRIR" in msg


def test_unresampleable_rate(tmp_path):
    sf.write(tmp_path / "odd.wav", np.zeros(100, np.float32), 44101)
    msg = setup_error(Settings(output="none", sources=[SourceSettings("o", file="odd.wav")]),
                      base_dir=tmp_path)
    assert "44101 Hz" in msg and "48000" in msg and "'o'" in msg


def test_file_resampled_when_rates_differ(tmp_path):
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "a.wav", np.sin(2 * np.pi * 1000 * t).astype(np.float32), 44100)
    src = sources.resolve([SourceSettings("a", file="a.wav")], RATE, tmp_path, None)[0]
    assert len(src.signal) == RATE
    spec = np.abs(np.fft.rfft(src.signal))
    assert np.argmax(spec) == 1000  # 1 Hz bins at 48 kHz over 1 s


def test_bad_source_fields():
    for spec, text in [
        (SourceSettings("a", signal="file"), "needs a file"),
        (SourceSettings("a", signal="tone", file=Path("x.wav")), "use signal = 'file'"),
        (SourceSettings("a", frequency_hz=30000.0), "frequency_hz"),
        (SourceSettings("a", object_index=2), "object_index"),
    ]:
        with pytest.raises(AudioError, match=text):
            sources.resolve([spec], RATE, Path("."), None)
    # ranges are the settings' own: refused when the settings are made
    with pytest.raises(ConfigError, match=r"'gain': -1\.0 is out of range \(gain must be"):
        SourceSettings("a", gain=-1.0)
    with pytest.raises(AudioError, match="share this name"):
        sources.resolve([SourceSettings("a"), SourceSettings("a")], RATE, Path("."), None)
    msg = setup_error(Settings(output="none", sources=[SourceSettings("o", object_index=0)]))
    assert "follow_objects" in msg
    with pytest.raises(ValueError, match="wav"):
        AudioStage(Settings(output="wav"))
    with pytest.raises(ConfigError, match=r"'sources'\[0\]: unknown key 'positon'"):
        build(Settings, {"sources": [{"name": "a", "positon": [0, 0, -1]}]},
              "run.toml [stage.settings]")


def test_no_device_falls_back_headless_or_fails_clearly(monkeypatch, caplog, tmp_path):
    def no_device(*args, **kwargs):
        raise AudioError("no audio output: PortAudio not loadable (test)")

    monkeypatch.setattr(stage, "open_device", no_device)
    with caplog.at_level(logging.WARNING):
        st = AudioStage(Settings(output="auto", wav=tmp_path / "fallback.wav"))
        run_stages([st, Head()], 5)
    assert "rendering headless" in caplog.text and (tmp_path / "fallback.wav").is_file()
    assert "PortAudio" in setup_error(Settings(output="device"))


def test_non_finite_pose_keeps_the_last_good_one(spherical):
    r, _ = renderer(spherical, [SourceSettings("a", position=(-1.0, 0.0, 0.0), signal="noise")])
    good = render(r, 5)
    bad = render(r, 5, np.full(7, np.nan, np.float32))
    assert np.all(np.isfinite(bad)) and rms(bad[0]) == pytest.approx(rms(good[0]), rel=0.2)


def test_the_head_rotation_map_gives_every_rotation_times_the_squared_length():
    """``_rotation_map() @ vec(q q^T)`` is |q|^2 R(q) for any quaternion (rolls and
    pitches too, which a yaw-only head never exercises), in float32 like the pose."""
    m = convolve._rotation_map()
    assert m.shape == (9, 16) and m.dtype == np.float32
    q = np.random.default_rng(4).standard_normal((50, 4)) * 2
    got = np.einsum("rk,nk->nr", m, np.einsum("ni,nj->nij", q, q).reshape(50, 16))
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    expected = quat.to_matrix(unit).reshape(50, 9) * (q * q).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_head_quaternion_of_any_length_turns_the_head_alike(spherical):
    """The head's rotation is taken from q q^T / |q|^2: a quaternion three times too
    long renders exactly as the unit one."""
    specs = [SourceSettings("a", position=(-1.0, 0.0, -1.0), signal="noise")]
    pose = yaw_pose(30.0)
    scaled = pose.copy()
    scaled[3:] *= 3.0
    expected = render(renderer(spherical, specs)[0], 4, pose)
    np.testing.assert_allclose(render(renderer(spherical, specs)[0], 4, scaled), expected,
                               atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize(("near_m", "far_m"), [(0.25, 0.1), (100.0, 250.0)])
def test_distance_gain_is_clamped_at_min_m_and_max_m(spherical, near_m, far_m):
    """Inside min_m (0.25 m) a source gets no louder, beyond max_m (100 m) no quieter:
    at the limit and past it, in the same direction, the blocks are the same."""
    def out(metres: float) -> np.ndarray:
        specs = [SourceSettings("a", position=(-metres, 0.0, 0.0), signal="noise")]
        return render(renderer(spherical, specs)[0], 3)

    at_limit = out(near_m)
    np.testing.assert_allclose(out(far_m), at_limit, atol=1e-6 * np.abs(at_limit).max())
    assert rms(at_limit) > 0


def on_objects(table: np.ndarray, specs: list[SourceSettings]) -> convolve.BinauralRenderer:
    """A renderer of sources that may sit on scene objects (two objects)."""
    srcs = sources.resolve(specs, RATE, Path("."), n_objects=2)
    n_fft = convolve.fft_size(BLOCK, table.shape[-1])
    return convolve.BinauralRenderer(convolve.spectra(table, n_fft), n_fft, BLOCK, srcs)


def test_a_source_never_placed_is_muted_and_the_others_keep_their_distance_gain(spherical):
    """Object 1's matrix is NaN from the start: its source is silent, and the source on
    object 0 (2 m away) sounds exactly as it does alone."""
    models = np.stack([np.eye(4), np.full((4, 4), np.nan)]).astype(np.float32)
    models[0, :3, 3] = [-2.0, 0.0, 0.0]
    a = SourceSettings("a", object_index=0, signal="noise")
    b = SourceSettings("b", object_index=1, signal="tone")
    both = on_objects(spherical, [a, b])
    alone = on_objects(spherical, [a])
    got = np.concatenate([both.render(IDENTITY, models).copy() for _ in range(3)], axis=1)
    expected = np.concatenate([alone.render(IDENTITY, models).copy() for _ in range(3)], axis=1)
    np.testing.assert_allclose(got, expected, atol=1e-6 * np.abs(expected).max())
    assert both.event_counts()["positions"].tolist() == [0, 3]


def test_a_source_on_an_object_needs_the_object_matrices(spherical):
    r = on_objects(spherical, [SourceSettings("car", object_index=0, signal="noise")])
    with pytest.raises(ValueError, match="^a sound source is attached to a scene object but "
                                         "no object matrices were given$"):
        r.render(IDENTITY)


def test_grid_lookup_is_bilinear_on_the_sphere():
    d = grid.directions()
    idx, w = grid.Locator(np, len(d))(d)
    nearest = idx[np.arange(len(d)), np.argmax(w, axis=1)]
    assert np.allclose(d[nearest], d) and np.allclose(w.max(axis=1), 1.0)
    r = np.random.default_rng(0).standard_normal((500, 3))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    idx, w = grid.Locator(np, 500)(r)
    blend = np.einsum("sj,sjc->sc", w, d[idx])
    cos = np.sum(blend / np.linalg.norm(blend, axis=1, keepdims=True) * r, axis=1)
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-6) and np.all(w >= 0)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5


@pytest.mark.gpu
def test_cupy_renders_what_numpy_renders(spherical, cupy_backend):
    cupy = cupy_backend.xp
    specs = [SourceSettings("a", position=(-1.0, 0.5, -2.0), signal="noise"),
             SourceSettings("b", position=(2.0, 0.0, 1.0), signal="chirp")]
    n_fft = convolve.fft_size(BLOCK, TAPS)
    srcs = sources.resolve(specs, RATE, Path("."), None)
    backend.select("numpy")
    on_cpu = convolve.BinauralRenderer(convolve.spectra(spherical, n_fft), n_fft, BLOCK, srcs)
    backend.select("cupy")
    gpu = convolve.BinauralRenderer(convolve.spectra(cupy.asarray(spherical), n_fft), n_fft,
                                    BLOCK, srcs)
    for k in range(30):
        pose = yaw_pose(3.0 * k)
        a = on_cpu.render(pose)
        b = gpu.render(cupy.asarray(pose)).get()
        assert np.abs(a - b).max() < 1e-4


def test_bundled_audio_demo_file_is_valid():
    from vrshare import resources
    from vrshare.app import make_stages
    from vrshare.config import load_run_file

    stages, _ = make_stages(load_run_file(resources.path("scenes", "audio_demo.toml")))
    audio = next(s for s in stages if isinstance(s, AudioStage))
    assert audio.settings.hrtf == "kemar" and len(audio.settings.sources) == 4
