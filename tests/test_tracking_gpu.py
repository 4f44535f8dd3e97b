"""The tracking stage on CuPy gives what it gives on NumPy (skipped without a CUDA device)."""

import numpy as np
import pytest

from vrshare import FrameLoop, Pipeline, StageConfig, VirtualClock, WeightBank, backend
from vrshare.layout import DEVICE_POSES, EYE_VIEW, PREDICTOR_WEIGHTS
from vrshare.stages.tracking import TrackingSettings, TrackingStage

pytestmark = pytest.mark.gpu


def run(predictor):
    stage = TrackingStage(TrackingSettings(predictor=predictor, filter=True, noise_mm=0.5,
                                           noise_deg=0.1))
    bank = WeightBank()
    pipeline = Pipeline([stage])
    pipeline.setup(bank, StageConfig(stage.settings))
    stats = FrameLoop(pipeline, bank, VirtualClock(90.0)).run(200)
    assert not stats.faults, stats.faults
    names = [DEVICE_POSES, EYE_VIEW] + ([PREDICTOR_WEIGHTS] if predictor == "learned" else [])
    return {n: backend.to_host(bank[n]) for n in names}, stage.rejections


@pytest.mark.parametrize("predictor", ["constant_acceleration", "learned"])
def test_cupy_matches_numpy(predictor, cupy_backend):
    on_gpu, rejections_gpu = run(predictor)
    backend.select("numpy")
    on_cpu, rejections_cpu = run(predictor)
    assert rejections_gpu == rejections_cpu
    for name, value in on_cpu.items():
        np.testing.assert_allclose(on_gpu[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
