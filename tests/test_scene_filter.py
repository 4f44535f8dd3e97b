"""The scene-filter stage against its brute-force per-object reference, on both of its
paths (the array code and the compiled loops)."""

from __future__ import annotations

import importlib.util
import math
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrshare import (
    ConfigError,
    Frame,
    Pipeline,
    StageConfig,
    VirtualClock,
    WeightBank,
    layout,
    to_device,
)
from vrshare.config import build
from vrshare.geometry import eyes, quat
from vrshare.pipeline import FrameLoop, StageSetupError, resolve
from vrshare.stages.scene_filter import SceneFilterSettings, SceneFilterStage
from vrshare.stages.scene_filter.reference import reference_filter
from vrshare.stages.scene_filter.synthetic import (
    ObjectsStage,
    SceneArrays,
    perspective,
    random_scene,
)
from vrshare.testing import FixedEyes, FixedEyesSettings

CULL_TOL = 1e-3  # m: objects this close to flipping visibility are left out of comparisons
LOD_TOL = 1e-3  # m: likewise for a LOD switch distance

HAVE_NUMBA = importlib.util.find_spec("numba") is not None


@pytest.fixture(autouse=True, scope="module", params=[
    "numpy", pytest.param("numba", marks=pytest.mark.skipif(
        not HAVE_NUMBA, reason="the compiled loops need Numba (vrshare[fast])"))])
def kernel(request):
    """Every test of a :class:`Rig` runs on each filter path."""
    Rig.kernel = request.param
    yield request.param
    Rig.kernel = "auto"


def head_views(yaw: float = 0.0, ipd: float = 0.0) -> np.ndarray:
    """World -> eye matrices (2, 4, 4) of a head at the origin turned by ``yaw`` (rad)."""
    return eyes.eye_views(np.r_[0.0, 0.0, 0.0, quat.from_yaw_pitch(yaw)], ipd)


class Rig:
    """A bank with an object table, eye matrices written by hand, and the filter."""

    kernel = "auto"  # the filter path; the module's fixture sets each in turn

    def __init__(self, scene: SceneArrays, views=None, projs=None, *, hysteresis=0.1,
                 budget=0, **lod) -> None:
        self.scene = scene
        self.bank = WeightBank()
        self.objects = ObjectsStage(scene)
        self.objects.setup(self.bank, StageConfig(None))
        self.view = self.bank.state(layout.EYE_VIEW, (2, 4, 4))
        self.proj = self.bank.state(layout.EYE_PROJ, (2, 4, 4))
        if views is None:
            views = head_views(ipd=0.064)
        if projs is None:
            projs = np.stack([perspective((-0.8, 0.8, 0.8, -0.8), 0.05, 100.0)] * 2)
        self.look(views, projs)
        self.settings = SceneFilterSettings(hysteresis, budget, kernel=self.kernel, **lod)
        self.stage = SceneFilterStage(self.settings)
        self.stage.setup(self.bank, StageConfig(self.settings))
        self.frame = 0

    def look(self, views, projs=None) -> None:
        to_device(np.asarray(views, np.float32), out=self.view)
        if projs is not None:
            to_device(np.asarray(projs, np.float32), out=self.proj)

    def place(self, centres: np.ndarray) -> None:
        """Move the objects (in place, as the motion stage does)."""
        self.bank[layout.OBJECT_BOUNDS][:, :3] = centres
        self.bank[layout.OBJECT_MODEL][:, :3, 3] = centres

    def step(self):
        """Run one frame; return the reference for it (fed the stage's previous LOD)."""
        prev = self.stage.lod.copy()
        self.stage.process(Frame(self.frame, 0.0, 0.0, 0.011), self.bank)
        self.frame += 1
        b = self.bank
        s = self.scene
        return reference_filter(b[layout.OBJECT_MODEL], b[layout.OBJECT_BOUNDS], s.mesh, s.color,
                                s.importance, s.lod_draw, s.lod_distance, b[layout.EYE_VIEW],
                                b[layout.EYE_PROJ], prev, hysteresis=self.settings.lod_hysteresis,
                                budget=self.settings.instance_budget,
                                lod_pixels=self.settings.lod_pixels,
                                eye_height_px=self.settings.eye_height_px)

    def drawn(self) -> tuple[np.ndarray, np.ndarray]:
        """Object ids of the drawn instances (colour R holds the id) and each one's slot."""
        count = self.stage.drawn
        rows = self.bank[layout.INSTANCES][:count]
        ranges = self.bank[layout.DRAW_RANGES]
        slots = np.repeat(np.arange(len(ranges)), ranges[:, 1])
        return rows[:, 16].astype(int), slots


