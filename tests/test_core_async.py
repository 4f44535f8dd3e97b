"""Stages at their own rate and off the frame's critical path (vrshare.pipeline.paced).

Thread timing is never asserted on: where a test needs the loop to go on while a
worker is busy, the worker waits on an event the test (or a later frame) sets.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
import time

import numpy as np
import pytest
from stagekit import loop_of

from vrshare import Stage, StageConfig, WeightBank, backend
from vrshare.app import make_stages
from vrshare.config import ConfigError, load_run_file
from vrshare.pipeline import (
    FrameLoop,
    Pipeline,
    PipelineError,
    UnthrottledClock,
    VirtualClock,
    paced,
)
from vrshare.pipeline.process import StageProcessError

N = 4096  # elements of the buffers the torn-write tests look at


class Source(Stage):
    """Writes the frame index into every element of ``x``, a slice at a time with
    pauses between, so a reader racing it would see a mix."""

    name = "source"
    writes = ("x",)

    def setup(self, bank, config):
        self.x = bank.state("x", N, "float64")

    def process(self, frame, bank):
        for part in np.array_split(np.arange(N), 8):
            self.x[part] = frame.index
            time.sleep(0)


class Echo(Stage):
    """Writes ``1000 * (input value) + its run's frame index`` into every element of
    ``y``, slowly (a slice at a time), after checking its input is one frame's."""

    name = "echo"
    reads = ("x",)
    writes = ("y",)

    def __init__(self, *args, gate: threading.Event | None = None, raise_at=None,
                 delay_s: float = 0.0, **kw):
        super().__init__(*args, **kw)
        self.gate = gate
        self.delay_s = delay_s  # longer than a virtual frame: the loop must wait for it
        self.raise_at = raise_at
        self.torn_inputs = 0
        self.threads: set[str] = set()

    def setup(self, bank, config):
        self.x = bank["x"]
        self.y = bank.state("y", N, "float64")
        self.y[...] = -1.0  # the value readers see before the first publish

    def process(self, frame, bank):
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay_s)
        if frame.index == self.raise_at:
            raise RuntimeError("echo failed on purpose")
        x = self.x.copy()
        if not (x == x[0]).all():
            self.torn_inputs += 1
        for part in np.array_split(np.arange(N), 8):
            self.y[part] = 1000 * x[0] + frame.index
            time.sleep(0)


class Look(Stage):
    """Records, each frame, ``y`` (it must be whole) and its version and age."""

    name = "look"
    reads = ("y",)
    writes = ("seen",)

    def setup(self, bank, config):
        self.y = bank["y"]
        bank.state("seen", 1)
        self.seen: list[tuple[int, float, int]] = []
        self.torn = 0
        self.ages = []

    def process(self, frame, bank):
        y = self.y.copy()
        if not (y == y[0]).all():
            self.torn += 1
        self.seen.append((frame.index, float(y[0]), bank.version("y")))
        self.ages.append(bank.age("y", frame))


def set_cadence(stage, **keys):
    for k, v in keys.items():
        setattr(stage, k, v)
    return stage


# -- rate ------------------------------------------------------------------------------


def test_a_sync_stage_with_a_rate_runs_that_often_and_others_see_its_last_outputs():
    look = Look()
    loop, bank = loop_of([Source(), set_cadence(Echo(), rate_hz=30.0), look])
    stats = loop.run(12)
    # 30 Hz at 90 Hz: frames 0, 3, 6, 9; in between the last outputs, same version
    assert [v for _, _, v in look.seen] == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9]
    assert [y for _, y, _ in look.seen] == [1000 * v + v for _, _, v in look.seen]
    report = stats.cadence["echo"]
    assert report.runs == 4 and report.skipped == 0
    assert report.achieved_hz == pytest.approx(30.0)
    assert stats.tracks == ["source", "echo", "look"]  # no worker track: it has no worker
    assert report.moved_async_at is None and report.mode == "sync"
    i = stats.tracks.index("echo")  # frames it did not run are left out of its times
    assert np.isnan(stats.dur[: stats.count, i]).tolist() == [k % 3 != 0 for k in range(12)]


class LateClock(VirtualClock):
    """The virtual timeline, started 10 s in."""

    def wait_frame(self):
        f = super().wait_frame()
        return f._replace(t_now=f.t_now + 10.0, t_display=f.t_display + 10.0)


