import os

import pytest

os.environ.setdefault("VRSHARE_BACKEND", "numpy")


def _cuda_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # not installed, or no driver/device
        return False


@pytest.fixture
def cupy_backend():
    """CuPy as the active backend for one test, NumPy again afterwards."""
    from vrshare import backend

    b = backend.select("cupy")
    try:
        yield b
    finally:
        backend.select("numpy")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip cleanly without CuPy and a CUDA device."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
        for item in gpu_items:
            item.add_marker(skip)
