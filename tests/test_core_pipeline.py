import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stagekit import Sleeper, SleepSettings, make, run

from vrshare import (
    Pipeline,
    PipelineError,
    Stage,
    StageConfig,
    StageSetupError,
    VirtualClock,
    VsyncClock,
    WeightBank,
)
from vrshare.pipeline import BufferMismatch, FrameStats, schedule
from vrshare.pipeline.cadence import Cadence
from vrshare.pipeline.clock import LATENCY_FRAMES, make_clock


def names(stages):
    return [s.name for s in stages]


def test_schedule_follows_data_not_list_order():
    c = make("c", reads=("b",), writes=("c",))
    b = make("b", reads=("a",), writes=("b",))
    a = make("a", writes=("a",))
    free = make("free", writes=("z",))
    assert names(schedule([c, free, b, a])) == ["free", "a", "b", "c"]


def test_schedule_keeps_list_order_among_independent_stages():
    stages = [make(n, writes=(n,)) for n in "qwerty"]
    assert names(schedule(stages)) == list("qwerty")


def test_two_writers_of_one_buffer_names_both_and_the_buffer():
    with pytest.raises(PipelineError, match="buffer 'pose' has two writers: stages 'x' and 'y'"):
        schedule([make("x", writes=("pose",)), make("y", writes=("pose",))])


def test_a_read_nothing_writes_names_stage_and_buffer():
    with pytest.raises(PipelineError, match="^stage 'r' reads buffer 'ghost', which no "
                                          "stage writes and no source provides$"):
        schedule([make("r", reads=("ghost",), writes=("o",))])


def test_a_read_of_an_external_source_is_fine():
    assert names(schedule([make("r", reads=("input",), writes=("o",))], sources=["input"])) == ["r"]


def test_an_optional_read_orders_after_its_writer_and_may_have_none():
    reader = make("reader", writes=("out",))
    reader.optional_reads = ("input",)
    writer = make("writer", writes=("input",))
    assert names(schedule([reader, writer])) == ["writer", "reader"]
    assert names(schedule([reader, make("other", writes=("x",))])) == ["reader", "other"]
    assert names(schedule([reader], sources=["input"])) == ["reader"]


def test_a_cycle_through_an_optional_read_names_it():
    a = make("a", reads=("b",), writes=("a",))
    b = make("b", writes=("b",))
    b.optional_reads = ("a",)
    with pytest.raises(PipelineError, match="'a' writes 'a' read by 'b'"):
        schedule([a, b])


def test_a_source_may_not_also_be_written_by_a_stage():
    with pytest.raises(PipelineError, match="^buffer 'input' is written by stage 'w' and also "
                                          "declared as an external source$"):
        schedule([make("w", writes=("input",))], sources=["input"])


def test_a_cycle_names_the_stages_and_buffers():
    stages = [make("p", reads=("c",), writes=("a",)), make("q", reads=("a",), writes=("b",)),
              make("s", reads=("b",), writes=("c",))]
    with pytest.raises(PipelineError, match="^stages form a cycle: ") as info:
        schedule(stages)
    links = str(info.value).removeprefix("stages form a cycle: ").split("; ")
    assert sorted(links) == ["'p' writes 'a' read by 'q'", "'q' writes 'b' read by 's'",
                             "'s' writes 'c' read by 'p'"]


def test_duplicate_stage_names_are_an_error():
    with pytest.raises(PipelineError, match="two stages are named 'x'"):
        schedule([make("x", writes=("a",)), make("x", writes=("b",))])


def test_a_stage_without_a_name_is_an_error():
    nameless = make("x", writes=("a",))
    nameless.name = ""
    with pytest.raises(PipelineError, match=f"^stage {type(nameless).__name__} has no name$"):
        schedule([nameless])


def test_a_stage_reading_what_it_writes_is_no_cycle():
    """An accumulator reads its own output of the frame before: it depends on no one."""
    acc = make("acc", reads=("sum", "x"), writes=("sum",))
    x = make("x", writes=("x",))
    assert names(schedule([acc, x])) == ["x", "acc"]


def test_loop_runs_stages_in_order_and_stamps_versions():
    stats, bank, _ = run([make("b", reads=("a",), writes=("b",)), make("a", writes=("a",))])
    assert stats.frames == 10
    assert bank["b"][0] == 2.0  # b ran after a in every frame
    assert bank.version("a") == bank.version("b") == 9
    assert stats.tracks == ["a", "b"]
    assert not np.isnan(stats.dur[:10]).any()


