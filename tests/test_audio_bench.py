"""tools/bench_audio.py's pyBinSim peer: loaded from a side environment, or skipped saying how."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TOOLS = Path(__file__).resolve().parent.parent / "tools"


@pytest.fixture
def bench():
    sys.path.insert(0, str(TOOLS))
    saved = list(sys.path)
    try:
        import bench_audio

        yield bench_audio
    finally:
        sys.path[:] = saved
        sys.path.remove(str(TOOLS))


def fake_env(root: Path, convolver: str) -> Path:
    """A virtual environment's layout with a pybinsim package whose ``__init__`` fails to
    import (as pyaudio does without PortAudio) and the given ``convolver.py``."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    package = root / "lib" / version / "site-packages" / "pybinsim"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import pyaudio_that_is_not_there\n")
    (package / "convolver.py").write_text(convolver)
    return root


RECORDING_CONVOLVER = '''
import numpy as np
nThreads = 4
calls = []

class ConvolverFFTW:
    def __init__(self, ir_size, block_size, process_stereo):
        self.threads, self.block = nThreads, block_size
        calls.append(("init", ir_size, block_size, process_stereo))

    def setIR(self, filter, do_interpolation):
        left, right = filter.getFilter()
        calls.append(("setIR", left.shape, do_interpolation))

    def process(self, block):
        calls.append(("process", block.shape))
        return np.ones(self.block, np.float32), np.zeros(self.block, np.float32)
'''


def test_without_an_environment_the_peer_is_skipped_with_setup_steps(bench, tmp_path):
    for env in (None, tmp_path / "nothing-here"):
        module, note = bench.load_pybinsim(env)
        assert module is None
        assert "skipped" in note and "pip install --no-deps pybinsim pyfftw" in note


def test_a_convolver_that_does_not_import_is_skipped(bench, tmp_path):
    env = fake_env(tmp_path, "import pyfftw_that_is_not_there\n")
    module, note = bench.load_pybinsim(env)
    assert module is None and "does not import" in note and "pyfftw_that_is_not_there" in note


def test_only_convolver_py_is_loaded_and_driven_as_pybinsim_does(bench, tmp_path):
    module, note = bench.load_pybinsim(fake_env(tmp_path, RECORDING_CONVOLVER))
    assert module is not None and "one FFTW thread" in note
    assert "pybinsim" not in sys.modules  # the package (and its pyaudio) was not imported
    assert module.nThreads == 1
    block, taps = 64, 100
    grid_hrirs = np.zeros((5, 2, taps), np.float32)
    srcs = bench.scene(3, 8000)
    peer = bench.PyBinSim(module, grid_hrirs, srcs, block)
    assert all(c.threads == 1 for c in peer.convolvers)
    module.calls.clear()
    peer.locate = _FixedLocator(len(srcs))  # the 5-entry grid above has no real directions
    out = peer.render(np.array([0, 0, 0, 0, 0, 0, 1], np.float32))
    # per source, in order: a new filter with crossfade (whole blocks: 100 taps -> 2),
    # then the block; the sum over sources scaled by 1 / (2 S) as pyBinSim's callback does
    assert module.calls == [("setIR", (2, block), True), ("process", (block,))] * len(srcs)
    np.testing.assert_allclose(out[0], 3 / 6)
    np.testing.assert_allclose(out[1], 0.0)


class _FixedLocator:
    """Every direction on grid entry 4 (weight 1) and entry 0 (weight 0)."""

    def __init__(self, count: int) -> None:
        self.idx = np.tile([4, 0, 0, 0], (count, 1))
        self.weights = np.tile(np.float32([1, 0, 0, 0]), (count, 1))

    def __call__(self, unit: np.ndarray):
        return self.idx, self.weights
