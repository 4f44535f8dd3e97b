"""The frame loop's watchdog: a stage or step that does not return within its limit is
reported (stage, frame, the loop thread's stack) in the log and in the stats, also when
the run is interrupted. Slow stages are injected (an Event the test releases once the
hang is reported); nothing here asserts on wall-clock time beyond hang guards."""

from __future__ import annotations

import json
import logging
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from stagekit import loop_of, make, run

from vrshare import Stage
from vrshare.pipeline import Frame, FrameLoop, FrameStats
from vrshare.pipeline.watchdog import HANG_BUDGET_FACTOR, HANG_DEFAULT_S, Watchdog, hang_limits
from vrshare.report import print_summary

GUARD_S = 30.0


class Blocking(Stage):
    """Waits for ``release`` in frame ``at`` (a hang the test ends)."""

    name = "slow"
    writes = ("s",)

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.release = at, threading.Event()

    def setup(self, bank, config):
        self.out = bank.state("s", (1,))

    def process(self, frame, bank):
        if frame.index == self.at:
            self.release.wait(GUARD_S)
        self.out[0] = frame.index


def release_when_reported(loop: FrameLoop, release: threading.Event) -> threading.Thread:
    def watch():
        deadline = time.monotonic() + GUARD_S
        while not loop.stats.hangs and time.monotonic() < deadline:
            time.sleep(0.005)
        release.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("where", ["stage", "step"])
def test_a_stage_or_step_that_does_not_return_in_time_is_reported(where, caplog, capsys):
    if where == "stage":
        slow = Blocking(at=2)
        loop, _ = loop_of([make("a", writes=("a",)), slow], hang_limits_s={"slow": 0.05})
        release, name = slow.release, "slow"
    else:
        release, name = threading.Event(), "submit"

        def submit(frame, bank):
            if frame.index == 2:
                release.wait(GUARD_S)

        loop, _ = loop_of([make("a", writes=("a",))], steps=[("submit", submit)],
                          hang_limits_s={"submit": 0.05})
    helper = release_when_reported(loop, release)
    stats = loop.run(5)
    helper.join()
    assert stats.frames == 5 and not stats.faults
    [hang] = stats.hangs
    assert (hang.stage, hang.frame, hang.limit_s, hang.returned) == (name, 2, 0.05, True)
    track = stats.tracks.index(name)
    assert hang.seconds == stats.dur[2, track] > hang.limit_s  # its full, recorded duration
    assert "in process" in hang.stack if where == "stage" else "in submit" in hang.stack
    assert "release.wait" in hang.stack and "loop.py" in hang.stack
    assert f"{where} {name!r} has not returned" in caplog.text
    assert "the frame loop's stack:\n" + hang.stack in caplog.text  # the stack is logged
    assert f"{where} {name!r} returned after" in caplog.text
    data = json.loads(json.dumps(stats.as_dict()))
    assert data["hangs"][0]["stage"] == name and data["hangs"][0]["returned"] is True
    print_summary(stats)
    assert f"watchdog: {name!r} hung in frame 2: returned after" in capsys.readouterr().out
    assert not [t for t in threading.enumerate() if t.name == "vrshare-watchdog"]


def test_limits_follow_budgets_with_a_default():
    limits = hang_limits(["a", "b", "c"], {"a": 0.002, "b": 0.004}, limits_s={"b": 1.5})
    assert limits == [HANG_BUDGET_FACTOR * 0.002, 1.5, HANG_DEFAULT_S]
    loop, _ = loop_of([make("a", writes=("a",))], budgets={"a": 0.001})
    assert loop.watchdog.limits == [HANG_BUDGET_FACTOR * 0.001]
    # the loop's own default: the limit of what has no budget, and of the first frame
    loop, _ = loop_of([make("a", writes=("a",)), make("b", writes=("b",))],
                      budgets={"a": 0.001}, hang_default_s=7.5)
    assert loop.watchdog.limits == [HANG_BUDGET_FACTOR * 0.001, 7.5]
    assert loop.watchdog.first_limit_s == 7.5


def test_the_check_reports_once_per_call_and_relaxes_the_first_frame():
    stats = FrameStats(["a", "b"], 0.01)
    watch = Watchdog(["a", "b"], ["stage", "step"], [1.0, 1.0], stats, first_limit_s=2.0)
    watch.start()
    watch.stop()  # what the loop thread is: this one; no monitor running
    watch.first_frame = watch.frame = 0
    watch.track, watch.t0 = 0, 100.0
    assert watch.check(now=100.5) is None
    assert watch.check(now=101.5) is None  # a first frame may take the default
    hang = watch.check(now=102.5)
    assert hang is not None and (hang.stage, hang.frame, hang.limit_s) == ("a", 0, 2.0)
    assert "test_the_check_reports_once_per_call" in hang.stack  # this thread's stack
    assert watch.check(now=110.0) is None  # reported once
    watch.frame, watch.track, watch.t0 = 1, 1, 200.0  # the next call
    assert watch.check(now=201.5).stage == "b"
    watch.t0 = -1.0
    watch.settle()
    assert [h.returned for h in stats.hangs] == [True, True]