def test_a_raising_stage_is_reported_disabled_and_frames_go_on():
    a = make("a", writes=("a",))
    bad = make("bad", reads=("a",), writes=("b",), raise_at=3)
    after = make("after", reads=("a",), writes=("c",))
    stats, bank, loop = run([a, bad, after], frames=10)
    assert stats.frames == 10
    [fault] = stats.faults
    assert fault.stage == "bad" and fault.frame == 3
    assert fault.error == "RuntimeError: bad failed on purpose"
    assert "Traceback" in fault.traceback and "failed on purpose" in fault.traceback
    assert bad.calls == 3 and after.calls == 10 and a.calls == 10
    assert loop.active_stages == ["a", "after"]
    assert bank.version("b") == 2  # it kept its last good write
    i = stats.tracks.index("bad")
    assert np.isnan(stats.dur[4:10, i]).all() and not np.isnan(stats.dur[:4, i]).any()


def test_overruns_are_counted_against_the_stage_budget(caplog):
    slow = Sleeper(SleepSettings(seconds=0.003))
    stats, _, _ = run([slow], frames=5, budgets={"sleeper": 0.001})
    row = {s.name: s for s in stats.summary()}["sleeper"]
    assert row.over_budget == 5
    assert "overran its budget" in caplog.text


def test_each_buffer_is_credited_to_the_stage_that_declared_it():
    pipe = Pipeline([make("b", reads=("a",), writes=("b", "c")), make("a", writes=("a",))])
    pipe.setup(WeightBank(), StageConfig(None))
    assert pipe.declared_by == {"a": "a", "b": "b", "c": "b"}


def test_a_stage_refusing_a_buffer_at_setup_names_the_stage_that_declared_it():
    class Picky(Stage):
        name = "picky"
        reads = ("a",)

        def setup(self, bank, config):
            raise BufferMismatch("a", "is (4,) float32, the stage needs (3,) float32")

    pipe = Pipeline([make("a", writes=("a",)), Picky()])
    with pytest.raises(StageSetupError) as err:
        pipe.setup(WeightBank(), StageConfig(None))
    assert str(err.value) == ("stage 'picky' failed in setup: BufferMismatch: buffer 'a' is "
                              "(4,) float32, the stage needs (3,) float32 (declared by stage "
                              "'a')")


def test_a_cadence_given_to_the_pipeline_overrides_the_stages_own():
    a = make("a", writes=("a",))
    stats, _, loop = run([a], frames=6, cadences={"a": Cadence(rate_hz=30.0)})
    assert loop.pipeline.cadences["a"].rate_hz == 30.0
    assert a.calls == 2 and stats.cadence["a"].runs == 2  # frames 0 and 3


def test_budget_for_an_unknown_stage_is_an_error():
    with pytest.raises(PipelineError, match="unknown stage"):
        Pipeline([make("a", writes=("a",))], budgets_s={"nope": 0.001})
    with pytest.raises(PipelineError) as err:
        Pipeline([make("a", writes=("a",))], cadences={"zz": Cadence(), "b": Cadence()})
    assert str(err.value) == "cadence given for unknown stage(s): b, zz"


def test_a_stage_class_with_a_bad_cadence_default_is_an_error():
    bad = make("bad", writes=("b",))
    bad.mode = "eventually"
    with pytest.raises(PipelineError) as err:
        Pipeline([bad])
    assert str(err.value) == ("stage class defaults: 'mode': expected 'sync' or 'async' or "
                              "'process', got 'eventually'")


def test_setup_failure_names_the_stage_and_closes_the_others():
    closed = []

    class Fine(type(make("x", writes=("x",)))):
        def close(self):
            closed.append(self.name)

    fine = Fine()
    fine.name, fine.writes = "fine", ("f",)
    broken = make("broken", reads=("f",), writes=("g",))
    broken.setup = lambda bank, config: (_ for _ in ()).throw(OSError("no such device"))
    with pytest.raises(StageSetupError, match="stage 'broken' failed in setup: OSError: no such"):
        Pipeline([fine, broken]).setup(WeightBank(), StageConfig(None))
    assert closed == ["fine"]


def test_a_declared_write_must_be_declared_in_the_bank():
    lazy = make("lazy", writes=("a",))
    lazy.setup = lambda bank, config: None
    with pytest.raises(PipelineError) as err:
        Pipeline([lazy]).setup(WeightBank(), StageConfig(None))
    assert str(err.value) == ("stage 'lazy' declares it writes 'a' but did not declare that "
                              "buffer in the bank during setup")


def test_virtual_clock_is_deterministic():
    clock = VirtualClock(72)
    frames = [clock.wait_frame() for _ in range(3)]
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[2].t_now == pytest.approx(2 / 72)
    assert frames[2].t_display == pytest.approx(2 / 72 + LATENCY_FRAMES / 72)
    assert frames[0].budget_s == pytest.approx(1 / 72)