@pytest.mark.parametrize(("frames", "achieved"), [(1, math.nan), (4, 30.0), (12, 30.0)])
def test_the_achieved_rate_runs_from_the_first_start_to_the_last(frames, achieved):
    """30 Hz on a 90 Hz clock that starts 10 s in: starts in frames 0, 3, ...; one start
    has no rate. The stage reads its input through the bank it is given."""
    from stagekit import make

    reader = set_cadence(make("b", reads=("a",), writes=("b",)), rate_hz=30.0)
    loop, bank = loop_of([make("a", writes=("a",)), reader], clock=LateClock(90.0))
    report = loop.run(frames).cadence["b"]
    assert report.rate_hz == 30.0
    assert report.achieved_hz == pytest.approx(achieved, nan_ok=True)
    assert bank["b"][0] == 2.0


# -- async on the virtual clock: deterministic ------------------------------------------


def test_async_outputs_become_visible_exactly_latency_frames_later_on_the_virtual_clock():
    look = Look()
    echo = set_cadence(Echo(delay_s=0.005), mode="async", rate_hz=30.0)
    loop, bank = loop_of([Source(), echo, look])
    loop.run(12)
    # runs start at frames 0, 3, 6, 9 from that frame's input; latency 3 frames
    want = [(-1.0, -1)] * 3 + [(1000 * s + s, s) for s in (0, 0, 0, 3, 3, 3, 6, 6, 6)]
    assert [(y, v) for _, y, v in look.seen] == want
    assert {a.frames for a in look.ages[3:]} == {3, 4, 5}
    assert look.ages[3].seconds == pytest.approx(3 / 90)
    assert echo.threads == {"vrshare-echo"}  # never the loop's thread
    assert look.torn == 0 and echo.torn_inputs == 0


def test_async_runs_on_the_virtual_clock_reproduce_exactly():
    def once():
        look = Look()
        loop, _ = loop_of([Source(), set_cadence(Echo(delay_s=0.002), mode="async",
                                                 latency_frames=2), look])
        stats = loop.run(30)
        return look.seen, stats.cadence["echo"].runs

    assert once() == once() == once()


def test_the_default_latency_is_one_period_of_the_rate():
    from vrshare.pipeline.cadence import Cadence

    assert Cadence("async", rate_hz=10.0).latency(90.0) == 9
    assert Cadence("async", rate_hz=90.0).latency(90.0) == 1
    assert Cadence("async", rate_hz=500.0).latency(90.0) == 1
    assert Cadence("async").latency(90.0) == 1
    assert Cadence("async", rate_hz=10.0, latency_frames=2).latency(90.0) == 2


# -- async on a real clock: the loop never waits ----------------------------------------


def test_the_loop_goes_on_while_an_async_run_is_in_flight():
    gate = threading.Event()
    look = Look()
    echo = set_cadence(Echo(gate=gate), mode="async")
    loop, _ = loop_of([Source(), echo, look], clock=UnthrottledClock(90.0))
    loop.run(20)  # the first run waits on the gate the whole time
    assert [y for _, y, _ in look.seen] == [-1.0] * 20
    gate.set()
    stats = loop.run(2000)
    published = [(y, v) for _, y, v in look.seen if v >= 0]
    assert published, "a run finished and was published"
    assert all(y == 1000 * v + v for y, v in published)  # output of one run, whole
    assert look.torn == 0 and echo.torn_inputs == 0
    assert stats.cadence["echo"].runs >= 1


def test_a_hammering_async_writer_never_shows_a_torn_buffer_on_either_side():
    look = Look()
    echo = set_cadence(Echo(), mode="async")
    loop, _ = loop_of([Source(), echo, look], clock=UnthrottledClock(90.0))
    stats = loop.run(1500)
    assert stats.cadence["echo"].runs > 10
    assert look.torn == 0 and echo.torn_inputs == 0
    for _, y, v in look.seen:
        assert y == -1.0 if v < 0 else y == 1000 * v + v


def test_async_stats_have_the_workers_own_trace_track_and_the_latency():
    echo = set_cadence(Echo(), mode="async", rate_hz=45.0)
    loop, _ = loop_of([Source(), echo, Look()])
    stats = loop.run(12)
    assert "echo (worker)" in stats.tracks
    report = stats.as_dict()["cadence"]["echo"]
    assert report["mode"] == "async" and report["runs"] == 5
    assert report["latency_ms"]["median"] == pytest.approx(2 / 90 * 1e3)
    assert report["latency_frames_max"] == 2
    names = {e["args"]["name"] for e in stats.chrome_trace()["traceEvents"] if e["ph"] == "M"}
    assert "echo (worker)" in names
    worker = [e for e in stats.chrome_trace()["traceEvents"]
              if e["ph"] == "X" and e["name"] == "echo (worker)"]
    assert len(worker) == 5


