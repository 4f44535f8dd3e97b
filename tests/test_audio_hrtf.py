"""Measured HRTF sets (SOFA): ears from the data, interpolation, Data.Delay, level, errors.

Every SOFA file here is written with sofar from an analytic spherical head: per ear a
short band-limited impulse, delayed by Woodworth's interaural delay and scaled by an
interaural level difference that grows with the lateral angle.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vrshare.stages.audio import AudioError, grid, hrtf

sofar = pytest.importorskip("sofar")

RATE, TAPS = 48000, 256
HEAD_A, C = 0.0875, 343.0
BASE = 40.0  # bulk delay of every response (samples)
ILD_DB = 20.0  # level difference at 90 deg lateral (dB)


def woodworth_itd(lat: np.ndarray) -> np.ndarray:
    """Interaural delay (s) for a lateral angle (rad, positive to the left)."""
    return HEAD_A / C * (lat + np.sin(lat))


def pulse(delay: np.ndarray, n: int) -> np.ndarray:
    """Windowed-sinc impulses at fractional ``delay`` samples, (..., n)."""
    t = np.arange(n) - delay[..., None]
    return np.sinc(t) * np.where(np.abs(t) < 16, np.cos(np.pi * t / 32) ** 2, 0.0)


def az_el_unit(az_deg, el_deg) -> np.ndarray:
    """SOFA frame: x front, y left, z up."""
    az, el = np.deg2rad(az_deg), np.deg2rad(el_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def head(u: np.ndarray) -> np.ndarray:
    """SOFA-frame unit vectors in the head frame (+X right, +Y up, -Z front)."""
    return np.stack([-u[:, 1], u[:, 2], -u[:, 0]], axis=1)


def analytic_ir(az_deg, el_deg, rate=RATE, n=TAPS, delay_in_data=False):
    """(M, 2, n) left/right responses and (M, 2) delays (samples)."""
    u = az_el_unit(np.asarray(az_deg, float), np.asarray(el_deg, float))
    lat = np.arcsin(np.clip(u[:, 1], -1, 1))
    itd = woodworth_itd(lat) * rate  # samples, positive: left ear earlier
    delays = np.stack([BASE - itd / 2, BASE + itd / 2], axis=1)
    gain = 10 ** (np.stack([1, -1])[None, :] * ILD_DB * np.sin(lat)[:, None] / 40)
    if delay_in_data:
        return gain[..., None] * pulse(np.full_like(delays, 8.0), n), delays - 8.0
    return gain[..., None] * pulse(delays, n), np.zeros_like(delays)


def write_sofa(path: Path, az, el, *, order="lr", position="right", delay=False,
               rate=RATE) -> Path:
    """``order`` "rl": receiver 0 is the right ear. ``position`` "wrong": ReceiverPosition
    says the opposite of the data (as old ARI files)."""
    ir, d = analytic_ir(az, el, rate, delay_in_data=delay)
    left_first = order == "lr"
    if not left_first:
        ir, d = ir[:, ::-1], d[:, ::-1]
    y0 = 0.09 if left_first == (position == "right") else -0.09
    sofa = sofar.Sofa("SimpleFreeFieldHRIR")
    sofa.Data_IR = ir
    sofa.Data_SamplingRate = float(rate)
    sofa.Data_Delay = d if delay else np.zeros((1, 2))
    sofa.SourcePosition = np.stack([np.asarray(az, float) % 360, el, np.full(len(az), 1.2)],
                                   axis=1)
    sofa.ReceiverPosition = np.array([[0, y0, 0], [0, -y0, 0]], float)[:, :, None]
    sofar.write_sofa(str(path), sofa)
    return path


def regular_set():
    el = np.arange(-80, 81, 10)
    az, el = np.meshgrid(np.arange(0, 360, 10), el)
    az, el = np.r_[az.ravel(), 0, 0], np.r_[el.ravel(), 90, -90]
    return az, el


def upper_set():
    az, el = np.meshgrid(np.arange(0, 360, 10), np.arange(-10, 81, 10))
    return np.r_[az.ravel(), 0], np.r_[el.ravel(), 90]


def irregular_set():
    r = np.random.default_rng(3).standard_normal((400, 3))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    az = np.degrees(np.arctan2(r[:, 1], r[:, 0]))
    el = np.degrees(np.arcsin(r[:, 2]))
    return np.r_[az, 0, 90, -90], np.r_[el, 0, 0, 0]


SETS = {"regular": regular_set, "upper": upper_set, "irregular": irregular_set}


def entry(az_head_deg: float, el_deg: float) -> int:
    """Grid entry; the grid's azimuth runs from the front towards the right."""
    row = int(round((el_deg + 90) / grid.STEP_DEG))
    return row * grid.N_AZ + int(round((az_head_deg % 360) / grid.STEP_DEG)) % grid.N_AZ


def level_db(h: np.ndarray) -> float:
    e = np.sum(h.astype(np.float64) ** 2, axis=-1)
    return float(10 * np.log10(e[0] / e[1]))


