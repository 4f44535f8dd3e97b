"""The strict backend: CuPy's host boundary, checked on NumPy (vrshare.strict)."""

from __future__ import annotations

import numpy as np
import pytest

from vrshare import backend, resources, strict
from vrshare.strict import HostCrossing, StrictArray


@pytest.fixture
def strict_backend(monkeypatch):
    """The strict backend for one test (raise mode, empty record), NumPy afterwards."""
    monkeypatch.setattr(strict.record, "mode", "raise")
    strict.record.clear()
    b = backend.select("strict")
    try:
        yield b
    finally:
        strict.record.clear()
        backend.select("numpy")


@pytest.fixture
def counting(strict_backend, monkeypatch):
    monkeypatch.setattr(strict.record, "mode", "count")
    return strict.record


def device(values, dtype="float32"):
    return backend.to_device(np.asarray(values, dtype))


FORBIDDEN = {
    "np.asarray": lambda x: np.asarray(x),
    "float": lambda x: float(x[0]),
    "int": lambda x: int(x[0]),
    "bool": lambda x: bool(x[0]),
    "if x.any()": lambda x: 1 if x.any() else 0,
    "item": lambda x: x[0].item(),
    "tolist": lambda x: x.tolist(),
    "numpy operand +": lambda x: x + np.ones(3, np.float32),
    "numpy operand ufunc": lambda x: np.multiply(x, np.ones(3, np.float32)),
    "numpy operand function": lambda x: np.concatenate([x, np.ones(3, np.float32)]),
    "numpy operand xp": lambda x: backend.array_module(x).maximum(x, np.zeros(3)),
    "get": lambda x: x.get(),
    "range(x)": lambda x: range(x.astype(np.int32)[0]),
}


@pytest.mark.parametrize("name", FORBIDDEN)
def test_each_forbidden_crossing_raises_naming_its_site(strict_backend, name):
    x = device([1, 2, 3])
    with pytest.raises(HostCrossing, match="test_core_strict.py:"):
        FORBIDDEN[name](x)


@pytest.mark.parametrize("name", FORBIDDEN)
def test_each_forbidden_crossing_is_recorded_in_counting_mode(counting, name):
    x = device([1, 2, 3])
    FORBIDDEN[name](x)
    (c,) = counting.crossings
    assert c.forbidden and "test_core_strict.py:" in c.site


COUNTED = {
    "boolean mask": lambda x: x[x > 1],
    "nonzero method": lambda x: x.nonzero(),
    "np.nonzero": lambda x: np.nonzero(x),
    "np.unique": lambda x: np.unique(x),
    "xp.flatnonzero": lambda x: backend.array_module(x).flatnonzero(x),
    "host data written in": lambda x: x.__setitem__(slice(None), np.zeros(3, np.float32)),
    "host index array": lambda x: x[np.array([0, 2])],
    "repr": lambda x: repr(x),
}


@pytest.mark.parametrize("name", COUNTED)
def test_syncs_are_allowed_and_counted_even_in_raise_mode(strict_backend, name):
    x = device([1, 2, 3])
    COUNTED[name](x)
    (c,) = strict.record.crossings
    assert not c.forbidden and "test_core_strict.py:" in c.site


def test_array_code_stays_on_the_device_and_matches_numpy(strict_backend):
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = backend.to_device(host)
    xp = backend.array_module(x)
    assert xp is strict.xp and isinstance(x, StrictArray) and not isinstance(x, np.ndarray)
    out = xp.empty((3, 4), np.float32)
    y = xp.sqrt(x * 2 + 1, out=out)
    z = (x @ x.T).sum(axis=1)
    w = np.linalg.norm(x, axis=1)  # a NumPy function on a device array stays there
    for a in (y, z, w, x.max(), xp.clip(x, 0, 5), x[1:, ::2].astype(np.float64)):
        assert isinstance(a, StrictArray)
    assert y is out
    np.testing.assert_allclose(backend.to_host(y), np.sqrt(host * 2 + 1))
    np.testing.assert_allclose(backend.to_host(z), (host @ host.T).sum(axis=1))
    np.testing.assert_allclose(backend.to_host(w), np.linalg.norm(host, axis=1), rtol=1e-6)
    assert strict.record.crossings == []


def test_to_host_and_to_device_are_the_declared_ways_across(strict_backend):
    before = (backend.transfers.to_host, backend.transfers.to_device)
    x = backend.to_device(np.ones(4, np.float32))
    back = backend.to_host(x)
    out = np.zeros(4, np.float32)
    backend.to_host(x, out=out)
    backend.to_device(np.full(4, 2, np.float32), out=x)
    assert type(back) is np.ndarray and out.tolist() == [1.0] * 4
    assert backend.to_host(x).tolist() == [2.0] * 4
    assert (backend.transfers.to_host - before[0], backend.transfers.to_device - before[1]) \
        == (3, 2)
    assert strict.record.crossings == []