class SteppedClock(VirtualClock):
    """The virtual timeline, taken for a real clock: the loop never waits for a worker."""

    deterministic = False


class Held(Stage):
    """Writes its run's frame index; run ``i`` first waits for ``gates[i]`` (later runs
    go straight on), and records how long it waited (s)."""

    name = "held"
    writes = ("held",)

    def __init__(self, gates):
        super().__init__()
        self.gates = gates
        self.waited = []

    def setup(self, bank, config):
        self.out = bank.state("held", 1)

    def process(self, frame, bank):
        t0 = time.perf_counter()
        if len(self.waited) < len(self.gates):
            self.gates[len(self.waited)].wait(10)
        self.waited.append(time.perf_counter() - t0)
        self.out[0] = frame.index


class Opener(Stage):
    """In frame ``at[i]`` opens ``gates[i]`` and waits until the worker is idle again."""

    name = "opener"

    def __init__(self, at, gates):
        super().__init__()
        self.at, self.gates = at, gates
        self.worker = None  # set once the loop has made it

    def process(self, frame, bank):
        if frame.index in self.at:
            self.gates[self.at.index(frame.index)].set()
            assert self.worker.wait(10)


def run_held(rate_hz, release_at, frames):
    """An async Held stage at ``rate_hz`` on a 90 Hz SteppedClock, its run ``i`` let go
    in frame ``release_at[i]``; returns the stage, the run's stats and the bank."""
    gates = [threading.Event() for _ in release_at]
    held = set_cadence(Held(gates), mode="async", rate_hz=rate_hz)
    opener = Opener(release_at, gates)
    loop, bank = loop_of([held, opener], clock=SteppedClock(90.0))
    opener.worker = loop.paced["held"].worker
    return held, loop.run(frames), bank


def test_periods_an_async_run_missed_on_a_real_clock_are_counted_as_skipped():
    """30 Hz on a 90 Hz clock: a run is due every 3 frames. Run 1 (frame 0) is held
    until frame 19 and published in frame 20, 17 frames past its successor's due time:
    int(17 / 3) = 5 periods missed; run 2 (frame 20, next due 23) is held until frame
    41, published in 42: int(19 / 3) = 6 more; run 3 (frame 42, next due 45) is held
    until frame 48, published in 49: int(4 / 3) = 1 more. The loop does something for
    the stage in frames 0, 20, 42 and 49 only; run 4 is still in flight when the run
    ends."""
    held, stats, bank = run_held(30.0, [19, 41, 48], 50)
    assert stats.faults == []
    report = stats.cadence["held"]
    assert (report.skipped, report.runs, report.latency_frames_max) == (12, 3, 22)
    assert bank["held"][0] == 42 and bank.version("held") == 42
    assert {t.name: t for t in stats.summary()}["held"].frames == 4
    worker = [e["dur"] * 1e-6 for e in stats.chrome_trace()["traceEvents"]
              if e["ph"] == "X" and e["name"] == "held (worker)"]
    assert len(worker) == 3  # each published run's time on its thread, at least its wait
    assert all(dur >= waited for dur, waited in zip(worker, held.waited, strict=False))
    assert min(held.waited[:3]) > 0


def test_a_run_started_a_frame_or_more_late_sets_a_new_phase():
    """36 Hz on a 90 Hz clock: due every 2.5 frames. Run 1 (frame 0) is held until frame
    3, so run 2 starts in frame 4, 1.5 frames after it was due: the next is due 2.5
    frames after that start (6.5, not 5), so run 3 starts in frame 7, not 6. Runs 2 and
    3 are held until frames 5 and 8; run 3 is published in frame 9."""
    _, stats, bank = run_held(36.0, [3, 5, 8], 10)
    assert stats.faults == [] and bank.version("held") == 7
    assert stats.cadence["held"].latency_frames_max == 4


def hang_prone(gate):
    """An async Held stage waiting on ``gate`` in its first run, on an unthrottled clock
    with a 50 ms hang limit; returns the stage, its loop and the bank."""
    held = set_cadence(Held([gate]), mode="async")
    loop, bank = loop_of([held], UnthrottledClock(90.0), hang_limits_s={"held": 0.05})
    return held, loop, bank