def tagged(scene: SceneArrays) -> SceneArrays:
    """The scene with each object's id in its colour's red channel (exact up to 2**24)."""
    color = scene.color.copy()
    color[:, 0] = np.arange(scene.count)
    return replace(scene, color=color)


def scene_at(centres, radii, *, mesh=None, importance=None,
             levels=((0.0, 10.0, 20.0),)) -> SceneArrays:
    centres = np.asarray(centres, np.float32).reshape(-1, 3)
    n = len(centres)
    model = np.tile(np.eye(4, dtype=np.float32), (n, 1, 1))
    model[:, :3, 3] = centres
    bounds = np.zeros((n, 4), np.float32)
    bounds[:, :3] = centres
    bounds[:, 3] = radii
    draw, distance = layout.lod_tables([list(d) for d in levels])
    return tagged(SceneArrays(
        model=model, bounds=bounds,
        mesh=np.zeros(n, np.int32) if mesh is None else np.asarray(mesh, np.int32),
        color=np.ones((n, 4), np.float32),
        importance=np.ones(n, np.float32) if importance is None else np.asarray(importance,
                                                                                np.float32),
        lod_draw=draw, lod_distance=distance))


def check(rig: Rig, ref) -> None:
    """The stage's outputs agree with the reference, away from rounding ties."""
    ids, slots = rig.drawn()
    n = rig.scene.count
    sure = ref.cull_margin > CULL_TOL
    drawn = np.zeros(n, bool)
    drawn[ids] = True
    assert len(set(ids.tolist())) == len(ids), "an object was drawn twice"
    np.testing.assert_array_equal(drawn[sure], ref.kept[sure])
    # instance rows hold the right matrices and colours, and the ranges tile the buffer
    rows = rig.bank[layout.INSTANCES][: len(ids)]
    model = rig.bank[layout.OBJECT_MODEL]
    np.testing.assert_array_equal(rows[:, :16], model[ids].transpose(0, 2, 1).reshape(-1, 16))
    np.testing.assert_array_equal(rows[:, 16:], rig.scene.color[ids])
    ranges = rig.bank[layout.DRAW_RANGES]
    assert ranges[:, 1].sum() == len(ids) == rig.stage.drawn
    np.testing.assert_array_equal(ranges[:, 0], np.cumsum(ranges[:, 1]) - ranges[:, 1])
    for first, count in ranges:
        assert np.all(np.diff(ids[first:first + count]) > 0), "a range is not in index order"
    # LOD choices and draw slots
    lod_sure = sure & (ref.lod_margin > LOD_TOL)
    np.testing.assert_array_equal(np.asarray(rig.stage.lod)[lod_sure], ref.lod[lod_sure])
    ok = lod_sure[ids]
    np.testing.assert_array_equal(slots[ok], ref.slot[ids][ok])
    if lod_sure.all():
        np.testing.assert_array_equal(rows, ref.instances)
        np.testing.assert_array_equal(ranges, ref.draw_ranges)


def random_eyes(rng: np.random.Generator, near: float, far: float):
    q = quat.normalize(rng.normal(size=4))  # a uniformly random orientation
    views = eyes.eye_views(np.r_[rng.uniform(-5, 5, 3), q], rng.uniform(0.0, 0.5))
    projs = []
    for _ in range(2):
        left, right = -rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0)
        down, up = -rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0)
        projs.append(perspective((left, right, up, down), near, far))
    return views, np.stack(projs)