def test_vsync_clock_starts_frames_on_vsync_boundaries_and_counts_skips():
    clock = VsyncClock(500)
    first = clock.wait_frame()
    for _ in range(3):
        frame = clock.wait_frame()
    k = frame.t_now * 500
    assert k == pytest.approx(round(k)) and round(k) >= 3
    assert frame.t_display - frame.t_now == pytest.approx(LATENCY_FRAMES / 500)
    assert first.index == 0 and frame.index == 3

    time.sleep(0.02)  # overrun ~10 vsyncs
    late = clock.wait_frame()
    assert round(late.t_now * 500) - round(frame.t_now * 500) >= 10
    assert clock.skipped >= 9


class FakeTime:
    """perf_counter and sleep of a clock that only moves when slept or told to."""

    def __init__(self, now=100.0):
        self.now = now
        self.slept = []

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_vsync_clock_on_a_fake_timeline_waits_for_each_vsync_and_counts_overruns(monkeypatch):
    from vrshare.pipeline import clock as clock_module

    fake = FakeTime(0.0)
    monkeypatch.setattr(clock_module, "time", fake)
    clock = VsyncClock(64)  # 15.625 ms vsyncs (exact in binary) from the clock's creation
    p = 1 / 64
    fake.now += p / 2  # half a period in: the first frame waits for vsync 1
    frames = [clock.wait_frame()]
    assert frames[0].t_now == p and fake.slept == [p / 2]
    frames.append(clock.wait_frame())  # exactly on vsync 1 again: the next one, vsync 2
    assert frames[1].t_now == 2 * p and fake.slept == [p / 2, p] and clock.skipped == 0
    fake.now += 2.5 * p  # the frame overran: vsyncs 3 and 4 missed, the next is 5
    frames.append(clock.wait_frame())
    assert frames[2].t_now == 5 * p and clock.skipped == 2
    fake.now += 1.5 * p  # another overrun: vsync 6 missed; skips add up
    frames.append(clock.wait_frame())
    assert frames[3].t_now == 7 * p and clock.skipped == 3
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert all(f.t_display == f.t_now + LATENCY_FRAMES * p for f in frames)
    assert all(f.budget_s == p for f in frames)


def test_an_overrun_of_the_first_vsync_is_counted(monkeypatch):
    from vrshare.pipeline import clock as clock_module

    fake = FakeTime(0.0)
    monkeypatch.setattr(clock_module, "time", fake)
    clock = VsyncClock(64, latency_frames=3)
    first = clock.wait_frame()  # on vsync 0
    fake.now += 2.5 / 64
    late = clock.wait_frame()
    assert (first.t_now, late.t_now, clock.skipped) == (0.0, 3 / 64, 2)
    assert late.t_display == late.t_now + 3 / 64


def test_a_vsync_frame_exactly_on_time_does_not_sleep(monkeypatch):
    from vrshare.pipeline import clock as clock_module

    fake = FakeTime(50.0)
    monkeypatch.setattr(clock_module, "time", fake)
    clock = VsyncClock(50)
    assert clock.wait_frame().t_now == 0.0 and fake.slept == []


def test_unthrottled_frames_follow_the_clock_from_its_creation(monkeypatch):
    from vrshare.pipeline import clock as clock_module
    from vrshare.pipeline.clock import UnthrottledClock

    fake = FakeTime(7.0)
    monkeypatch.setattr(clock_module, "time", fake)
    clock = UnthrottledClock(60)
    fake.now += 0.5
    a = clock.wait_frame()
    fake.now += 0.001
    b = clock.wait_frame()
    assert (a.index, b.index) == (0, 1) and fake.slept == []
    assert a.t_now == pytest.approx(0.5) and b.t_now == pytest.approx(0.501)
    assert b.t_display == pytest.approx(0.501 + LATENCY_FRAMES / 60)


def test_latency_frames_set_the_predicted_display_time():
    frame = VirtualClock(90, latency_frames=3).wait_frame()
    assert frame.t_display == pytest.approx(3 / 90)


@pytest.mark.parametrize("kind", ["vsync", "virtual", "unthrottled"])
def test_make_clock_builds_the_named_clock_at_its_rate(kind):
    from vrshare.pipeline.clock import CLOCKS

    clock = make_clock(kind, 120.0)
    assert type(clock) is CLOCKS[kind] and clock.frame_hz == 120.0
    assert clock.period == pytest.approx(1 / 120)


def test_make_clock_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown clock 'fast': expected one of vsync, virtual, "
                                         "unthrottled"):
        make_clock("fast", 90)


