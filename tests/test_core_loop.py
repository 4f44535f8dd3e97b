"""The frame loop's run: what it logs (first overruns, faults), how it ends (Ctrl-C,
SystemExit, a step raising), what it reports (counts, close faults, stamps and
snapshots) and what it asks of a clock."""

import logging
import re
import time

import pytest
from stagekit import loop_of, make, run

from vrshare import Pipeline, Stage, StageConfig, WeightBank
from vrshare.pipeline import Frame
from vrshare.pipeline.loop import Activity


def test_a_stages_first_overrun_is_logged_once_with_its_time_and_budget(monkeypatch, caplog):
    """The loop times each stage by two perf_counter readings; here the stage moves that
    clock itself, by exactly its budget (2^-10 s: not over) in frame 0 and by three times
    it in frames 1 and 2."""
    now = [1.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    budget = 2.0 ** -10

    class Tick(Stage):
        name = "tick"

        def process(self, frame, bank):
            now[0] += budget * (1 if frame.index == 0 else 3)

    with caplog.at_level(logging.WARNING, logger="vrshare"):
        stats, _, _ = run([Tick()], frames=3, budgets={"tick": budget})
    assert {s.name: s for s in stats.summary()}["tick"].over_budget == 2
    assert [r.getMessage() for r in caplog.records] == [
        "stage 'tick' overran its budget (2.930 ms > 0.977 ms) in frame 1; further "
        "overruns are counted in the stats"]


def test_a_fault_is_logged_as_a_stages_or_a_steps_with_its_traceback(caplog):
    with caplog.at_level(logging.ERROR, logger="vrshare"):
        stats, _, _ = run([make("bad", writes=("b",), raise_at=3)], frames=5)
    (fault,) = stats.faults
    assert fault.describe() == ("'bad' raised in frame 3 and was disabled: "
                                "RuntimeError: bad failed on purpose")
    assert [r.getMessage() for r in caplog.records] == [
        f"stage {fault.describe()}\n{fault.traceback}"]
    caplog.clear()

    def present(frame, bank):
        raise RuntimeError("present failed on purpose")

    loop, _ = loop_of([make("a", writes=("a",))], steps=[("present", present)])
    with caplog.at_level(logging.ERROR, logger="vrshare"), \
            pytest.raises(RuntimeError, match="present failed on purpose"):
        loop.run(3)
    (fault,) = loop.stats.faults
    assert fault.describe() == ("'present' raised in frame 0 and ended the run: "
                                "RuntimeError: present failed on purpose")
    assert (loop.stats.ending, loop.stats.ending_detail) == (
        "error", "step 'present' raised in frame 0: RuntimeError: present failed on purpose")
    assert loop.stats.interrupted_in is None  # it had returned (raised): nothing running
    assert [r.getMessage() for r in caplog.records] == [
        f"step {fault.describe()}\n{fault.traceback}"]


def test_a_stage_failing_in_close_is_reported_and_the_others_still_close(caplog):
    closed = []

    class Closes(Stage):
        def __init__(self, name, fails=False):
            super().__init__(name=name)
            self.fails = fails

        def process(self, frame, bank):
            pass

        def close(self):
            closed.append(self.name)
            if self.fails:
                raise OSError("device gone")

    pipe = Pipeline([Closes("a"), Closes("b", fails=True), Closes("c")])
    pipe.setup(WeightBank(), StageConfig(None))
    with caplog.at_level(logging.ERROR, logger="vrshare"):
        (fault,) = pipe.close()
    assert closed == ["c", "b", "a"]  # every stage, the reverse of set-up
    assert (fault.stage, fault.frame, fault.phase) == ("b", -1, "close")
    assert fault.describe() == "'b' failed in close: OSError: device gone"
    assert [r.getMessage() for r in caplog.records] == ["stage 'b' failed in close: device gone"]
    assert pipe.close() == []  # closed once


def test_a_run_counts_itself_and_is_the_running_loop_only_while_it_runs():
    """What the vrshare command's signal handler reads (vrshare.pipeline.loop.Activity)."""
    seen = []

    class Look(Stage):
        name = "look"

        def process(self, frame, bank):
            seen.append(Activity.running)

    before = Activity.started
    stats, _, loop = run([Look()], frames=2)
    assert (stats.ending, stats.ending_detail) == ("completed", "")
    loop.run(1)
    assert Activity.started == before + 2 and seen == [loop] * 3
    assert Activity.running is None


def test_a_run_needs_frames_or_seconds_and_a_clock_only_a_rate_and_frames():
    class Ticks:
        """A clock of the protocol's two members only (no ``deterministic``)."""

        frame_hz = 90.0

        def __init__(self):
            self.k = -1

        def wait_frame(self):
            self.k += 1
            return Frame(self.k, self.k / 90, (self.k + 1) / 90, 1 / 90)

    stats, bank, loop = run([make("a", writes=("a",))], frames=3, clock=Ticks())
    assert stats.frames == 3 and bank.version("a") == 2
    assert stats.budget_s == 1 / 90  # the frame budget: the clock's frame period
    with pytest.raises(ValueError) as err:
        loop.run()
    assert str(err.value) == "give frames or seconds (or both)"


def test_keyboard_interrupt_ends_the_run_cleanly_with_its_stats(caplog):
    with caplog.at_level(logging.WARNING, logger="vrshare"):
        stats, _, _ = run([make("a", writes=("a",)),
                           make("k", reads=("a",), writes=("k",), raise_at=7,
                                exc=KeyboardInterrupt)], frames=100)
    assert stats.interrupted and stats.frames == 7 and not stats.faults
    assert (stats.ending, stats.ending_detail) == ("interrupted",
                                                   "KeyboardInterrupt: k failed on purpose")
    first, where = [r.getMessage() for r in caplog.records]
    assert first == "interrupted after 7 frames (KeyboardInterrupt: k failed on purpose)"
    assert re.fullmatch(r"the run ended while 'k' was running in frame 7 \(for \d+\.\d{3} s\)",
                        where), where


def test_system_exit_from_a_stage_ends_the_run_without_its_frame():
    stats, bank, _ = run([make("a", writes=("a",)),
                          make("quit", reads=("a",), writes=("q",), raise_at=2, exc=SystemExit)],
                         frames=10)
    assert stats.frames == 2 and bank.version("q") == 1  # frame 2 did not complete
    (fault,) = stats.faults
    assert (fault.stage, fault.frame, fault.phase) == ("quit", 2, "exit")
    assert (stats.ending, stats.ending_detail) == (
        "SystemExit", "'quit' raised SystemExit('quit failed on purpose') in frame 2")


def test_a_stage_at_its_own_rate_whose_outputs_cannot_be_published_is_disabled(
        monkeypatch):
    def full(names, *args):
        if "p" in names:
            raise OSError("ring full")

    paced = make("p", writes=("p",))
    paced.rate_hz = 45.0
    loop, bank = loop_of([make("a", writes=("a",)), paced])
    monkeypatch.setattr(bank, "stamp", full)
    stats = loop.run(4)
    (fault,) = stats.faults
    assert (fault.stage, fault.frame, fault.phase) == ("p", 0, "publish")
    assert fault.error == "OSError: ring full"
    assert loop.active_stages == ["a"] and bank.version("a") == 3


def test_a_subscribed_buffer_is_stamped_with_its_frame_and_time_and_published():
    loop, bank = loop_of([make("a", writes=("a",))])
    bank.subscribe("a")
    loop.run(3)
    buf = bank.buffer("a")
    assert (buf.version, buf.t_version) == (2, 2 / 90)
    snap = bank.snapshot("a")
    assert snap.version == 2 and snap.data.tolist() == [1.0] * 4


def test_a_stage_failing_to_count_is_logged_and_the_others_are_counted(caplog):
    class Counts(Stage):
        def __init__(self, name, counts):
            super().__init__(name=name)
            self._counts = counts

        def process(self, frame, bank):
            pass

        def counters(self):
            if self._counts is None:
                raise KeyError("drops")
            return self._counts

    with caplog.at_level(logging.ERROR, logger="vrshare"):
        stats, _, _ = run([Counts("bad", None), Counts("good", {"drops": 2.0})], frames=1)
    assert stats.counters == {"good": {"drops": 2}}
    assert [r.getMessage() for r in caplog.records] == ["'bad' failed in counters(): 'drops'"]


def test_a_failed_publish_disables_the_stage_and_the_run_goes_on(monkeypatch):
    writer = make("w", writes=("a",))
    reader = make("r", reads=("a",), writes=("b",))
    loop, bank = loop_of([writer, reader])
    bank.subscribe("a")
    assert loop.run(2).faults == []
    ring = bank.buffer("a").ring
    monkeypatch.setattr(ring, "publish", lambda *a: (_ for _ in ()).throw(OSError("device")))
    stats = loop.run(3)
    assert stats.frames == 5 and [f.phase for f in stats.faults] == ["publish"]
    assert loop.active_stages == ["r"] and bank.snapshot("a").version == 1