@pytest.mark.parametrize("when", ["while the loop goes on", "as the run ends"])
def test_a_hung_async_run_that_comes_back_is_reported_as_returned_with_its_time(when):
    gate = threading.Event()
    held, loop, bank = hang_prone(gate)
    worker = loop.paced["held"].worker

    def progress(n):
        if not loop.stats.hangs:
            return
        if when == "as the run ends":  # the end of the run waits for it
            threading.Timer(0.1, gate.set).start()
            raise KeyboardInterrupt
        if not gate.is_set():
            gate.set()
            assert worker.wait(10)
        elif not worker.busy and bank.version("held") >= 0:
            raise KeyboardInterrupt

    try:
        stats = loop.run(seconds=10.0, progress=progress)
    finally:
        gate.set()
    (hang,) = stats.hangs
    assert hang.stage == "held" and hang.frame == 0 and hang.returned is True
    assert hang.seconds >= held.waited[0] >= 0.05  # its whole run, not the time noticed


class Slow(Stage):
    """Over any tiny budget: sleeps 2 ms each run."""

    name = "slow"
    writes = ("slow_out",)

    def setup(self, bank, config):
        self.out = bank.state("slow_out", 1)
        self.threads = []

    def process(self, frame, bank):
        self.threads.append(threading.current_thread().name)
        time.sleep(0.002)
        self.out[0] = frame.index


def test_on_overrun_skip_skips_the_next_due_run_and_counts_it():
    slow = set_cadence(Slow(), on_overrun="skip")
    loop, bank = loop_of([slow], budgets={"slow": 1e-6})
    stats = loop.run(10)
    assert stats.cadence["slow"].runs == 5 and stats.cadence["slow"].skipped == 5
    assert bank.version("slow_out") == 8  # ran in frames 0, 2, 4, 6, 8


def test_on_overrun_skip_at_a_rate_skips_the_next_due_run_and_keeps_the_rate():
    """45 Hz on a 90 Hz clock: due in even frames; each run overruns, so every other
    due run is skipped (frames 2 and 6). The frames it skips cost it nothing."""
    slow = set_cadence(Slow(), on_overrun="skip", rate_hz=45.0)
    loop, bank = loop_of([slow], budgets={"slow": 1e-6})
    stats = loop.run(10)
    assert (stats.cadence["slow"].runs, stats.cadence["slow"].skipped) == (3, 2)
    assert bank.version("slow_out") == 8  # ran in frames 0, 4, 8
    assert {t.name: t for t in stats.summary()}["slow"].frames == 3


def test_on_overrun_async_moves_the_stage_to_its_worker():
    slow = set_cadence(Slow(), on_overrun="async")
    loop, bank = loop_of([slow], budgets={"slow": 1e-6})
    stats = loop.run(10)
    report = stats.cadence["slow"]
    assert report.moved_async_at == 0 and report.mode == "async"
    assert slow.threads[0] == threading.main_thread().name
    assert set(slow.threads[1:]) == {"vrshare-slow"}
    assert bank.version("slow_out") == 8  # latency 1: the run started in frame 8


def test_on_overrun_other_than_wait_needs_a_budget():
    with pytest.raises(PipelineError, match="'slow'.*needs a budget"):
        Pipeline([set_cadence(Slow(), on_overrun="skip")])


def test_on_overrun_wait_keeps_the_plain_path():
    slow = Slow()
    loop, _ = loop_of([slow], budgets={"slow": 1e-6})
    stats = loop.run(4)
    assert stats.cadence == {} and len(slow.threads) == 4
    assert stats.summary()[1].over_budget == 4


# -- faults, hangs, Ctrl-C ---------------------------------------------------------------


def test_an_async_stage_that_raises_is_disabled_and_its_last_outputs_stay():
    look = Look()
    echo = set_cadence(Echo(raise_at=3), mode="async", latency_frames=1)
    loop, bank = loop_of([Source(), echo, look])
    stats = loop.run(10)
    (fault,) = stats.faults
    assert fault.stage == "echo" and fault.phase == "process"
    assert "run started in frame 3" in fault.traceback
    assert "echo failed on purpose" in fault.error
    assert stats.frames == 10
    assert [v for _, _, v in look.seen][4:] == [2] * 6  # the run from frame 2 stays


