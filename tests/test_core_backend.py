import os
import subprocess
import sys

import numpy as np
import pytest

from vrshare import backend


@pytest.fixture(autouse=True)
def numpy_again():
    """Each test may select another backend; the rest of the suite runs on NumPy."""
    yield
    backend.select("numpy")


def test_forced_numpy(monkeypatch):
    monkeypatch.setenv("VRSHARE_BACKEND", "numpy")
    b = backend.select()
    assert b.name == "numpy" and b.xp is np and not b.is_gpu
    assert "VRSHARE_BACKEND" in b.reason


def test_unknown_backend_is_an_error(monkeypatch):
    monkeypatch.setenv("VRSHARE_BACKEND", "torch")
    with pytest.raises(backend.BackendError, match="VRSHARE_BACKEND='torch'.*numpy, cupy"):
        backend.select()


def test_forcing_cupy_without_device_is_an_error(monkeypatch):
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a CUDA device is present")
    except Exception:
        pass
    monkeypatch.setenv("VRSHARE_BACKEND", "cupy")
    with pytest.raises(backend.BackendError, match="CuPy"):
        backend.select()


def test_automatic_choice_logs_its_reason(monkeypatch, caplog):
    monkeypatch.delenv("VRSHARE_BACKEND", raising=False)
    with caplog.at_level("INFO", logger="vrshare.backend"):
        b = backend.select()
    assert b.reason  # "CUDA device found" or why NumPy was chosen
    assert f"array backend: {b.reason}" in caplog.messages
    from vrshare.info import probe_backend

    assert probe_backend()["reason"] == b.reason  # and `vrshare info` shows it


def test_array_module_of_numpy_and_scalars():
    assert backend.array_module(np.zeros(3)) is np
    assert backend.array_module(1.0, np.zeros(2)) is np


def test_transfers_are_counted():
    backend.transfers.reset()
    host = np.arange(6, dtype=np.float32)
    dev = backend.to_device(host, label="x")
    assert dev is not host and np.array_equal(dev, host)
    out = np.empty(6, np.float32)
    assert backend.to_host(dev, out=out, label="x") is out
    backend.to_device(host, out=dev)
    t = backend.transfers
    assert (t.to_device, t.to_host) == (2, 1)
    assert (t.bytes_to_device, t.bytes_to_host) == (48, 24)
    assert t.by_label == {"to_device:x": 1, "to_host:x": 1, "to_device:": 1}


def test_import_vrshare_loads_numpy_only():
    code = (
        "import sys, vrshare, vrshare.pipeline, vrshare.weights, vrshare.config\n"
        "heavy = {'moderngl', 'cupy', 'xr', 'sounddevice', 'soundfile', 'glfw', 'OpenGL',"
        " 'scipy', 'trimesh', 'matplotlib', 'rich', 'sofar', 'array_api_compat'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "VRSHARE_BACKEND": ""})
    assert out.stdout.strip() == "[]"
