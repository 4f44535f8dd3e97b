"""PacedStage details: what an off-loop run is handed, the report's keys, the warning
when a stage moves to its worker (vrshare.pipeline.paced). The scheduling behaviour as
a whole is in test_core_async.py."""

import itertools
import logging
import re

import pytest

from vrshare import Stage, StageConfig, WeightBank
from vrshare.pipeline import FrameLoop, Pipeline, VirtualClock, paced


def loop_of(stages, budgets=None):
    bank = WeightBank()
    pipe = Pipeline(stages, budgets_s=budgets)
    pipe.setup(bank, StageConfig(None))
    return FrameLoop(pipe, bank, VirtualClock(90.0)), bank


class Count(Stage):
    name = "count"
    writes = ("x",)

    def setup(self, bank, config):
        self.x = bank.state("x", 1)

    def process(self, frame, bank):
        self.x[0] = frame.index


class Reader(Stage):
    """Reads and writes only through the bank ``process`` is handed."""

    name = "reader"
    reads = ("x",)
    writes = ("y",)
    mode = "async"

    def setup(self, bank, config):
        bank.state("y", 1)

    def process(self, frame, bank):
        bank["y"][0] = 10 * bank["x"][0] + bank.version("x")


def test_an_async_run_is_handed_its_own_view_of_the_bank():
    """The run reads its inputs (and their versions) and writes its outputs through the
    bank it is given, its private view: frame 3's run saw x = 3, version 3."""
    reader = Reader()
    loop, bank = loop_of([Count(), reader])
    stats = loop.run(5)
    assert stats.faults == []
    assert bank["y"][0] == 33 and bank.version("y") == 3  # latency 1: published in frame 4


def test_the_report_names_its_latency_percentiles():
    loop, _ = loop_of([Count(), Reader()])
    report = loop.run(6).cadence["reader"].as_dict()
    assert list(report["latency_ms"]) == ["median", "p95", "p99", "p99.9", "max"]
    assert report["runs"] == 5 and report["mode"] == "async"


class Slow(Stage):
    name = "slow"
    writes = ("slow_out",)
    on_overrun = "async"

    def setup(self, bank, config):
        self.out = bank.state("slow_out", 1)

    def process(self, frame, bank):
        self.out[0] = frame.index


def test_moving_to_the_worker_is_logged_with_the_time_the_budget_and_the_frame(
        monkeypatch, caplog):
    """Each sync run is timed by two perf_counter readings; here they are 20 ms apart,
    against a 5 ms budget."""
    ticks = itertools.cycle([1.0, 1.02])
    monkeypatch.setattr(paced, "perf_counter", lambda: next(ticks))
    loop, _ = loop_of([Slow()], budgets={"slow": 0.005})
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        stats = loop.run(3)
    assert stats.cadence["slow"].moved_async_at == 0
    lines = [r.getMessage() for r in caplog.records if "own thread" in r.getMessage()]
    assert len(lines) == 1
    assert re.fullmatch(r"stage 'slow' took 20\.000 ms \(budget 5\.000 ms\) in frame 0: it "
                        r"runs on its own thread from now on", lines[0]), lines[0]


@pytest.mark.parametrize("frames", [1, 4])
def test_a_run_ended_early_reports_what_it_started(frames):
    loop, _ = loop_of([Count(), Reader()])
    report = loop.run(frames).cadence["reader"]
    assert report.runs == frames - 1 and report.latency_frames_max == (1 if frames > 1 else 0)


@pytest.mark.parametrize(("latency", "frames", "version"), [(None, 3, 3), (1, 5, 3)])
def test_frames_where_an_async_stage_does_nothing_are_left_out_of_its_times(
        latency, frames, version):
    """At 30 Hz on a 90 Hz virtual clock a run starts in frames 0, 3 and 6, and is
    published 3 frames later (the default latency: in the frame that starts the next)
    or 1 frame later: the loop's thread does something for the stage in those frames
    only, so of 7 frames its track counts 3 (0, 3, 6) or 5 (0, 1, 3, 4, 6)."""
    reader = Reader()
    reader.rate_hz, reader.latency_frames = 30.0, latency
    loop, bank = loop_of([Count(), reader])
    stats = loop.run(7)
    assert stats.faults == []
    track = {t.name: t for t in stats.summary()}["reader"]
    assert track.frames == frames and bank.version("y") == version
    assert bank["y"][0] == 10 * version + version