# -- property-based: random scenes, eyes and motion ----------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120),
       hysteresis=st.sampled_from([0.0, 0.1, 0.35]), near=st.floats(0.05, 3.0),
       depth=st.floats(5.0, 60.0), levels=st.integers(1, 4))
def test_matches_reference_over_frames(seed, n, hysteresis, near, depth, levels):
    rng = np.random.default_rng(seed)
    scene = tagged(random_scene(rng, n, extent=25.0, meshes=3, levels=levels, lod_step=6.0))
    views, projs = random_eyes(rng, near, near + depth)
    rig = Rig(scene, views, projs, hysteresis=hysteresis)
    centres = scene.bounds[:, :3].copy()
    for _ in range(4):
        check(rig, rig.step())
        centres += rng.normal(0, 1.5, centres.shape).astype(np.float32)
        rig.place(centres)
        if rng.random() < 0.3:
            rig.look(*random_eyes(rng, near, near + depth))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120),
       hysteresis=st.sampled_from([0.0, 0.1, 0.35]), levels=st.integers(1, 4),
       pixels=st.lists(st.floats(4.0, 800.0), min_size=1, max_size=3),
       height=st.integers(64, 4096))
def test_switching_by_projected_size_matches_reference(seed, n, hysteresis, levels, pixels,
                                                       height):
    rng = np.random.default_rng(seed)
    scene = tagged(random_scene(rng, n, extent=25.0, meshes=3, levels=levels, lod_step=6.0))
    views, projs = random_eyes(rng, 0.1, 80.0)
    rig = Rig(scene, views, projs, hysteresis=hysteresis,
              lod_pixels=tuple(sorted(pixels, reverse=True)), eye_height_px=height)
    centres = scene.bounds[:, :3].copy()
    for _ in range(3):
        check(rig, rig.step())
        centres += rng.normal(0, 1.5, centres.shape).astype(np.float32)
        rig.place(centres)


def test_objects_switch_at_the_same_projected_size_whatever_their_radius():
    # 90 degree frustum, 1000 px high: f = 500 px; LOD 1 below 100 px, LOD 2 below 20 px,
    # i.e. from d = 10 r and d = 50 r
    radii = np.array([0.05, 0.5, 5.0])
    levels = ((0.0, 1.0, 2.0),)  # distances the pixel sizes override
    for ratio, expected in ((9.9, 0), (10.1, 1), (49.9, 1), (50.1, 2)):
        centres = np.c_[np.zeros(3), np.zeros(3), -ratio * radii]
        rig = Rig(scene_at(centres, radii, levels=levels), *one_eye(far=1000.0),
                  hysteresis=0.0, lod_pixels=(100.0, 20.0), eye_height_px=1000)
        rig.step()
        assert np.asarray(rig.stage.lod).tolist() == [expected] * 3, ratio


def test_projected_size_switching_keeps_the_hysteresis_band():
    rig = Rig(scene_at([[0.0, 0.0, -10.0]], [1.0]), *one_eye(far=1000.0), hysteresis=0.1,
              lod_pixels=(100.0,), eye_height_px=1000)  # switch at d = 10 m (100 px)
    lods = []
    for d in (10.5, 11.1, 10.0, 9.1, 8.9, 10.5):
        rig.place(np.array([[0.0, 0.0, -d]], np.float32))
        rig.step()
        lods.append(int(np.asarray(rig.stage.lod)[0]))
    assert lods == [0, 1, 1, 1, 0, 0]


def test_projected_size_settings_are_checked():
    with pytest.raises(ConfigError) as needs:
        SceneFilterSettings(lod_pixels=(100.0,))
    assert str(needs.value) == ("scene_filter settings: 'lod_pixels' needs 'eye_height_px' "
                                "(the eye's vertical resolution, px: the display's height)")
    with pytest.raises(ConfigError) as order:
        SceneFilterSettings(lod_pixels=(20.0, 100.0), eye_height_px=512)
    assert str(order.value) == ("scene_filter settings 'lod_pixels': sizes must decrease "
                                "(LOD 1 first), got [20.0, 100.0]")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 150), budget=st.integers(1, 60))
