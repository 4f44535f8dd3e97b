"""The worker process's side of a process-mode stage (``_serve``, ``_ChildBank``), run
in this process: the loop's messages are queued on a pipe first, then ``_serve`` answers
them on the main thread (where it may set its SIGINT handling) and returns, as the
child does when closed. The whole round trip through a real worker process is in
test_core_async.py; this runs the child's code where tests can see every line of it.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import pytest

from vrshare import Stage, StageConfig, backend
from vrshare.pipeline import Frame
from vrshare.pipeline.process import _ChildBank, _serve

FRAME = Frame(3, 1.0, 1.02, 1 / 90)


class Scaler(Stage):
    """out = 2 * inp + the frame's index; ``fail`` names the call that raises."""

    name = "scaler"
    reads = ("inp",)
    writes = ("out", "seen")

    def __init__(self, fail: str = "") -> None:
        super().__init__()
        self.fail = fail
        self.runs = 0
        self.closed = False

    def setup(self, bank, config):
        self.bank = bank
        if self.fail == "setup":
            raise ValueError("no setup on purpose")
        self.config = config
        self.out = bank.state("out", (2, 3), "float64")
        self.seen = bank.state("seen", 1, "int32")
        self.scratch = bank.state("scratch", 4, "int16")  # not among its writes: kept here

    def process(self, frame, bank):
        if self.fail == "process" and self.runs == 0:
            self.runs += 1
            raise RuntimeError("no run on purpose")
        self.out[...] = 2 * bank["inp"] + frame.index
        self.seen[0] = frame.index
        self.runs += 1

    def counters(self):
        return {"runs": self.runs}

    def close(self):
        self.closed = True
        if self.fail == "close":
            raise OSError("no close on purpose")


class Blocks:
    """The shared blocks of one test, unlinked at its end as the loop unlinks them:
    each attached first (the child leaves the blocks it makes to the loop's resource
    tracker, which attaching registers them with)."""

    def __init__(self) -> None:
        self.open: dict[str, SharedMemory] = {}

    def make(self, size: int) -> SharedMemory:
        shm = SharedMemory(create=True, size=size)
        self.open[shm.name] = shm
        return shm

    def attach(self, name: str) -> SharedMemory:
        if name not in self.open:
            self.open[name] = SharedMemory(name)
        return self.open[name]

    def unlink(self) -> None:
        for shm in self.open.values():
            shm.close()
            shm.unlink()


@pytest.fixture
def blocks():
    made = Blocks()
    yield made
    made.unlink()


@pytest.fixture
def serve(blocks):
    """``serve(stage, *messages)`` -> the replies, after ``_serve`` has returned.

    ``hang_up``: the loop closes its end before anything is answered ("now") or once
    the stage is ready ("after ready", from a thread while ``_serve`` waits)."""
    previous = signal.getsignal(signal.SIGINT)

    def run(stage, *messages, inputs=None, hang_up=""):
        parent, child = mp.Pipe()
        if inputs is None:
            inp = blocks.make(2 * 3 * 8)
            array = np.ndarray((2, 3), np.float64, buffer=inp.buf)
            array[...] = np.arange(6).reshape(2, 3)
            inputs = [("inp", inp.name, (2, 3), "<f8")]
        for message in messages:
            parent.send(message)
        replies = []
        closer = None
        if hang_up == "now":
            parent.close()
        elif hang_up == "after ready":
            def close_after_ready():
                replies.append(parent.recv())
                parent.close()

            closer = threading.Thread(target=close_after_ready)
            closer.start()
        try:
            _serve(child, stage, StageConfig(None, frame_hz=72.0), inputs)
        finally:
            signal.signal(signal.SIGINT, previous)
            if closer is not None:
                closer.join()
            made = stage.bank.blocks if hasattr(stage, "bank") else {}
            for shm in made.values():
                blocks.attach(shm.name)  # the outputs it made, whatever the test reads
        while not hang_up and parent.poll():
            replies.append(parent.recv())
        return replies

    return run


def outputs(ready, blocks) -> dict[str, np.ndarray]:
    """The arrays of the output blocks a ``ready`` reply names."""
    kind, specs = ready
    assert kind == "ready"
    arrays = {}
    for name, block, shape, dtype in specs:
        arrays[name] = np.ndarray(shape, np.dtype(dtype), buffer=blocks.attach(block).buf)
    return arrays


def test_it_runs_the_stage_on_the_shared_blocks_and_answers_each_message(serve, blocks):
    stage = Scaler()
    replies = serve(stage, ("run", FRAME), ("counters", None),
                    ("run", FRAME._replace(index=4)), ("close", None))
    kinds = [r[0] for r in replies]
    assert kinds == ["ready", "done", "counters", "done", "closed"]
    out = outputs(replies[0], blocks)
    assert sorted(out) == ["out", "seen"]  # only its writes, in blocks the loop maps
    assert out["out"].dtype == np.float64 and out["seen"].dtype == np.int32
    assert np.array_equal(out["out"], 2 * np.arange(6).reshape(2, 3) + 4)
    assert out["seen"][0] == 4
    _, seconds, error = replies[1]
    assert error is None and 0 <= seconds < 60
    assert replies[2] == ("counters", {"runs": 1})  # counted between the two runs
    assert replies[4] == ("closed", None) and stage.closed
    assert stage.config.frame_hz == 72.0  # the config it was sent