def centre_time(h: np.ndarray) -> np.ndarray:
    """Energy-centroid time of each ear's response (samples)."""
    e = h.astype(np.float64) ** 2
    return np.sum(e * np.arange(h.shape[-1]), axis=-1) / np.sum(e, axis=-1)


def load(path: Path, normalize="diffuse"):
    hrirs = hrtf.load(str(path), RATE, TAPS, path.parent, normalize=normalize)
    return hrirs, hrtf.on_grid(hrirs)


VARIANTS = [("lr", "right", False), ("rl", "right", False), ("lr", "wrong", False),
            ("rl", "wrong", True), ("lr", "right", True)]


@pytest.mark.parametrize("set_name", list(SETS))
@pytest.mark.parametrize("order,position,delay", VARIANTS)
def test_every_lateral_source_on_its_side(tmp_path, caplog, set_name, order, position, delay):
    az, el = SETS[set_name]()
    path = write_sofa(tmp_path / f"{set_name}.sofa", az, el, order=order, position=position,
                      delay=delay)
    with caplog.at_level(logging.WARNING):
        hrirs, table = load(path)
    warnings = [r for r in caplog.records if "ReceiverPosition" in r.getMessage()]
    assert len(warnings) == (1 if position == "wrong" else 0)
    if warnings:
        assert f"{set_name}.sofa" in warnings[0].getMessage()
    for elev in range(-60, 61, 10):
        for lat in range(10, 171, 10):
            for side, near in ((-1, 0), (1, 1)):  # head azimuth -lat: the left
                h = table[entry(side * lat, elev)]
                t = centre_time(h)
                ild = level_db(h) if near == 0 else -level_db(h)
                lead = (t[1] - t[0]) if near == 0 else (t[0] - t[1])
                where = (set_name, order, position, delay, elev, side * lat)
                assert ild > 0.5, where
                assert lead > 0.3, where
    # on the horizontal plane, ILD and ITD grow with the lateral angle (front to the side)
    ild = [level_db(table[entry(-a, 0)]) for a in range(0, 91, 10)]
    itd = [np.diff(centre_time(table[entry(-a, 0)]))[0] for a in range(0, 91, 10)]
    assert np.all(np.diff(ild) > -0.5), ild
    assert np.all(np.diff(itd) > -0.3), itd
    assert ild[-1] > 10 and itd[-1] > 0.5 * woodworth_itd(np.pi / 2) * RATE
    # every grid entry is a convex blend
    _, w = grid.interpolation_weights(hrirs.directions, grid.directions())
    assert np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0)


@pytest.mark.parametrize("set_name", list(SETS))
def test_measured_directions_are_reproduced_exactly(tmp_path, set_name):
    az, el = SETS[set_name]()
    hrirs, table = load(write_sofa(tmp_path / "s.sofa", az, el))
    targets = grid.directions()
    cos = targets @ hrirs.directions.T
    g, m = np.nonzero(cos > np.cos(1e-7))
    assert len(g) >= 3
    idx, w = grid.interpolation_weights(hrirs.directions, targets)
    assert np.all(w[g, 0] == 1.0) and np.all(idx[g, 0] == m)
    np.testing.assert_array_equal(table[g], hrirs.hrir[m])


def test_weights_are_convex_and_contain_the_direction():
    az, el = irregular_set()
    measured = head(az_el_unit(az, el))
    r = np.random.default_rng(1).standard_normal((2000, 3))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    idx, w = grid.interpolation_weights(measured, r)
    assert np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0)
    blend = np.einsum("gj,gjc->gc", w, measured[idx])
    blend /= np.linalg.norm(blend, axis=1, keepdims=True)
    assert np.allclose(blend, r, atol=1e-9)  # a triangle that contains the direction


def test_below_an_upper_hemisphere_set_keeps_the_side():
    az, el = upper_set()
    measured = az_el_unit(az, el)
    t_az = np.array([60.0, 90.0, 120.0, -60.0, -90.0, -120.0])
    idx, w = grid.interpolation_weights(head(measured), head(az_el_unit(t_az, np.full(6, -70.0))))
    for k, a in enumerate(t_az):
        used = measured[idx[k][w[k] > 0]]
        assert np.all(np.sign(used[:, 1]) == np.sign(np.sin(np.deg2rad(a)))), (a, used)
        ring = np.isclose(np.degrees(np.arcsin(measured[idx[k], 2])), -10.0)
        assert w[k][ring].sum() > 0.9  # (nearly all) the lowest ring's, at that azimuth


def test_horizontal_plane_set_blends_along_the_ring():
    az = np.arange(0, 360, 15.0)
    measured = az_el_unit(az, np.zeros_like(az))
    idx, w = grid.interpolation_weights(head(measured), head(az_el_unit(np.array([100.0]),
                                                                        np.array([40.0]))))
    assert sorted(az[idx[0][w[0] > 0]]) == [90.0, 105.0]
    assert np.allclose(sorted(w[0][w[0] > 0]), [1 / 3, 2 / 3])