def test_ctrl_c_in_a_stage_names_it_and_keeps_a_hang_past_its_limit():
    class Stuck(Stage):
        name = "stuck"
        writes = ("x",)

        def setup(self, bank, config):
            self.out = bank.state("x", (1,))

        def process(self, frame, bank):
            if frame.index == 1:
                time.sleep(0.02)
                raise KeyboardInterrupt
            self.out[0] = frame.index

    loop, _ = loop_of([make("a", writes=("a",)), Stuck()], hang_limits_s={"stuck": 0.005})
    stats = loop.run(9)
    assert stats.interrupted and stats.frames == 1
    assert stats.interrupted_in["stage"] == "stuck" and stats.interrupted_in["frame"] == 1
    [hang] = stats.hangs  # seen by the monitor, or at the interruption from its traceback
    assert (hang.stage, hang.frame, hang.returned) == ("stuck", 1, False)
    assert "in process" in hang.stack


def test_ctrl_c_before_the_limit_names_the_stage_but_is_no_hang():
    stats, _, _ = run([make("a", writes=("a",)),
                       make("k", reads=("a",), writes=("k",), raise_at=3, exc=KeyboardInterrupt)],
                      frames=9)
    assert stats.interrupted and stats.frames == 3 and not stats.hangs
    assert stats.interrupted_in["stage"] == "k" and stats.interrupted_in["frame"] == 3
    assert stats.as_dict()["interrupted_in"]["stage"] == "k"


@pytest.mark.parametrize("limits,poll", [([0.004], 0.005), ([0.4, 2.0], 0.1), ([10.0], 0.25),
                                         ([], 0.25)])
def test_the_monitor_looks_a_quarter_of_the_smallest_limit_apart_within_bounds(limits, poll):
    watch = Watchdog(["x"] * len(limits), ["stage"] * len(limits), limits, FrameStats([], 0.01))
    assert watch.poll_s == pytest.approx(poll)


def test_an_idle_loop_or_a_slot_within_its_limit_is_no_hang():
    stats = FrameStats(["a"], 0.01)
    watch = Watchdog(["a"], ["stage"], [1.0], stats, first_limit_s=5.0)
    assert watch.check(now=1e9) is None  # idle: nothing running
    watch.first_frame, watch.frame, watch.t0 = 0, 3, 10.0
    assert watch.limit(0, 3) == 1.0 and watch.limit(0, 0) == 5.0
    assert watch.check(now=11.0) is None  # exactly at the limit
    assert watch.check(now=11.001) is not None and not stats.interrupted_in


def test_a_reported_hang_takes_the_recorded_duration_once_it_returns(caplog):
    stats = FrameStats(["a", "b"], 0.01)
    watch = Watchdog(["a", "b"], ["stage", "step"], [1.0, 1.0], stats)
    watch.frame, watch.track, watch.t0 = 4, 1, 50.0
    hang = watch.check(now=52.0)
    assert watch.hung and hang.seconds == pytest.approx(2.0) and hang.returned is None
    watch.settle()  # still running (same t0): left pending
    assert hang.returned is None
    stats.record(4, 0.0, 50.0, 53.5, [0.0, 0.0], [0.0, 3.5])
    watch.t0 = -1.0  # the frame ended
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        watch.settle()
    assert not watch.hung and hang.returned is True and hang.seconds == pytest.approx(3.5)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "step 'b' returned after 3.500 s (frame 4)"]


def test_a_run_ending_inside_a_slot_past_its_limit_keeps_an_unreturned_hang():
    stats = FrameStats(["a", "b"], 0.01)
    watch = Watchdog(["a", "b"], ["stage", "stage"], [0.001, 100.0], stats)
    watch.frame, watch.track, watch.t0 = 2, 0, time.perf_counter() - 1.0
    watch.finish(None)
    [hang] = stats.hangs
    assert (hang.stage, hang.frame, hang.returned) == ("a", 2, False) and hang.seconds >= 1.0
    assert stats.interrupted_in["stage"] == "a" and stats.interrupted_in["frame"] == 2
    assert watch.t0 < 0  # idle again
    calm = FrameStats(["a", "b"], 0.01)
    watch = Watchdog(["a", "b"], ["stage", "stage"], [0.001, 100.0], calm)
    watch.frame, watch.track, watch.t0 = 2, 1, time.perf_counter()
    watch.finish(None)
    assert not calm.hangs and calm.interrupted_in["stage"] == "b"