def test_it_reads_the_loops_input_block_as_it_is_when_a_run_starts(serve, blocks):
    class Redeclares(Scaler):
        def setup(self, bank, config):
            super().setup(bank, config)
            self.inp = bank.state("inp", (2, 3), "float32")  # a read may be fetched so too

        def process(self, frame, bank):
            super().process(frame, bank)
            self.fetched = (self.inp is bank["inp"], self.inp.dtype, float(self.inp[1, 2]))

    inp = blocks.make(6 * 4)
    array = np.ndarray((2, 3), np.float32, buffer=inp.buf)
    array[...] = 10.0
    stage = Redeclares()
    replies = serve(stage, ("run", FRAME), ("close", None),
                    inputs=[("inp", inp.name, (2, 3), "<f4")])
    assert np.array_equal(outputs(replies[0], blocks)["out"], np.full((2, 3), 23.0))
    assert stage.fetched == (True, np.float32, 10.0)


def test_it_runs_on_numpy_whatever_backend_the_loop_chose(serve, monkeypatch):
    """The child inherits the loop's environment, VRSHARE_BACKEND too; its shared
    blocks are host memory all the same."""
    active = []

    class Probe(Scaler):
        def setup(self, bank, config):
            active.append(backend.active().name)
            super().setup(bank, config)

    monkeypatch.setenv("VRSHARE_BACKEND", "strict")
    try:
        serve(Probe(), ("close", None))
    finally:
        backend.select("numpy")
    assert active == ["numpy"]


def test_outputs_start_at_zero_and_keep_other_buffers_out_of_the_blocks(serve, blocks):
    stage = Scaler()
    replies = serve(stage, ("close", None))
    out = outputs(replies[0], blocks)
    assert not out["out"].any() and not out["seen"].any()
    assert "scratch" not in out
    assert stage.scratch.shape == (4,) and stage.scratch.dtype == np.int16


def test_a_setup_error_is_sent_with_its_traceback_and_ends_it(serve):
    replies = serve(Scaler(fail="setup"), ("run", FRAME))
    assert len(replies) == 1  # no run answered
    kind, (message, trace) = replies[0]
    assert kind == "error" and message == "ValueError: no setup on purpose"
    assert trace.startswith("Traceback (most recent call last):\n  File ")
    assert trace.endswith("\nValueError: no setup on purpose\n")  # the error, not its line


def test_a_run_that_raises_is_answered_and_the_next_run_still_served(serve, blocks):
    stage = Scaler(fail="process")
    replies = serve(stage, ("run", FRAME), ("run", FRAME), ("close", None))
    assert [r[0] for r in replies] == ["ready", "done", "done", "closed"]
    _, _, error = replies[1]
    assert error[0] == "RuntimeError: no run on purpose" and "Traceback" in error[1]
    assert replies[2][2] is None and outputs(replies[0], blocks)["seen"][0] == 3


def test_a_close_that_raises_is_answered_with_its_error(serve):
    replies = serve(Scaler(fail="close"), ("close", None), ("run", FRAME))
    assert [r[0] for r in replies] == ["ready", "closed"]  # nothing served after close
    assert replies[1][1][0] == "OSError: no close on purpose"


@pytest.mark.parametrize("when", ["now", "after ready"])
def test_it_ends_quietly_when_the_loop_goes_away(serve, when):
    stage = Scaler()
    replies = serve(stage, hang_up=when)  # returns: no close came, the pipe ended
    assert [r[0] for r in replies] == ([] if when == "now" else ["ready"])
    assert stage.runs == 0 and not stage.closed


def test_a_counters_error_is_answered_and_the_stage_still_served(serve):
    class Uncountable(Scaler):
        def counters(self):
            raise KeyError("no count on purpose")

    stage = Uncountable()
    replies = serve(stage, ("counters", None), ("run", FRAME), ("close", None))
    assert [r[0] for r in replies] == ["ready", "error", "done", "closed"]
    assert replies[1][1][0] == "KeyError: 'no count on purpose'" and stage.closed


def test_an_input_block_that_is_gone_is_a_setup_error(serve):
    replies = serve(Scaler(), inputs=[("inp", "vrshare_no_such_block", (2, 3), "<f8")])
    kind, (message, _) = replies[0]
    assert kind == "error" and message.startswith("FileNotFoundError")


def test_an_unknown_message_is_ignored(serve):
    replies = serve(Scaler(), ("stop", None), ("counters", None), ("close", None))
    assert [r[0] for r in replies] == ["ready", "counters", "closed"]


def test_it_ignores_ctrl_c_which_the_loop_handles(serve):
    seen = []

    class Probe(Scaler):
        def process(self, frame, bank):
            seen.append(signal.getsignal(signal.SIGINT))

    serve(Probe(), ("run", FRAME), ("close", None))
    assert seen == [signal.SIG_IGN]


def test_the_child_bank_shares_a_declared_write_once(blocks):
    bank = _ChildBank(("out",))
    first = bank.state("out", 3, "float32")
    blocks.attach(bank.blocks["out"].name)
    again = bank.state("out", 3, "float32")
    assert again is first and list(bank.blocks) == ["out"]
    assert bank.blocks["out"].size >= 3 * 4
    assert np.shares_memory(first, np.ndarray((3,), np.float32, buffer=bank.blocks["out"].buf))
    with pytest.raises(Exception, match="out"):
        bank.state("out", 4, "float32")  # a second declaration must match the first
