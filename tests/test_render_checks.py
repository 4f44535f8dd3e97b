"""The renderer checks what it draws: buffers against the layout contract at bind, and
each frame draw ranges outside the instance buffer, non-finite instance rows and
non-finite eye matrices (drawn around, counted, warned about once)."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from glkit import gl_ctx, harness, mask  # noqa: F401  (fixtures)

import vrshare
from vrshare import backend, display, layout, strict
from vrshare.pipeline import FrameStats, Pipeline, StageConfig
from vrshare.render import Renderer, RenderError
from vrshare.render import renderer as rmod
from vrshare.render.regroup import InstanceDraw
from vrshare.scene import load_scene
from vrshare.stages.motion import SceneMotionStage
from vrshare.testing import FixedEyes, FixedEyesSettings

FLAT = [{"type": "directional", "intensity": 0.0}, {"type": "ambient", "intensity": 1.0}]
RED, GREEN = (255, 0, 0), (0, 255, 0)
SIZE = 32


def two_cubes(*names: str) -> dict:
    """A red cube on the left and a green one on the right: one mesh, two instances."""
    return {"background": [0.0, 0.0, 0.0], "light": FLAT,
            "primitive": [{"name": "cube", "shape": "box", "size": [0.8, 0.8, 0.8]}],
            "object": [{"mesh": "cube", "position": [x, 0.0, -3.0], "color": c}
                       for n, x, c in (("red", -0.7, [1, 0, 0]), ("green", 0.7, [0, 1, 0]))
                       if n in names]}


def frame(h, poke=None) -> np.ndarray:
    """One frame of harness ``h`` (the left eye), ``poke(bank)`` run after the stages:
    what a plug-in stage scheduled last would write."""
    f = h.clock.wait_frame()
    for st in h.pipeline.stages:
        st.process(f, h.bank)
    if poke is not None:
        poke(h.bank)
    h.renderer.render(f, h.target.surfaces(f))
    h.target.submit(f)
    return h.target.capture().copy()[:, :h.size]


def background(image: np.ndarray) -> bool:
    return bool(np.all(image[..., :3] == 0))


# -- at bind: the contract ------------------------------------------------------------------


class Writer(vrshare.Stage):
    """Declares the instance buffer and draw ranges as told (a broken plug-in)."""

    name = "bad_writer"
    writes = (layout.INSTANCES, layout.DRAW_RANGES)

    def __init__(self, instances=("float32", 20), ranges=("int32", 0)) -> None:
        super().__init__()
        self.instances, self.ranges = instances, ranges

    def setup(self, bank, config):
        (dtype, width), (rdtype, extra) = self.instances, self.ranges
        bank.state(layout.INSTANCES, (4, width), dtype)
        bank.state(layout.DRAW_RANGES, (1 + extra, 2), rdtype)

    def process(self, frame, bank):
        pass


def bind_error(gl_ctx, **writer) -> str:
    scene = load_scene(two_cubes("red", "green"), Path("."), Path("test.toml"))
    bank = vrshare.WeightBank()
    pipe = Pipeline([SceneMotionStage(), Writer(**writer), FixedEyes(FixedEyesSettings())])
    pipe.setup(bank, StageConfig(None, scene=scene))
    renderer = Renderer(gl_ctx, scene, gpu_timing=False)
    try:
        with pytest.raises(RenderError) as exc:
            renderer.bind(bank, declared_by=pipe.declared_by)
    finally:
        renderer.close()
        pipe.close()
    return str(exc.value)



def cube_run_file(folder: Path, stages: list[str]) -> Path:
    """A run file drawing one cube 3 m ahead into 16 x 16 px eyes through ``stages``."""
    path = folder / "run.toml"
    path.write_text('[pipeline]\nclock = "virtual"\n'
                    + "".join(f'[[stage]]\ntype = "{t}"\n' for t in stages)
                    + "[display]\nwidth = 16\nheight = 16\n[scene]\n"
                    '[[scene.primitive]]\nname = "cube"\nshape = "box"\n'
                    '[[scene.object]]\nmesh = "cube"\nposition = [0.0, 0.0, -3.0]\n')
    return path

def test_float64_instance_buffer_fails_at_bind_naming_buffer_and_stage(gl_ctx):
    msg = bind_error(gl_ctx, instances=("float64", 20))
    assert "'instances' is (4, 20) float64" in msg and "(capacity, 20) float32" in msg
    assert "declared by stage 'bad_writer'" in msg and "draw_ranges" not in msg


def test_wrong_instance_width_fails_at_bind(gl_ctx):
    msg = bind_error(gl_ctx, instances=("float32", 16))
    assert "'instances' is (4, 16) float32" in msg and "'bad_writer'" in msg


@pytest.mark.parametrize(("ranges", "what"), [(("int32", 2), "(3, 2) int32"),
                                              (("int64", 0), "(1, 2) int64"),
                                              (("float32", 0), "(1, 2) float32")])
def test_wrong_draw_ranges_fail_at_bind_naming_buffer_and_stage(gl_ctx, ranges, what):
    msg = bind_error(gl_ctx, ranges=ranges)
    assert f"'draw_ranges' is {what}, the renderer needs (1, 2) int32" in msg
    assert "for each of the scene's 1 draw slots" in msg
    assert "declared by stage 'bad_writer'" in msg


def test_every_mismatch_is_named_at_once(gl_ctx):
    msg = bind_error(gl_ctx, instances=("float64", 20), ranges=("int64", 1))
    assert "'instances' is" in msg and "'draw_ranges' is" in msg


def test_buffers_the_pipeline_lacks_are_named_with_the_stage_to_add(gl_ctx):
    scene = load_scene(two_cubes("red"), Path("."), Path("test.toml"))
    renderer = Renderer(gl_ctx, scene, gpu_timing=False)
    try:
        with pytest.raises(RenderError) as exc:
            renderer.render(None, [])
        assert str(exc.value) == "Renderer.render called before bind(bank)"
        with pytest.raises(RenderError) as exc:
            renderer.bind(vrshare.WeightBank())
    finally:
        renderer.close()
    assert str(exc.value) == (
        "the renderer draws from bank buffers the pipeline does not have: 'instances' (add a "
        "'passthrough' or 'scene_filter' stage), 'draw_ranges' (add a 'passthrough' or "
        "'scene_filter' stage), 'eye_view' (add a 'tracking' stage), 'eye_proj' (add a "
        "'tracking' stage)")


def test_closing_a_renderer_twice_does_nothing_more(harness):
    """Closing paths may meet (a failed set-up, then the run's own close)."""
    h = harness(two_cubes("red"), size=SIZE)
    renderer = Renderer(h.renderer.ctx, h.scene, gpu_timing=True)
    renderer.bind(h.bank)
    renderer.close()
    renderer.close()
    assert renderer.meshes == [] and renderer.programs == {}


@pytest.mark.parametrize("timing", [True, False])
def test_gpu_pass_times_are_tracked_only_when_asked(harness, timing):
    """(The times themselves, through the display path: test_render_targets.py.)"""
    h = harness(two_cubes("red"), size=SIZE)
    renderer = Renderer(h.renderer.ctx, h.scene, gpu_timing=timing)
    stats = FrameStats(["frame"], 1 / 90)
    try:
        renderer.bind(h.bank, stats)
    finally:
        renderer.close()
    gpu = [t for t in stats.tracks if t.startswith("gpu")]
    assert gpu == (["gpu left", "gpu right"] if timing else [])


def test_display_passes_the_declaring_stage(gl_ctx, tmp_path, monkeypatch):
    """Through open_display, a plug-in stage's float64 instance buffer is named with it."""
    (tmp_path / "wide_plugin.py").write_text(textwrap.dedent("""
        import vrshare

        class Wide(vrshare.Stage):
            name = "wide"
            writes = ("instances", "draw_ranges")

            def setup(self, bank, config):
                bank.state("instances", (8, 20), "float64")
                bank.state("draw_ranges", (1, 2), "int32")

            def process(self, frame, bank):
                pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wide_plugin", raising=False)
    run = cube_run_file(tmp_path, ["vrshare.testing:FixedEyes", "scene_motion",
                                   "wide_plugin:Wide"])
    with pytest.raises(RenderError, match=r"'instances' is \(8, 20\) float64.*"
                                          r"declared by stage 'wide'"):
        display.open_display(run, target="headless")


# -- each frame -----------------------------------------------------------------------------


@pytest.fixture
def cubes(harness):
    """(harness with both cubes, its clean frame, the red cube's clean frame alone)."""
    h = harness(two_cubes("red", "green"), size=SIZE)
    h.renderer.bind(h.bank, declared_by=h.pipeline.declared_by)  # as display.py does
    clean = frame(h)
    red = frame(harness(two_cubes("red"), size=SIZE))
    assert mask(clean, RED, 2).any() and mask(clean, GREEN, 2).any()
    return h, clean, red


@pytest.mark.parametrize(("first", "count", "drawn"), [
    (0, 1_000_000, "both"),  # past the end: clamped to the buffer's 2 rows
    (1, 2, "green"),  # one row past: clamped to row 1
    (-1, 2, "none"),  # negative first: skipped
    (0, -5, "none"),  # negative count: skipped
    (2_000_000_000, 2_000_000_000, "none"),  # first + count overflows int32: skipped
])
def test_draw_range_past_the_buffer_is_clamped(cubes, caplog, first, count, drawn):
    h, clean, red = cubes
    stats = FrameStats(["x"], 1 / 90)
    h.renderer.bind(h.bank, stats, declared_by=h.pipeline.declared_by)
    h.bank[layout.DRAW_RANGES][0] = [first, count]
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        images = [frame(h) for _ in range(3)]
    for image in images:
        if drawn == "both":
            np.testing.assert_array_equal(image, clean)
        elif drawn == "none":
            assert background(image)
        else:
            assert mask(image, GREEN, 2).any() and not mask(image, RED, 40).any()
    assert stats.counters["render"][rmod.RANGES_CLAMPED] == 3
    assert h.renderer.counts is stats.counters["render"]
    warnings = [r for r in caplog.records if "draw_ranges" in r.getMessage()]
    assert len(warnings) == 1 and "'passthrough'" in warnings[0].getMessage()
    assert np.array_equal(h.bank[layout.DRAW_RANGES][0], [first, count])  # the bank untouched
    h.bank[layout.DRAW_RANGES][0] = [0, 2]
    np.testing.assert_array_equal(frame(h), clean)


def test_on_a_device_backend_the_frame_is_the_same_through_the_renderers_named_copies(
        harness, monkeypatch):
    """The strict backend keeps the bank's arrays off the host but through declared
    copies: the renderer takes the ranges, the rows in use and both eye matrices that way."""
    on_numpy = harness(two_cubes("red", "green"), size=SIZE)
    frame(on_numpy)
    backend.transfers.reset()
    clean = frame(on_numpy)
    labels = {"to_host:draw_ranges": 1, "to_host:instances": 1, "to_host:eye": 2}
    assert labels.keys().isdisjoint(backend.transfers.by_label)  # NumPy: read in place
    monkeypatch.setattr(strict.record, "mode", "count")
    backend.select("strict")
    try:
        h = harness(two_cubes("red", "green"), size=SIZE)
        frame(h)
        backend.transfers.reset()
        image = frame(h)
    finally:
        backend.select("numpy")
    np.testing.assert_array_equal(image, clean)
    assert {k: v for k, v in backend.transfers.by_label.items() if k in labels} == labels


def four_slots() -> dict:
    """Four meshes (a draw slot per LOD: the sphere has two), six objects: six
    instance rows."""
    shapes = ["box", "sphere", "plane", "box"]
    return {"background": [0.0, 0.0, 0.0], "light": FLAT,
            "primitive": [{"name": f"m{i}", "shape": shape, "size": [0.2] * 3}
                          for i, shape in enumerate(shapes)],
            "object": [{"mesh": f"m{i % 4}", "position": [0.3 * i - 0.8, 0.0, -3.0]}
                       for i in range(6)]}


def clamped(ranges, capacity):
    """The draws of ``ranges`` [first, count] by the rule, and the slots outside the buffer."""
    draws, outside = [], 0
    for slot, (first, count) in enumerate(ranges):
        outside += first < 0 or count < 0 or first + count > capacity
        if first >= 0 and count > 0 and first < capacity:
            draws.append(InstanceDraw(slot, first, min(count, capacity - first), False))
    return draws, outside


def test_each_frames_ranges_are_clamped_slot_by_slot_and_counted(harness, caplog):
    h = harness(four_slots(), size=SIZE)
    frame(h)  # the stages write the instance rows
    capacity = h.renderer.capacity
    slots = len(h.renderer.slot_names)
    assert capacity == 6 and h.bank[layout.DRAW_RANGES].shape == (slots, 2) and slots >= 4
    edges = [-2**31, -1, 0, 1, 2, capacity - 1, capacity, capacity + 1, 2**31 - 1]
    rng = np.random.default_rng(5)
    counted = 0
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        for _ in range(400):
            ranges = rng.choice(edges, size=(slots, 2))
            h.bank[layout.DRAW_RANGES][...] = ranges
            expected, outside = clamped(ranges.tolist(), capacity)
            assert h.renderer._upload_frame() == expected, ranges
            counted += outside
            assert h.renderer.counts[rmod.RANGES_CLAMPED] == counted
            np.testing.assert_array_equal(h.bank[layout.DRAW_RANGES], ranges)  # not the bank's
    assert counted > 100
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "draw_ranges" in warning


@pytest.mark.parametrize(("ranges", "nan_rows", "clamped"), [
    ([[0, 0]] * 5, slice(0, 6), 0),  # nothing to draw
    ([[-1, 1], [5, 0], [6, 1], [0, 0], [0, 0]], slice(0, 6), 2),  # nothing left to draw
    ([[0, 1], [1, 1], [-1, 1], [5, 0], [6, 1]], slice(2, 6), 2),  # rows 0 and 1 drawn
])
def test_rows_no_range_draws_are_not_read(harness, ranges, nan_rows, clamped):
    """Clamping leaves a range that draws nothing at [0, 0]; the rows after the last one
    drawn are not uploaded or checked, so NaN there is not counted and needs no spare
    region for regrouping."""
    h = harness(four_slots(), size=SIZE)
    frame(h)
    h.bank[layout.DRAW_RANGES][...] = ranges

    def poke(bank):
        bank[layout.INSTANCES][nan_rows, 0] = np.nan

    frame(h, poke)
    assert h.renderer.counts[rmod.ROWS_SKIPPED] == 0 and h.renderer._spare is None
    assert h.renderer.counts[rmod.RANGES_CLAMPED] == clamped


def test_the_clamping_warning_names_the_first_slot_outside_the_buffer(harness, caplog):
    h = harness(four_slots(), size=SIZE)
    h.renderer.bind(h.bank, declared_by=h.pipeline.declared_by)  # as display.py does
    frame(h)
    h.bank[layout.DRAW_RANGES][...] = 0
    h.bank[layout.DRAW_RANGES][:4] = [[0, 6], [5, 0], [4, 3], [-1, 1]]
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        frame(h)
    assert [r.getMessage() for r in caplog.records] == [
        "'draw_ranges' (declared by stage 'passthrough'): draw slot 2 ('m1' LOD 1) has "
        "[first, count] = [4, 3], outside the instance buffer's 6 rows; ranges are clamped "
        "to the buffer; further ones are counted in the run's stats (render: draw ranges "
        "clamped)"]


def test_the_non_finite_row_warning_names_the_first_row_and_the_slot_drawing_it(
        harness, caplog):
    h = harness(four_slots(), size=SIZE)
    h.renderer.bind(h.bank, declared_by=h.pipeline.declared_by)
    frame(h)
    h.bank[layout.DRAW_RANGES][...] = 0
    h.bank[layout.DRAW_RANGES][:3] = [[0, 2], [2, 2], [4, 2]]  # row 4 begins slot 2

    def poke(bank):
        bank[layout.INSTANCES][4:, 0] = np.nan

    with caplog.at_level(logging.WARNING, logger="vrshare"):
        frame(h, poke)
    assert [r.getMessage() for r in caplog.records] == [
        "'instances' (declared by stage 'passthrough'): 2 instance row(s) in use hold NaN "
        "or inf (first: row 4, draw slot 2, 'm1' LOD 1); they are not drawn; further ones "
        "are counted in the run's stats (render: instance rows skipped)"]


@pytest.mark.parametrize(("column", "value"), [(0, np.nan), (12, np.inf),  # model matrix
                                               (15, -np.inf), (17, np.nan)])  # w, colour
def test_non_finite_instance_rows_are_not_drawn(cubes, caplog, column, value):
    h, clean, red = cubes
    good = h.bank[layout.INSTANCES][1].copy()  # passthrough writes colours only at setup

    def poke(bank):
        bank[layout.INSTANCES][1, column] = value  # the green cube's row

    with caplog.at_level(logging.WARNING, logger="vrshare"):
        images = [frame(h, poke) for _ in range(4)]
    for image in images:
        np.testing.assert_array_equal(image, red)  # the red cube drawn, no trace of green
    assert h.renderer.counts[rmod.ROWS_SKIPPED] == 4
    warnings = [r for r in caplog.records if "instance row" in r.getMessage()]
    assert len(warnings) == 1 and "row 1" in warnings[0].getMessage()
    assert "declared by stage 'passthrough'" in warnings[0].getMessage()
    h.bank[layout.INSTANCES][1] = good
    np.testing.assert_array_equal(frame(h), clean)  # good again: both drawn from the bank rows
    assert h.renderer.counts[rmod.ROWS_SKIPPED] == 4


def test_every_row_non_finite_draws_nothing(cubes):
    h, _, _ = cubes
    image = frame(h, lambda bank: bank[layout.INSTANCES].__setitem__(np.s_[:, 5], np.nan))
    assert background(image) and h.renderer.counts[rmod.ROWS_SKIPPED] == 2


def test_non_finite_rows_no_draw_uses_are_not_counted(cubes):
    h, clean, _ = cubes
    h.bank[layout.DRAW_RANGES][0] = [0, 1]  # only the red cube's row is drawn
    image = frame(h, lambda bank: bank[layout.INSTANCES].__setitem__((1, 3), np.nan))
    assert mask(image, RED, 2).any() and not mask(image, GREEN, 40).any()
    assert h.renderer.counts[rmod.ROWS_SKIPPED] == 0


EYES_NAMED = ("'eye_view' (declared by stage 'fixed_eyes') or 'eye_proj' (declared by "
              "stage 'fixed_eyes')")


@pytest.mark.parametrize(("name", "value"), [(layout.EYE_VIEW, np.nan),
                                             (layout.EYE_PROJ, np.inf)])
def test_non_finite_eye_matrices_draw_with_the_last_good_ones(cubes, caplog, name, value):
    h, clean, _ = cubes

    def poke(bank):
        bank[name][1, 2, 3] = value

    with caplog.at_level(logging.WARNING, logger="vrshare"):
        images = [frame(h, poke) for _ in range(3)]
    for image in images:
        np.testing.assert_array_equal(image, clean)
    assert h.renderer.counts[rmod.EYES_HELD] == 3 and h.renderer.counts[rmod.EYES_MISSING] == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"{EYES_NAMED} hold NaN or inf; frames are drawn with the last good eye matrices; "
        "further ones are counted in the run's stats (render: eye matrices held)"]


def test_non_finite_eyes_from_the_start_draw_nothing_until_good(harness, caplog):
    h = harness(two_cubes("red", "green"), size=SIZE)
    h.renderer.bind(h.bank, declared_by=h.pipeline.declared_by)

    def poke(bank):
        bank[layout.EYE_VIEW][0, 0, 0] = np.nan

    with caplog.at_level(logging.WARNING, logger="vrshare"):
        images = [frame(h, poke) for _ in range(2)]
    assert all(background(image) for image in images)
    assert h.renderer.counts[rmod.EYES_MISSING] == 2
    assert [r.getMessage() for r in caplog.records] == [
        f"{EYES_NAMED} hold NaN or inf; frames are not drawn (only cleared) until there are "
        "finite ones; further ones are counted in the run's stats (render: frames not drawn)"]
    assert mask(frame(h), RED, 2).any()  # the first good matrices are drawn with


def test_clean_frames_count_nothing(cubes):
    h, clean, _ = cubes
    for _ in range(3):
        np.testing.assert_array_equal(frame(h), clean)
    assert set(h.renderer.counts.values()) == {0}
    assert h.renderer._spare is None  # no spare region until a bad row is seen


def test_counts_reach_the_run_stats_through_the_display_path(gl_ctx, tmp_path, monkeypatch):
    """A plug-in camera whose eye matrices turn NaN from frame 2: the run goes on and
    its stats (and the printed summary lines) carry the renderer's counts."""
    from vrshare.report import _counter_lines

    (tmp_path / "nan_eyes_plugin.py").write_text(textwrap.dedent("""
        import numpy as np
        from vrshare.testing import FixedEyes

        class NanEyes(FixedEyes):
            name = "nan_eyes"

            def process(self, frame, bank):
                super().process(frame, bank)
                if frame.index >= 2:
                    self.view[0, 1, 1] = np.nan
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nan_eyes_plugin", raising=False)
    run_file = cube_run_file(tmp_path, ["nan_eyes_plugin:NanEyes", "scene_motion",
                                        "passthrough"])
    with display.open_display(run_file, target="headless") as run:
        stats = run.loop.run(5)
    assert not stats.faults and stats.frames == 5
    assert stats.counters["render"][rmod.EYES_HELD] == 3
    assert "render: eye matrices held 3" in _counter_lines(stats)


def test_regroup_packs_mirrored_rows_apart_and_leaves_bad_rows_out():
    from vrshare.render.regroup import mirrored_rows, regroup

    rows = np.zeros((6, layout.INSTANCE_FLOATS), np.float32)
    rows[:, [0, 5, 10, 15]] = 1.0  # identity matrices
    rows[:, 16] = np.arange(6)  # the colour's red tells the rows apart
    rows[[1, 4], 0] = -1.0  # mirrored in X
    rows[2, 3] = np.nan
    bad = ~np.isfinite(rows).all(axis=1)
    mirrored = mirrored_rows(rows)
    assert mirrored.tolist() == [False, True, False, False, True, False]
    ranges = np.array([[0, 3], [3, 3], [0, 0]], np.int32)
    spare = np.zeros((6, layout.INSTANCE_FLOATS), np.float32)
    draws, packed, skipped = regroup(rows, ranges, bad, mirrored, spare)
    assert skipped == 1 and packed == 5
    got = [(d.slot, d.mirrored, spare[d.first - 6:d.first - 6 + d.count, 16].tolist())
           for d in draws]
    assert got == [(0, False, [0.0]), (0, True, [1.0]), (1, False, [3.0, 5.0]),
                   (1, True, [4.0])]
