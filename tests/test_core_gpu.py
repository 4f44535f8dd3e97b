"""The bank on CuPy (skipped without a CUDA device)."""

import numpy as np
import pytest

from vrshare import WeightBank, backend


@pytest.mark.gpu
def test_bank_allocates_on_the_device_and_snapshots_to_host(cupy_backend):
    cupy = cupy_backend.xp
    bank = WeightBank()
    x = bank.state("x", 4)
    assert isinstance(x, cupy.ndarray) and backend.array_module(x) is cupy
    bank.subscribe("x")
    x[...] = 3
    bank.stamp(("x",), 1)
    snap = bank.snapshot("x")
    assert isinstance(snap.data, np.ndarray) and snap.data.tolist() == [3.0] * 4
    assert bank.param("p", np.ones(3)) is bank.param("q", cupy.ones(3))
