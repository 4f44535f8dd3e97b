"""The scene filter's compiled loops against its array code, and how the stage picks one."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from vrshare import ConfigError, Frame, StageConfig, WeightBank, backend, layout
from vrshare.stages import scene_filter
from vrshare.stages.scene_filter import SceneFilterSettings, SceneFilterStage
from vrshare.stages.scene_filter.synthetic import ObjectsStage, perspective, random_scene
from vrshare.testing import FixedEyes, FixedEyesSettings

numba = pytest.importorskip("numba", reason="the compiled loops need Numba (vrshare[fast])")

FILTER_LOG = "vrshare.stages.scene_filter.stage"


class Pair:
    """The same scene filtered by both paths, each with its own bank."""

    def __init__(self, scene, **settings) -> None:
        self.runs = []
        for kernel in ("numpy", "numba"):
            bank = WeightBank()
            objects = ObjectsStage(scene, moving=scene.count // 4, amplitude=3.0, period=0.5)
            eyes = FixedEyes(FixedEyesSettings(position=(0.0, 1.6, 0.0)))
            stage = SceneFilterStage(SceneFilterSettings(kernel=kernel, **settings))
            for st in (objects, eyes, stage):
                st.setup(bank, StageConfig(None))
            self.runs.append((bank, objects, eyes, stage))

    def step(self, k: int, orientation=None) -> None:
        frame = Frame(k, k / 90, k / 90, 1 / 90)
        for bank, objects, eyes, stage in self.runs:
            if orientation is not None:
                eyes.orientation = orientation
            objects.process(frame, bank)
            eyes.process(frame, bank)
            stage.process(frame, bank)

    def assert_same(self) -> None:
        (a, *_, sa), (b, *_, sb) = self.runs
        assert sa.drawn == sb.drawn
        count = sa.drawn
        np.testing.assert_array_equal(b[layout.DRAW_RANGES], a[layout.DRAW_RANGES])
        np.testing.assert_array_equal(b[layout.INSTANCES][:count], a[layout.INSTANCES][:count])
        np.testing.assert_array_equal(sb.lod, sa.lod)


@pytest.mark.parametrize("settings", [
    {},
    {"lod_hysteresis": 0.0},
    {"instance_budget": 700},
    {"lod_pixels": (160.0, 64.0, 20.0), "eye_height_px": 1024},
], ids=["distance", "no-band", "budget", "pixels"])
def test_compiled_loops_draw_what_the_array_code_draws_frame_for_frame(settings):
    from vrshare.geometry import quat

    scene = random_scene(np.random.default_rng(7), 5_000, extent=30.0)
    pair = Pair(scene, **settings)
    assert pair.runs[1][3]._compiled is not None and pair.runs[0][3]._compiled is None
    first, changed = None, 0
    for k in range(12):  # turning and moving objects: objects change LOD and slot
        pair.step(k, quat.from_yaw_pitch(0.5 * k, 0.1 * np.sin(k)))
        pair.assert_same()
        assert pair.runs[0][3].drawn > 0
        lod = pair.runs[0][3].lod.copy()
        first = lod if first is None else first
        changed = max(changed, int((lod != first).sum()))
    assert changed > 10  # the comparison covered LOD switches


def _bank_with(bounds: np.ndarray, view: np.ndarray | None = None,
               switches: tuple[float, ...] = (0.0,)) -> WeightBank:
    """One object per row of ``bounds`` (model = translation to its centre), one mesh
    with LODs switching at ``switches`` (m), both eyes at the origin looking down -Z
    with a 90-degree field of view."""
    n = len(bounds)
    bank = WeightBank()
    model = bank.param(layout.OBJECT_MODEL, np.tile(np.eye(4, dtype=np.float32), (n, 1, 1)))
    model[:, :3, 3] = np.nan_to_num(bounds[:, :3])
    bank.param(layout.OBJECT_BOUNDS, bounds.astype(np.float32))
    bank.param(layout.OBJECT_MESH, np.zeros(n, np.int32))
    color = np.zeros((n, 4), np.float32)
    color[:, 0] = np.arange(n)
    bank.param(layout.OBJECT_COLOR, color)
    bank.param(layout.OBJECT_IMPORTANCE, np.ones(n, np.float32))
    draw, distance = layout.lod_tables([list(switches)])
    bank.param(layout.MESH_LOD_DRAW, draw)
    bank.param(layout.MESH_LOD_DISTANCE, distance)
    views = np.stack([np.eye(4, dtype=np.float32)] * 2) if view is None else view
    bank.param(layout.EYE_VIEW, views.astype(np.float32))
    proj = perspective((-np.pi / 4, np.pi / 4, np.pi / 4, -np.pi / 4), 0.1, 100.0)
    bank.param(layout.EYE_PROJ, np.stack([proj] * 2).astype(np.float32))
    return bank


def _drawn(bounds: np.ndarray, kernel: str, view: np.ndarray | None = None) -> list[int]:
    bank = _bank_with(bounds, view)
    stage = SceneFilterStage(SceneFilterSettings(kernel=kernel))
    stage.setup(bank, StageConfig(None))
    stage.process(Frame(0, 0.0, 0.0, 0.011), bank)
    rows = backend.to_host(bank[layout.INSTANCES][:stage.drawn])
    return sorted(rows[:, 16].astype(int).tolist())


@pytest.mark.filterwarnings("ignore:invalid value encountered in matmul:RuntimeWarning")
def test_non_finite_spheres_are_culled_alike_by_both_paths():  # NumPy warns of inf - inf
    nan, inf = np.nan, np.inf
    bounds = np.array([
        [0, 0, -5, 1],  # in view
        [nan, 0, -5, 1],  # a NaN centre
        [0, 0, -5, nan],  # a NaN radius
        [inf, 0, -5, 1],  # an infinite centre: some plane value is NaN (inf - inf)
        [0, 0, -5, inf],  # an infinite radius: on the inner side of every plane
        [0, 0, 5, 1],  # behind
    ], np.float32)
    assert _drawn(bounds, "numba") == _drawn(bounds, "numpy") == [0, 4]


def test_a_nan_eye_matrix_culls_everything_on_both_paths():
    bounds = np.array([[0, 0, -5, 1], [1, 0, -8, 1]], np.float32)
    view = np.stack([np.eye(4, dtype=np.float32)] * 2)
    assert _drawn(bounds, "numba", view) == [0, 1]
    view[0, 0, 0] = np.nan  # one eye's matrix is NaN: every plane value of it is NaN
    assert _drawn(bounds, "numba", view) == _drawn(bounds, "numpy", view) == []


def test_auto_takes_the_compiled_loops_and_logs_it(caplog):
    with caplog.at_level(logging.INFO, logger=FILTER_LOG):
        assert _drawn(np.array([[0, 0, -5, 1]], np.float32), "auto") == [0]
    assert caplog.messages == ["scene_filter: compiled loops (Numba) for 1 objects"]


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_setup_draws_nothing_and_leaves_every_lod_at_zero(kernel):
    # objects in view at 30 m, past the 10 m switch: the first frame, not setup, moves
    # them to LOD 1 (compiling the loops at setup must not run them on the scene)
    bounds = np.array([[0, 0, -30, 1], [2, 0, -30, 1]], np.float32)
    bank = _bank_with(bounds, switches=(0.0, 10.0))
    stage = SceneFilterStage(SceneFilterSettings(kernel=kernel))
    stage.setup(bank, StageConfig(None))
    assert not bank[layout.DRAW_RANGES].any() and not stage.lod.any() and stage.drawn == 0
    stage.process(Frame(0, 0.0, 0.0, 0.011), bank)
    assert bank[layout.DRAW_RANGES].tolist() == [[0, 0], [0, 2]] and stage.lod.tolist() == [1, 1]


def test_without_numba_auto_falls_back_visibly_and_numba_is_an_error(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.delitem(sys.modules, "vrshare.stages.scene_filter.kernel", raising=False)
    monkeypatch.delattr(scene_filter, "kernel", raising=False)
    bounds = np.array([[0, 0, -5, 1]], np.float32)
    with caplog.at_level(logging.INFO, logger=FILTER_LOG):
        assert _drawn(bounds, "auto") == [0]
    [message] = caplog.messages
    assert message.startswith("scene_filter: array code for 1 objects: Numba is not importable")
    assert "vrshare[fast]" in message
    with pytest.raises(ConfigError, match=r"scene_filter settings 'kernel' = 'numba': Numba"):
        _drawn(bounds, "numba")


def test_on_another_backend_auto_uses_the_array_code_and_numba_is_an_error(caplog):
    backend.select("strict")
    try:
        bounds = np.array([[0, 0, -5, 1]], np.float32)
        with caplog.at_level(logging.INFO, logger=FILTER_LOG):
            assert _drawn(bounds, "auto") == [0]
        assert "the array backend is" in caplog.text
        with pytest.raises(ConfigError, match="'kernel' = 'numba': the array backend"):
            _drawn(bounds, "numba")
    finally:
        backend.select("numpy")


def test_kernel_setting_is_checked():
    from vrshare.config import build

    with pytest.raises(ConfigError, match="kernel"):
        build(SceneFilterSettings, {"kernel": "fortran"}, "x.toml [stage.settings]")