def test_budget_keeps_the_top_ranked_visible_objects(seed, n, budget):
    rng = np.random.default_rng(seed)
    scene = tagged(random_scene(rng, n, extent=20.0))
    views, projs = random_eyes(rng, 0.1, 60.0)
    free = Rig(scene, views, projs)
    free.step()
    visible = set(free.drawn()[0].tolist())
    capped = Rig(scene, views, projs, budget=budget)
    ref = capped.step()
    check(capped, ref)
    kept = set(capped.drawn()[0].tolist())
    assert kept <= visible
    assert len(kept) == min(budget, len(visible))
    dropped = visible - kept
    if kept and dropped:
        assert min(ref.score[list(kept)]) >= max(ref.score[list(dropped)]) - 1e-5


# -- targeted cases ------------------------------------------------------------------------

def one_eye(near=0.1, far=100.0, tan=1.0):
    """Both eyes at the origin looking down -Z, 90 degree symmetric frustum."""
    fov = (-math.atan(tan), math.atan(tan), math.atan(tan), -math.atan(tan))
    return head_views(), np.stack([perspective(fov, near, far)] * 2)


def visible_ids(rig: Rig) -> list[int]:
    rig.step()
    return sorted(rig.drawn()[0].tolist())


def test_object_straddling_a_side_plane_is_kept_until_wholly_outside():
    # the left plane passes through the origin with inward normal (1, 0, -1)/sqrt(2):
    # centre (-11, 0, -10) lies 1/sqrt(2) = 0.707 m outside it
    rig = Rig(scene_at([[-11, 0, -10]] * 2, [1.0, 0.6]), *one_eye())
    assert visible_ids(rig) == [0]


def test_objects_behind_the_viewer_are_culled():
    rig = Rig(scene_at([[0, 0, 5], [3, 1, 0.5], [0, 0, 3], [0, 0, -5]], [1.0, 0.3, 10.0, 1.0]),
              *one_eye())
    assert visible_ids(rig) == [2, 3]  # the large sphere reaches in front of the viewer


def test_objects_nearer_than_the_near_plane_are_culled():
    rig = Rig(scene_at([[0, 0, -0.5], [0, 0, -0.5], [0, 0, -1.5]], [0.2, 0.6, 0.1]),
              *one_eye(near=1.0))
    assert visible_ids(rig) == [1, 2]


def test_objects_beyond_the_far_plane_are_culled():
    rig = Rig(scene_at([[0, 0, -120], [0, 0, -104]], [1.0, 5.0]), *one_eye(far=100.0))
    assert visible_ids(rig) == [1]


def test_an_infinite_far_plane_culls_nothing_far_away():
    views, projs = one_eye(near=0.1)
    projs[:, 2] = [0, 0, -1, -0.2]  # the limit far -> infinity: the far plane vanishes
    rig = Rig(scene_at([[0, 0, -1e4], [0, 0, 1e4], [0, 0, -0.05]], 0.01), views, projs)
    rig.stage.process(Frame(0, 0.0, 0.0, 0.011), rig.bank)  # the reference needs a far plane
    assert rig.drawn()[0].tolist() == [0]


def test_an_object_seen_by_either_eye_is_kept():
    views = np.stack([head_views()[0], head_views(yaw=-math.pi / 2)[0]])  # -Z, +X
    projs = one_eye()[1]
    rig = Rig(scene_at([[0, 0, -10], [10, 0, 0], [-10, 0, 0], [0, 0, 10]], 1.0), views, projs)
    assert visible_ids(rig) == [0, 1]


def test_empty_scene():
    rig = Rig(scene_at(np.zeros((0, 3)), np.zeros(0)))
    ref = rig.step()
    assert rig.stage.drawn == 0 and rig.bank[layout.INSTANCES].shape == (0, 20)
    np.testing.assert_array_equal(rig.bank[layout.DRAW_RANGES], ref.draw_ranges)
    assert rig.bank[layout.DRAW_RANGES].shape == (3, 2)


