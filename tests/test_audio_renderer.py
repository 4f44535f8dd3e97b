"""The binaural renderer's set-up: what it refuses, and the copies it makes to the device
(once, each under the name the run's transfer counts report)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vrshare import backend, strict
from vrshare.stages.audio import SourceSettings, convolve, grid, hrtf, sources

RATE, BLOCK = 48000, 256


def yaw_pose(deg: float) -> np.ndarray:
    """Head at the origin turned ``deg`` degrees to the left (about +Y)."""
    a = np.deg2rad(deg) / 2
    return np.array([0, 0, 0, 0, np.sin(a), 0, np.cos(a)], np.float32)


def spectra(n_fft: int) -> np.ndarray:
    """Silent HRTF spectra of the grid's shape for an ``n_fft``-point FFT."""
    return np.zeros((grid.SIZE, 2, n_fft // 2 + 1), np.complex64)


@pytest.mark.parametrize("n_fft", [896, BLOCK])  # 3.5 blocks; one block
def test_an_fft_size_that_is_not_a_multiple_of_two_blocks_or_more_is_refused(n_fft):
    with pytest.raises(ValueError) as err:
        convolve.BinauralRenderer(spectra(n_fft), n_fft, BLOCK, [])
    assert str(err.value) == f"FFT size {n_fft} is not a multiple (>= 2) of the block {BLOCK}"


def test_set_up_copies_go_to_the_device_once_under_their_names():
    srcs = sources.resolve([SourceSettings("a", position=(1.0, 0.0, 0.0), signal="noise"),
                            SourceSettings("b", position=(0.0, 0.0, -1.0), signal="noise")],
                           RATE, Path("."), n_objects=None)
    backend.transfers.reset()
    convolve.BinauralRenderer(spectra(2 * BLOCK), 2 * BLOCK, BLOCK, srcs)
    assert backend.transfers.by_label == {
        "to_device:audio_signals": 4,  # samples, offsets, lengths, periods
        "to_device:audio_sources": 4,  # positions, objects, on-object flags, gains
        "to_device:audio_ramp": 1,
        "to_device:audio_constants": 3,  # rotation map, quaternion epsilon, held pose
    }


def test_on_a_device_backend_the_blocks_are_numpys(monkeypatch):
    """The strict backend takes the device path (every corner gathered each block, the
    checks as array operations) on NumPy's arithmetic: the blocks must come out the same
    as on the CPU path while the head turns sources across grid cells."""
    table = hrtf.on_grid(hrtf.spherical_head(RATE, 256))
    n_fft = convolve.fft_size(BLOCK, 256)
    srcs = sources.resolve([SourceSettings("a", position=(-1.0, 0.5, -2.0), signal="noise"),
                            SourceSettings("b", position=(2.0, 0.0, 1.0), signal="chirp")],
                           RATE, Path("."), n_objects=None)
    on_cpu = convolve.BinauralRenderer(convolve.spectra(table, n_fft), n_fft, BLOCK, srcs)
    poses = [yaw_pose(7.0 * k) for k in range(12)]
    expected = [on_cpu.render(pose).copy() for pose in poses]
    monkeypatch.setattr(strict.record, "mode", "count")
    backend.select("strict")
    try:
        device = convolve.BinauralRenderer(convolve.spectra(backend.to_device(table), n_fft),
                                           n_fft, BLOCK, srcs)
        got = [backend.to_host(device.render(backend.to_device(pose))) for pose in poses]
    finally:
        backend.select("numpy")
    for k, (a, b) in enumerate(zip(expected, got, strict=True)):
        np.testing.assert_allclose(b, a, atol=1e-6, err_msg=f"block {k}")
    assert np.abs(expected[-1]).max() > 0