def test_a_hang_in_a_frame_recorded_without_its_time_keeps_the_time_seen():
    stats = FrameStats(["a"], 0.01)
    watch = Watchdog(["a"], ["stage"], [1.0], stats)
    watch.frame, watch.track, watch.t0 = 1, 0, 10.0
    hang = watch.check(now=12.0)
    stats.record(1, 0.0, 10.0, 12.5, [np.nan], [np.nan])  # the track's time is missing
    watch.t0 = -1.0
    watch.settle()
    assert hang.returned is True and hang.seconds == pytest.approx(2.0)


def test_a_slot_started_at_time_zero_is_watched():
    """perf_counter's origin is arbitrary: 0 s is a start time like any other (only a
    negative t0 means idle)."""
    watch = Watchdog(["a"], ["stage"], [1.0], FrameStats(["a"], 0.01))
    watch.frame, watch.t0 = 0, 0.0
    assert watch.check(now=1.5) is not None


def test_a_worker_over_its_limit_is_reported_once_with_its_stack_and_logged(caplog):
    stats = FrameStats(["a"], 0.01)
    watch = Watchdog(["a"], ["stage"], [1.0], stats)
    worker = SimpleNamespace(name="echo", t0=100.0, hang=None, ident=threading.get_ident(),
                             frame=Frame(3, 0.03, 0.04, 0.01))
    watch.workers = [(worker, 0.5)]
    assert watch.check_workers(now=100.5) == []  # at the limit: not over it
    with caplog.at_level(logging.ERROR, logger="vrshare"):
        (hang,) = watch.check_workers(now=100.75)
    assert (hang.stage, hang.frame, hang.limit_s, hang.seconds, hang.returned) == (
        "echo", 3, 0.5, 0.75, None)
    assert "test_a_worker_over_its_limit" in hang.stack  # the worker thread's stack
    assert worker.hang is hang and stats.hangs == [hang]
    assert [r.getMessage() for r in caplog.records] == [
        "async stage 'echo' has not returned 0.750 s after its run for frame 3 began "
        f"(limit 0.500 s); its worker's stack:\n{hang.stack}"]
    assert watch.check_workers(now=200.0) == []  # once per run
    gone = threading.Thread(target=lambda: None)
    gone.start()
    gone.join()
    for ident in (gone.ident, None):  # a thread that has ended, or none: no stack
        worker.hang, worker.ident = None, ident
        assert watch.check_workers(now=101.0)[0].stack == ""


@pytest.mark.parametrize(("elapsed", "hung"), [(1.5, False), (2.5, True)])
def test_a_run_ending_in_its_first_frame_keeps_the_first_frames_limit(elapsed, hung):
    """Limit 1 s, 2 s for the first frame: a run interrupted 1.5 s into its first frame's
    slot was slow, not hung; 2.5 s in, it was hung."""
    stats = FrameStats(["a"], 0.01)
    watch = Watchdog(["a"], ["stage"], [1.0], stats, first_limit_s=2.0)
    watch.first_frame = watch.frame = 0
    watch.track, watch.t0 = 0, time.perf_counter() - elapsed
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        watch.finish(exc)
    assert stats.interrupted_in["stage"] == "a" and stats.interrupted_in["seconds"] >= elapsed
    assert [h.returned for h in stats.hangs] == ([False] if hung else [])
    if hung:  # the stack where the run was interrupted
        assert "test_a_run_ending_in_its_first_frame" in stats.hangs[0].stack


def test_a_watchdog_that_fails_says_so_once_and_the_run_goes_on(monkeypatch, caplog):
    seen = []

    class Look(Stage):
        name = "look"

        def process(self, frame, bank):
            seen.extend(t.name for t in threading.enumerate())
            time.sleep(0.002)  # a few of the monitor's polls

    loop, _ = loop_of([Look()])
    def broken(self, now=None):
        raise OSError("gone")

    monkeypatch.setattr(Watchdog, "check", broken)
    loop.watchdog.poll_s = 0.001
    with caplog.at_level(logging.ERROR, logger="vrshare"):
        stats = loop.run(20)
    assert stats.frames == 20
    assert [r.getMessage() for r in caplog.records] == [
        "the frame loop's watchdog failed: OSError: gone"]
    assert "vrshare-watchdog" in seen  # its thread, named for a debugger's list, went on