def test_delay_is_applied_and_resampled(tmp_path):
    az, el = regular_set()
    _, plain = load(write_sofa(tmp_path / "a.sofa", az, el))
    _, delayed = load(write_sofa(tmp_path / "b.sofa", az, el, delay=True))
    for e in (entry(-90, 0), entry(45, 20), entry(0, 0)):
        assert np.allclose(centre_time(plain[e]), centre_time(delayed[e]), atol=0.5)
    hrirs = hrtf.load(str(write_sofa(tmp_path / "c.sofa", az, el, delay=True, rate=44100)),
                      RATE, TAPS, tmp_path)
    table = hrtf.on_grid(hrirs)
    lead = np.diff(centre_time(table[entry(-90, 0)]))[0]
    assert lead == pytest.approx(woodworth_itd(np.pi / 2) * RATE, abs=1.0)


def test_delay_longer_than_taps_warns(tmp_path, caplog):
    az, el = regular_set()
    path = write_sofa(tmp_path / "long.sofa", az, el, delay=True)
    with caplog.at_level(logging.WARNING):
        hrtf.load(str(path), RATE, 48, tmp_path)
    assert "hrir_taps" in caplog.text and "long.sofa" in caplog.text


@pytest.mark.parametrize("how", ["diffuse", "frontal", "none"])
def test_normalisation(tmp_path, caplog, how):
    az, el = regular_set()
    path = write_sofa(tmp_path / "lvl.sofa", az, el)
    raw, _ = load(path, "none")
    with caplog.at_level(logging.INFO):
        hrirs, _ = load(path, how)
    energy = np.sum(hrirs.hrir.astype(np.float64) ** 2, axis=-1)
    if how == "diffuse":
        assert np.mean(energy) == pytest.approx(1.0, rel=1e-4)
    elif how == "frontal":
        front = np.argmax(-hrirs.directions[:, 2])
        assert np.mean(energy[front]) == pytest.approx(1.0, rel=1e-4)
    else:
        np.testing.assert_array_equal(hrirs.hrir, raw.hrir)
    if how != "none":
        msg = next(r.getMessage() for r in caplog.records if "normalisation" in r.getMessage())
        assert "lvl.sofa" in msg and "dB" in msg


def test_errors_name_the_given_file(tmp_path):
    (tmp_path / "model.glb").write_bytes(b"glTF\x02\x00\x00\x00" + bytes(40))
    with pytest.raises(AudioError) as exc:
        hrtf.load("model.glb", RATE, TAPS, tmp_path)
    msg = str(exc.value)
    assert "model.glb" in msg and "not a SOFA file" in msg and ".sofa not found" not in msg
    az, el = regular_set()
    write_sofa(tmp_path / "real.sofa", az, el)
    (tmp_path / "real.hrtf").write_bytes((tmp_path / "real.sofa").read_bytes())
    assert hrtf.load("real.hrtf", RATE, TAPS, tmp_path).hrir.shape[0] == len(az)
    with pytest.raises(AudioError, match="missing.sofa"):
        hrtf.load("missing.sofa", RATE, TAPS, tmp_path)
    sofar.write_sofa(str(tmp_path / "tf.sofa"), sofar.Sofa("GeneralTF"))
    with pytest.raises(AudioError, match=r"'GeneralTF' is not supported; supported: "
                                         r"'SimpleFreeFieldHRIR'"):
        hrtf.load("tf.sofa", RATE, TAPS, tmp_path)


def test_run_to_a_wav_puts_a_left_source_on_the_left(tmp_path):
    from vrshare.cli import main

    az, el = regular_set()
    write_sofa(tmp_path / "head.sofa", az, el, order="rl", position="wrong")
    rows = ["t,device,px,py,pz,qx,qy,qz,qw"]
    for k in range(121):
        for dev, x in (("head", 0.0), ("left", -0.2), ("right", 0.2)):
            rows.append(f"{k / 60:.6f},{dev},{x},1.600000,0.000000,0,0,0,1")
    (tmp_path / "still.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "run.toml").write_text("""
[pipeline]
frame_hz = 90.0
clock = "virtual"

[[stage]]
type = "tracking"
[stage.settings]
source = "trace"
trace = "still.csv"
predictor = "none"

[[stage]]
type = "audio"
[stage.settings]
hrtf = "head.sofa"
output = "wav"
wav = "out.wav"
[[stage.settings.sources]]
name = "left"
position = [-2.0, 1.6, -0.3]
signal = "noise"
gain = 0.3
""")
    assert main(["run", str(tmp_path / "run.toml"), "--target", "none", "--frames", "45"]) == 0
    x, rate = sf.read(tmp_path / "out.wav")
    assert rate == RATE and x.shape[1] == 2 and len(x) > RATE // 4
    level = np.sqrt(np.mean(x[2048:] ** 2, axis=0))
    assert level[0] > 3 * level[1], level