def test_a_hung_async_run_is_reported_with_the_workers_stack_and_the_loop_goes_on():
    gate = threading.Event()
    echo = set_cadence(Echo(gate=gate), mode="async")
    loop, _ = loop_of([Source(), echo, Look()], UnthrottledClock(90.0),
                      hang_limits_s={"echo": 0.05})
    try:
        done = []
        stats = loop.run(seconds=10.0, progress=lambda n: (done.append(n),
                                                            time.sleep(0.001),
                                                            _stop_after_hang(loop)))
    finally:
        gate.set()
    (hang,) = stats.hangs
    assert hang.stage == "echo" and hang.frame == 0
    assert "gate.wait" in hang.stack  # the worker's stack, not the loop's
    assert stats.frames > 1
    assert hang.returned is False  # still stuck when the run ended


def _stop_after_hang(loop):
    if loop.stats.hangs:
        raise KeyboardInterrupt


def test_ctrl_c_ends_a_run_with_an_async_run_in_flight_and_keeps_the_stats(caplog):
    gate = threading.Event()
    echo = set_cadence(Echo(gate=gate), mode="async")
    loop, _ = loop_of([Source(), echo, Look()], clock=UnthrottledClock(90.0))

    def interrupt(n):
        if n == 5:
            raise KeyboardInterrupt

    with caplog.at_level(logging.WARNING, logger="vrshare.pipeline.paced"):
        stats = loop.run(100, progress=interrupt)
    assert [r.getMessage() for r in caplog.records if r.name == "vrshare.pipeline.paced"] == [
        "stage 'echo' was still running on its worker thread when the run ended; what it "
        "writes from now on is not published"]
    assert stats.interrupted and stats.frames == 5
    worker = loop.paced["echo"].worker
    assert not worker.busy  # given up on: no run of its is in flight
    (stuck,) = [t for t in threading.enumerate() if t.ident == worker.ident]
    gate.set()
    stuck.join(5)
    assert not stuck.is_alive()  # it returned, and its outcome was dropped
    assert stats.cadence["echo"].runs == 0


def test_a_worker_given_up_on_does_not_touch_the_next_run():
    gate = threading.Event()
    look = Look()
    loop, _ = loop_of([Source(), set_cadence(Echo(gate=gate), mode="async"), look],
                      clock=UnthrottledClock(90.0))
    loop.run(3)  # the first run is stuck at the gate; the run's end gives up on it
    gate.set()  # it returns now, while the next loop run starts a new one
    loop.run(300)
    published = [(y, v) for _, y, v in look.seen if v >= 0]
    assert published and all(y == 1000 * v + v for y, v in published)


# -- run files --------------------------------------------------------------------------