def test_the_bank_allocates_strict_arrays(strict_backend):
    from vrshare import WeightBank

    bank = WeightBank()
    state = bank.state("s", (2, 3))
    param = bank.param("p", np.arange(3, dtype=np.float32))
    assert isinstance(state, StrictArray) and isinstance(param, StrictArray)
    bank.subscribe("s")
    assert type(bank.snapshot("s").data) is np.ndarray  # snapshots are host copies


def test_a_parameter_given_as_a_device_array_comes_through_a_counted_copy(strict_backend):
    """Device data (a model's weights already on the GPU) is hashed from an explicit,
    counted copy to the host, never an implicit crossing, and may change dtype there."""
    from vrshare import WeightBank

    backend.transfers.reset()
    weights = device([1.5, 2.5, 3.5])
    held = WeightBank().param("w", weights, dtype="float64")
    assert isinstance(held, StrictArray) and held.dtype == np.float64
    assert backend.transfers.by_label["to_host:w"] == 1
    assert backend.to_host(held).tolist() == [1.5, 2.5, 3.5]
    assert strict.record.crossings == []


def test_an_unknown_strict_mode_is_an_error(monkeypatch):
    from vrshare.errors import VrshareError

    monkeypatch.setenv(strict.MODE_VAR, "loud")
    with pytest.raises(VrshareError, match="VRSHARE_STRICT='loud'"):
        strict.Record()


def test_the_demo_has_no_implicit_crossing_in_a_steady_frame(counting):
    """Every built-in stage of the demo, the renderer's uploads and the headless target,
    on the strict backend: after the first frames, nothing crosses the host boundary
    but the declared copies (vrshare.backend.to_host / to_device)."""
    from vrshare.display import open_display

    run = open_display(resources.path("scenes", "demo.toml"), target="headless",
                       clock="virtual")
    with run:
        run.loop.run(5)  # first frames: uploads, constants, compiles
        counting.clear()
        stats = run.loop.run(10)
    assert stats.faults == []
    assert counting.crossings == [], "crossings in steady frames:\n" + counting.describe()


def test_a_stage_placed_on_the_host_sees_numpy_and_publishes_through_counted_copies(
        strict_backend):
    from stagekit import make

    from vrshare import FrameLoop, Pipeline, StageConfig, VirtualClock, WeightBank

    seen = []
    src = make("src", writes=("a",))
    host = make("host", reads=("a",), writes=("b",))
    host.device = "host"
    process = host.process
    host.process = lambda frame, bank: (seen.append(type(bank["a"])), process(frame, bank))
    bank = WeightBank()
    pipe = Pipeline([src, host])
    pipe.setup(bank, StageConfig(None))
    loop = FrameLoop(pipe, bank, VirtualClock(90.0))
    before = (backend.transfers.to_host, backend.transfers.to_device)
    stats = loop.run(3)
    assert stats.faults == [] and set(seen) == {np.ndarray}
    # each frame: one input down, one output up
    assert backend.transfers.to_host - before[0] == 3
    assert backend.transfers.to_device - before[1] == 3
    assert isinstance(bank["b"], StrictArray) and backend.to_host(bank["b"]).tolist() == [2.0] * 4
    assert strict.record.crossings == []


def test_device_gpu_on_numpy_is_a_setup_error_naming_the_stage():
    from stagekit import make

    from vrshare import Pipeline, StageConfig, WeightBank
    from vrshare.pipeline import StageSetupError

    st = make("needs_gpu", writes=("a",))
    st.device = "gpu"
    with pytest.raises(StageSetupError, match="'needs_gpu': device = 'gpu' needs a GPU"):
        Pipeline([st]).setup(WeightBank(), StageConfig(None))


def test_quaternion_maths_on_device_arrays_stays_on_the_device(strict_backend):
    """Each function takes its array module from its inputs: device inputs give device
    results equal to NumPy's, with no crossing of the host boundary."""
    from vrshare.geometry import quat

    q = np.array([[0.1, -0.2, 0.3, 0.9], [0.0, 0.6, 0.0, 0.8]])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    pose = np.concatenate([[[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], q], axis=1)
    rv = np.array([[0.2, -0.1, 0.4], [1e-9, 0.0, 0.0]])
    cases = {
        "conjugate": (quat.conjugate, q),
        "from_rotvec": (quat.from_rotvec, rv),
        "to_rotvec": (quat.to_rotvec, q),
        "pose_matrix": (quat.pose_matrix, pose),
        "rigid_inverse": (quat.rigid_inverse, quat.pose_matrix(pose)),
    }
    for name, (fn, host) in cases.items():
        got = fn(backend.to_device(host))
        assert isinstance(got, StrictArray), name
        np.testing.assert_allclose(backend.to_host(got), fn(host), atol=1e-12, err_msg=name)
    # the constant tables are copied to the device once (allowed, recorded as such)
    assert [c for c in strict.record.crossings if c.forbidden] == []