def test_nothing_visible_when_facing_away():
    rng = np.random.default_rng(3)
    centres = rng.uniform(-10, 10, (200, 3)) * [1, 1, 0] + [0, 0, -30]
    views, projs = one_eye()
    rig = Rig(scene_at(centres, 1.0), head_views(yaw=math.pi), projs)
    check(rig, rig.step())
    assert rig.stage.drawn == 0
    assert not rig.bank[layout.DRAW_RANGES][:, 1].any()


def test_everything_visible():
    rng = np.random.default_rng(4)
    z = rng.uniform(-30, -2, 300)
    centres = np.stack([rng.uniform(-0.5, 0.5, 300) * -z, rng.uniform(-0.5, 0.5, 300) * -z, z], 1)
    rig = Rig(scene_at(centres, 0.1, mesh=np.zeros(300)), *one_eye())
    ref = rig.step()
    check(rig, ref)
    assert rig.stage.drawn == 300
    np.testing.assert_array_equal(rig.bank[layout.DRAW_RANGES], ref.draw_ranges)


def test_lod_hysteresis_at_a_switch_distance():
    # one mesh, LOD 1 from 10 m; band +-10%: coarser from 11 m, finer below 9 m
    def run(hysteresis, distances):
        rig = Rig(scene_at([[0, 0, -5]], 0.5, levels=((0.0, 10.0),)),
                  head_views(), one_eye()[1],
                  hysteresis=hysteresis)
        lods = []
        for d in distances:
            rig.place(np.array([[0, 0, -d]], np.float32))
            check(rig, rig.step())
            lods.append(int(rig.stage.lod[0]))
            assert rig.drawn()[1].tolist() == [lods[-1]]  # the slot follows the LOD
        return lods

    path = [5, 10.5, 9.5, 10.5, 11.5, 10.5, 9.5, 10.5, 8.5, 10.5]
    assert run(0.1, path) == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert run(0.0, path) == [0, 1, 0, 1, 1, 1, 0, 1, 0, 1]


def test_lod_skips_levels_and_keeps_culled_objects_state():
    rig = Rig(scene_at([[0, 0, -5]], 0.5), *one_eye(), hysteresis=0.1)
    rig.step()
    rig.place(np.array([[0, 0, -30]], np.float32))
    rig.step()
    assert int(rig.stage.lod[0]) == 2  # 5 m -> 30 m jumps LOD 0 -> 2
    rig.place(np.array([[0, 0, 5]], np.float32))  # behind: not drawn, LOD kept
    rig.step()
    assert rig.stage.drawn == 0 and int(rig.stage.lod[0]) == 2
    rig.place(np.array([[0, 0, -5]], np.float32))
    rig.step()
    assert int(rig.stage.lod[0]) == 0


def test_budget_ranks_by_importance_times_projected_size_and_breaks_ties_by_index():
    # all at z = -10 m, radius 0.5 m: score = importance * 0.5 / sqrt(x^2 + 100)
    centres = [[x, 0, -10] for x in range(-4, 5)]
    importance = [0.1, 0.9, 0.5, 0.5, 0.5, 0.2, 0.3, 0.8, 0.05]
    rig = Rig(scene_at(centres, 0.5, importance=importance), *one_eye(), budget=4)
    assert visible_ids(rig) == [1, 3, 4, 7]  # 0.9, 0.8, then the two nearest 0.5s
    near_small = Rig(scene_at([[0, 0, -2], [0, 0, -20]], 0.5, importance=[0.2, 1.0]),
                     *one_eye(), budget=1)
    assert visible_ids(near_small) == [0]  # 0.2 x 0.25 beats 1.0 x 0.025
    ties = Rig(scene_at([[0, 0, -10]] * 5, 0.5), *one_eye(), budget=2)
    assert visible_ids(ties) == [0, 1]
    culled_first = Rig(scene_at([[0, 0, 10], [0, 0, -10], [0, 0, -10]], 0.5), *one_eye(),
                       budget=2)
    assert visible_ids(culled_first) == [1, 2]


def test_budget_fills_with_ties_only_after_the_objects_ranked_above_them():
    # two objects above the budget-th score, three tied at it: the first tie fills it
    importance = [0.5, 0.9, 0.5, 0.8, 0.5]
    rig = Rig(scene_at([[0, 0, -10]] * 5, 0.5, importance=importance), *one_eye(), budget=3)
    for _ in range(2):  # and again in a second frame
        assert visible_ids(rig) == [0, 1, 3]