def test_run_file_keys_set_the_cadence(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('[[stage]]\ntype = "stagekit:Counter"\nmode = "async"\nrate_hz = 10.0\n'
                 'latency_frames = 3\n')
    (stage,), _ = make_stages(load_run_file(f))
    from vrshare.pipeline.cadence import cadence_of

    c = cadence_of(stage)
    assert (c.mode, c.rate_hz, c.latency_frames) == ("async", 10.0, 3)


@pytest.mark.parametrize(("keys", "message"), [
    ('mode = "fast"', "'mode': expected 'sync' or 'async'"),
    ('on_overrun = "drop"', "'on_overrun': expected"),
    ("rate_hz = 0.0", "rate_hz"),
    ("latency_frames = 0", "latency_frames"),
    ("latency_frames = 2", "'latency_frames' applies to mode"),
    ('mode = "async"\non_overrun = "skip"', "'on_overrun' applies to mode"),
])
def test_bad_cadence_keys_name_the_file_and_the_key(tmp_path, keys, message):
    f = tmp_path / "r.toml"
    f.write_text(f'[[stage]]\ntype = "stagekit:Counter"\n{keys}\n')
    with pytest.raises(ConfigError, match=message) as err:
        make_stages(load_run_file(f))
    assert str(f) in str(err.value)


def test_a_stage_class_may_default_to_async():
    class Background(Echo):
        name = "background"
        mode = "async"
        latency_frames = 2

    look = Look()
    loop, _ = loop_of([Source(), Background(), look])
    loop.run(4)
    assert [v for _, _, v in look.seen] == [-1, -1, 0, 0]


# -- process mode ------------------------------------------------------------------------


class Count(Stage):
    """Writes the frame index into ``x`` (4 float64)."""

    name = "count"
    writes = ("x",)

    def setup(self, bank, config):
        self.x = bank.state("x", 4, "float64")

    def process(self, frame, bank):
        self.x[...] = frame.index


def doubled(mode, frames=12, **settings):
    from stagekit import Doubler, DoublerSettings

    seen = []
    loop, bank = loop_of([Count(), set_cadence(Doubler(DoublerSettings(**settings)),
                                               mode=mode, latency_frames=2)])
    stats = loop.run(frames, progress=lambda n: seen.append(
        (float(bank["x2"][0]), bank.version("x2"))))
    faults = loop.pipeline.close()
    return seen, stats, faults


def test_a_process_stage_is_set_up_with_the_runs_config():
    from stagekit import ConfigProbe

    bank = WeightBank()
    probe = set_cadence(ConfigProbe(), mode="process", latency_frames=1)
    pipe = Pipeline([probe])
    pipe.setup(bank, StageConfig(None, frame_hz=72.0))
    try:
        FrameLoop(pipe, bank, VirtualClock(72.0)).run(3)
        assert bank["hz"][0] == 72.0
        stand_in = pipe.stages[0]  # what the pipeline holds describes the stage it runs
        assert stand_in is not probe and stand_in.settings is probe.settings
        assert (stand_in.name, stand_in.writes) == ("config_probe", ("hz",))
    finally:
        assert pipe.close() == []


def test_process_mode_gives_the_same_frames_as_a_worker_thread():
    seen, stats, faults = doubled("process")
    assert seen == doubled("async")[0]
    assert seen[:2] == [(-1.0, -1), (-1.0, -1)] and seen[2] == (0.0, 0)
    assert all(x == 2 * v for x, v in seen[2:])
    assert stats.cadence["doubler"].mode == "process" and stats.cadence["doubler"].runs == 5
    assert stats.counters["doubler"] == {"runs": 6}  # asked of the stage in its process
    assert faults == []


def test_a_process_stages_outputs_come_up_through_copies_counted_by_name():
    backend.transfers.reset()
    _, stats, _ = doubled("process", frames=6)
    assert stats.cadence["doubler"].runs > 0
    assert backend.transfers.by_label.get("to_device:x2", 0) >= stats.cadence["doubler"].runs


def test_a_hung_process_stage_is_reported_without_a_stack_and_given_up_on(caplog):
    from stagekit import Sleeper, SleepSettings

    sleeper = set_cadence(Sleeper(SleepSettings(seconds=3.0)), mode="process")
    loop, _ = loop_of([sleeper], UnthrottledClock(90.0), hang_limits_s={"sleeper": 0.05})

    def progress(n):
        if loop.stats.hangs:
            raise KeyboardInterrupt

    try:
        stats = loop.run(seconds=10.0, progress=progress)
    finally:
        with caplog.at_level(logging.WARNING, logger="vrshare.pipeline.process"):
            loop.pipeline.close()  # still in its run: the process is ended, not asked to close
    assert "stage 'sleeper': its worker process is still in a run; ending it without " \
        "closing the stage there" in [r.getMessage() for r in caplog.records]
    (hang,) = stats.hangs
    assert (hang.stage, hang.frame, hang.limit_s) == ("sleeper", 0, 0.05)
    assert hang.stack == ""  # its thread is in the worker process
    assert hang.returned is False  # the end of the run waits a second for it, not 3 s


def test_a_process_stage_whose_process_dies_is_disabled_naming_the_exit_code():
    from stagekit import Dies

    loop, _ = loop_of([set_cadence(Dies(), mode="process", latency_frames=1)])
    try:
        stats = loop.run(4)
    finally:
        loop.pipeline.close()
    (fault,) = stats.faults
    assert (fault.stage, fault.phase) == ("dies", "process")
    assert fault.error == ("StageProcessError: process: StageProcessError: the worker "
                           "process ended (exit code 7)")


def test_a_process_stage_reads_float32_inputs_times_its_runs_and_reports_its_close(caplog):
    from stagekit import Halver

    class Source32(Stage):
        name = "source32"
        writes = ("h",)

        def setup(self, bank, config):
            self.h = bank.state("h", 3, "float32")

        def process(self, frame, bank):
            self.h[...] = [1.5, -3.0, 1e-3 * frame.index]

    loop, bank = loop_of([Source32(), set_cadence(Halver(), mode="process",
                                                  latency_frames=1)])
    with caplog.at_level(logging.ERROR, logger="vrshare"):
        stats = loop.run(4)
    np.testing.assert_array_equal(bank["h2"], np.float32([0.75, -1.5, 1e-3 * 2 / 2]))
    assert bank["h2"].dtype == np.float32  # declared in the loop's bank as in the child's
    assert "'halver' failed in counters(): counters: LookupError: halver lost count" in \
        [r.getMessage() for r in caplog.records]  # its process lives on, to close it
    runs = [e["dur"] for e in stats.chrome_trace()["traceEvents"]
            if e["ph"] == "X" and e["name"] == "halver (worker)"]
    assert len(runs) == 3 and min(runs) > 0  # each published run's time in its process
    with pytest.raises(StageProcessError) as err:
        loop.pipeline.stages[1].close()
    assert str(err.value) == "close: OSError: halver could not save its state"


def test_a_worker_process_that_does_not_answer_in_time_is_reported_and_ended(
        monkeypatch, caplog):
    from stagekit import SleepSettings, Slowpoke

    from vrshare.pipeline import process

    monkeypatch.setattr(process, "CLOSE_TIMEOUT_S", 0.2)
    loop, _ = loop_of([set_cadence(Slowpoke(SleepSettings(seconds=2.0)), mode="process")])
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        stats = loop.run(2)  # asked for its counts at the end: no answer within 0.2 s
        loop.pipeline.close()  # nor to close: the process is ended
    assert "slowpoke" not in stats.counters
    messages = [r.getMessage() for r in caplog.records]
    assert "'slowpoke' failed in counters(): the worker process did not answer within " \
        "0.2 s (counting)" in messages
    assert "stage 'slowpoke': the worker process did not answer within 0.2 s (closing)" \
        in messages


def test_a_process_stage_that_raises_is_disabled_with_the_childs_traceback():
    seen, stats, _ = doubled("process", raise_at=4)
    (fault,) = stats.faults
    assert fault.stage == "doubler" and "doubler failed on purpose" in fault.error
    assert "in the stage's worker process" in fault.traceback
    assert [v for _, v in seen][6:] == [2] * 6  # the run from frame 2 stays visible


def test_a_process_stage_failing_in_setup_names_the_stage_and_the_error():
    from vrshare.pipeline import StageSetupError

    with pytest.raises(StageSetupError) as err:
        doubled("process", fail_setup=True)
    assert str(err.value) == ("stage 'doubler' failed in setup: StageProcessError: setup in "
                              "the worker process: OSError: doubler cannot open its model")


def test_a_process_stage_must_pickle():
    from vrshare.pipeline import StageSetupError

    class Local(Count):  # defined in a function: cannot be sent to a process
        name = "local"
        mode = "process"
        writes = ("y",)

        def setup(self, bank, config):
            bank.state("y", 1)

    with pytest.raises(StageSetupError) as err:
        loop_of([Local()])
    message = str(err.value)
    assert message.startswith("stage 'local' failed in setup: StageProcessError: cannot "
                              "start the worker process: ")
    assert message.endswith("(a process-mode stage is sent pickled: its class must be "
                            "importable by module path)")


def test_a_process_stage_whose_process_ends_in_setup_names_the_exit_code():
    from stagekit import Dies, DiesSettings

    from vrshare.pipeline import StageSetupError

    with pytest.raises(StageSetupError) as err:
        loop_of([set_cadence(Dies(DiesSettings(in_setup=True)), mode="process")])
    assert str(err.value) == ("stage 'dies' failed in setup: StageProcessError: the worker "
                              "process ended (exit code 7) while setting up")


def test_closing_a_process_stage_frees_its_shared_memory():
    from multiprocessing.shared_memory import SharedMemory

    from stagekit import Doubler

    loop, _ = loop_of([Count(), set_cadence(Doubler(), mode="process")])
    loop.run(3)
    proxy = loop.pipeline.views["doubler"]
    blocks = [shm.name for shm, _ in (*proxy.inputs.values(), *proxy.outputs.values())]
    assert len(blocks) == 2
    loop.pipeline.close()
    assert not proxy.child.is_alive()
    for name in blocks:
        with pytest.raises(FileNotFoundError):
            SharedMemory(name)


# -- what an off-loop run is handed, the report, the move to the worker -------------------


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


class MovesToWorker(Stage):
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
    loop, _ = loop_of([MovesToWorker()], budgets={"slow": 0.005})
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