def test_stats_summary_matches_numpy_percentiles():
    stats = FrameStats(["s"], budget_s=0.010)
    rng = np.random.default_rng(1)
    durs = rng.uniform(0.001, 0.02, 3000)  # grows past the initial capacity
    for i, d in enumerate(durs):
        stats.record(i, 0.0, 0.0, d, [0.0], [d / 2])
    frame, stage = stats.summary()
    assert frame.frames == 3000
    assert frame.median_ms == pytest.approx(np.median(durs) * 1e3)
    assert frame.p999_ms == pytest.approx(np.percentile(durs, 99.9) * 1e3)
    assert frame.max_ms == pytest.approx(durs.max() * 1e3)
    assert stats.deadline_misses == int((durs > 0.010).sum())
    assert stage.p95_ms == pytest.approx(np.percentile(durs / 2, 95) * 1e3)


def test_chrome_trace_has_one_track_per_stage():
    stats, _, _ = run([make("a", writes=("a",)), make("b", reads=("a",), writes=("b",))], frames=4)
    trace = json.loads(json.dumps(stats.chrome_trace()))
    names_by_tid = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M"}
    assert names_by_tid == {0: "frame", 1: "a", 2: "b"}
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(spans) == 4 * 3
    b_spans = [e for e in spans if e["name"] == "b"]
    a_spans = [e for e in spans if e["name"] == "a"]
    assert all(bs["ts"] >= as_["ts"] + as_["dur"] for as_, bs in zip(a_spans, b_spans, strict=True))


def test_extra_tracks_can_be_filled_in_later_by_frame_index():
    stats = FrameStats(["s"], 0.01)
    for index in (4, 5, 7):  # a skipped frame index leaves no row
        stats.record(index, 0.0, 0.0, 0.001, [0.0], [0.001])
    gpu = stats.add_track("gpu:left", budget_s=0.002)
    assert stats.set_later(5, gpu, 0.003)
    assert not stats.set_later(6, gpu, 0.5) and not stats.set_later(8, gpu, 0.5)
    assert {s.name: s.over_budget for s in stats.summary()}["gpu:left"] == 1
    per_frame = stats.as_dict()["per_frame"]["gpu:left"]
    assert per_frame[0] is None and per_frame[2] is None and math.isclose(per_frame[1], 3.0)


@st.composite
def dag_of_stages(draw):
    """Stages over buffers b0..b9, each written by at most one stage, reading any number of
    buffers written by stages earlier in a hidden order (so there is no cycle), listed in
    a random order; some reads are optional and some buffers come from sources."""
    n = draw(st.integers(1, 8))
    buffers = [f"b{i}" for i in range(10)]
    owner = draw(st.lists(st.integers(-1, n - 1), min_size=10, max_size=10))  # -1: a source
    rank = draw(st.permutations(range(n)))  # the hidden order
    stages = []
    for s in range(n):
        writes = [b for b, o in zip(buffers, owner, strict=True) if o == s]
        earlier = [b for b, o in zip(buffers, owner, strict=True)
                   if o == -1 or (o != s and rank[o] < rank[s])]
        reads = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        optional = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        stage = make(f"s{s}", reads=reads, writes=writes)
        stage.optional_reads = tuple(b for b in optional if b not in reads)
        stages.append(stage)
    sources = [b for b, o in zip(buffers, owner, strict=True) if o == -1]
    return draw(st.permutations(stages)), sources


@settings(max_examples=200, deadline=None)
@given(dag_of_stages())
def test_every_reader_runs_after_every_writer_of_what_it_reads(case):
    stages, sources = case
    order = schedule(stages, sources)
    assert sorted(names(order)) == sorted(names(stages))
    position = {s.name: i for i, s in enumerate(order)}
    writer = {b: s for s in stages for b in s.writes}
    for s in stages:
        for b in (*s.reads, *s.optional_reads):
            if b in writer:
                assert position[writer[b].name] < position[s.name], (b, names(order))
    # file order is kept wherever the data allows: each next stage is the earliest listed
    # of those whose writers have all run
    given_at = {s.name: i for i, s in enumerate(stages)}
    done: set[str] = set()
    for chosen in order:
        ready = [s for s in stages if s.name not in done and all(
            writer[b].name in done or writer[b] is s
            for b in (*s.reads, *s.optional_reads) if b in writer)]
        assert chosen.name == min(ready, key=lambda s: given_at[s.name]).name, (
            names(order), [(s.name, s.reads, s.optional_reads, s.writes) for s in stages])
        done.add(chosen.name)


def test_a_stage_repr_names_its_class_name_reads_and_writes():
    stage = make("b", reads=("a",), writes=("b",))
    assert repr(stage) == f"<{type(stage).__name__} 'b' reads=('a',) writes=('b',)>"