def test_budget_scores_every_sphere_around_the_viewer_alike():
    # the viewer is inside all three (r / d = 1.2, 3, 2): each scores r / max(d, r) = 1,
    # so the tie goes to the lower indices
    rig = Rig(scene_at([[0, 0, -2.5], [0, 0, -1], [0, 0, -1.5]], 3.0), *one_eye(), budget=2)
    assert visible_ids(rig) == [0, 1]


# -- the stage in a pipeline, settings and errors -----------------------------------------

def test_pipeline_schedules_it_after_objects_and_eyes_with_moving_objects():
    rng = np.random.default_rng(7)
    scene = tagged(random_scene(rng, 500, extent=20.0))
    objects = ObjectsStage(scene, moving=200, amplitude=3.0, period=0.5)
    camera = FixedEyes(FixedEyesSettings(position=(0, 1.6, 0), yaw_deg=math.degrees(0.4)))
    cls = resolve("scene_filter")
    assert cls is SceneFilterStage
    stage = cls(SceneFilterSettings(lod_hysteresis=0.2))
    bank = WeightBank()
    pipeline = Pipeline([stage, camera, objects])
    assert [s.name for s in pipeline.stages][-1] == "scene_filter"
    pipeline.setup(bank, StageConfig(None))
    loop = FrameLoop(pipeline, bank, VirtualClock(90.0))
    prev = np.zeros(500, int)
    for _ in range(6):
        stats = loop.run(1)
        ref = reference_filter(bank[layout.OBJECT_MODEL], bank[layout.OBJECT_BOUNDS], scene.mesh,
                               scene.color, scene.importance, scene.lod_draw,
                               scene.lod_distance, bank[layout.EYE_VIEW], bank[layout.EYE_PROJ],
                               prev, hysteresis=0.2, budget=0)
        prev = stage.lod.copy()
        sure = ref.cull_margin > CULL_TOL
        ids = bank[layout.INSTANCES][: stage.drawn, 16].astype(int)
        drawn = np.isin(np.arange(500), ids)
        np.testing.assert_array_equal(drawn[sure], ref.kept[sure])
    assert not stats.faults
    assert bank.version(layout.INSTANCES) == bank.version(layout.DRAW_RANGES) == 5
    pipeline.close()


def test_process_allocates_no_per_object_temporaries():
    rng = np.random.default_rng(11)
    n = 100_000
    rig = Rig(random_scene(rng, n, extent=40.0), *one_eye(), budget=5_000)
    rig.step()
    assert rig.stage.drawn == 5_000
    free = Rig(rig.scene, rig.bank[layout.EYE_VIEW], rig.bank[layout.EYE_PROJ])
    for r in (rig, free):
        r.stage.process(Frame(1, 0, 0, 0), r.bank)
        tracemalloc.start()
        r.stage.process(Frame(2, 0, 0, 0), r.bank)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # NumPy's casting buffers are bounded (~130 kB); one float32 per object is 400 kB
        assert peak < 250_000, f"process allocated {peak} bytes"


def test_settings_are_validated():
    with pytest.raises(ValueError, match="lod_hysteresis"):
        SceneFilterStage(SceneFilterSettings(lod_hysteresis=1.0))
    with pytest.raises(ValueError, match="instance_budget"):
        SceneFilterStage(SceneFilterSettings(instance_budget=-1))
    with pytest.raises(ValueError, match="blas_threads"):
        SceneFilterStage(SceneFilterSettings(blas_threads=-1))
    with pytest.raises(ConfigError, match="'instance_budget'"):
        build(SceneFilterSettings, {"instance_budget": 2.5}, "x.toml [stage.settings]")


def test_blas_threads_are_limited_only_while_the_stage_runs(monkeypatch):
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    rig = Rig(scene_at([[0, 0, -5]], 1.0), *one_eye())
    seen = []
    matmul = np.matmul

    def spy(*args, **kwargs):
        seen.extend(blas_threads())
        return matmul(*args, **kwargs)

    monkeypatch.setattr(np, "matmul", spy)
    assert visible_ids(rig) == [0]
    assert seen and set(seen) == {1}
    assert blas_threads() == before


def _setup_error(scene: SceneArrays, match: str) -> None:
    pipeline = Pipeline([ObjectsStage(scene), FixedEyes(), SceneFilterStage()])
    with pytest.raises(StageSetupError, match=match):
        pipeline.setup(WeightBank(), StageConfig(None))


def test_a_buffer_of_the_wrong_shape_names_the_stage_that_declared_it():
    scene = scene_at([[0, 0, -5]] * 3, 1.0)
    bad = replace(scene, color=np.ones((3, 3), np.float32))  # RGB, not RGBA
    pipeline = Pipeline([ObjectsStage(bad), FixedEyes(), SceneFilterStage()])
    with pytest.raises(StageSetupError, match=r"stage 'scene_filter' failed in setup: .*"
                       r"'object_color' is \(3, 3\) float32, expected \(3, 4\) float32 "
                       r"\(declared by stage 'objects'\)"):
        pipeline.setup(WeightBank(), StageConfig(None))


def test_bad_lod_tables_and_mesh_ids_fail_in_setup_naming_what_is_wrong():
    good = scene_at([[0, 0, -5]] * 2, 1.0, levels=((0.0, 10.0), (0.0, 4.0, 8.0)))
    _setup_error(replace(good, lod_distance=good.lod_distance[:, ::-1].copy()),
                 "mesh 0 switch distances")
    draw = good.lod_draw.copy()
    draw[1] = [2, -1, 3]
    _setup_error(replace(good, lod_draw=draw), "mesh 1 must have LOD 0 and contiguous")
    _setup_error(replace(good, mesh=np.array([0, 5], np.int32)), "object 1 has mesh 5")


def test_missing_or_misshapen_inputs_fail_in_setup():
    bank = WeightBank()
    with pytest.raises(ValueError) as missing:
        SceneFilterStage().setup(bank, StageConfig(None))
    assert str(missing.value) == ("buffer 'object_model' is not in the bank; the stage that "
                                  "writes it must declare it in its setup")
    flat = WeightBank()  # a model table that is not (N, 4, 4): expected with no objects
    flat.state(layout.OBJECT_MODEL, (3, 16))
    with pytest.raises(ValueError, match=r"'object_model' is \(3, 16\) float32, expected "
                                         r"\(0, 4, 4\) float32"):
        SceneFilterStage().setup(flat, StageConfig(None))
    scene = scene_at([[0, 0, -5]], 1.0)
    ObjectsStage(scene).setup(bank, StageConfig(None))
    bank.state(layout.EYE_VIEW, (4, 4))
    bank.state(layout.EYE_PROJ, (2, 4, 4))
    with pytest.raises(ValueError, match=r"'eye_view' is \(4, 4\) float32, expected \(2, 4, 4\)"):
        SceneFilterStage().setup(bank, StageConfig(None))


@pytest.mark.gpu
@pytest.mark.parametrize("lod", [{}, {"lod_pixels": (160.0, 64.0), "eye_height_px": 1024}])
def test_cupy_matches_numpy(cupy_backend, lod):
    rng = np.random.default_rng(5)
    scene = tagged(random_scene(rng, 20_000, extent=30.0))
    views, projs = random_eyes(rng, 0.05, 80.0)
    results = []
    for name in ("cupy", "numpy"):
        from vrshare import backend

        backend.select(name)
        rig = Rig(scene, views, projs, budget=3_000, **lod)
        for _ in range(2):
            rig.stage.process(Frame(0, 0, 0, 0), rig.bank)
        xp = rig.stage._xp
        to_np = (lambda a: a.get()) if xp is not np else np.asarray
        count = rig.stage.drawn
        results.append((to_np(rig.bank[layout.INSTANCES])[:count],
                        to_np(rig.bank[layout.DRAW_RANGES]), to_np(rig.stage.lod)))
    for got, want in zip(results[0], results[1], strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
