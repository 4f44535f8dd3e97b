"""Worker: the thread an async stage's runs go to (one run at a time, outcome read after)."""

import threading
import time
from types import SimpleNamespace

from vrshare import backend
from vrshare.pipeline.stage import Frame
from vrshare.pipeline.watchdog import IDLE
from vrshare.pipeline.worker import Worker

GUARD_S = 10.0  # longest wait for something that should happen at once (s)


def frame(i: int) -> Frame:
    return Frame(index=i, t_now=i / 90, t_display=(i + 1) / 90, budget_s=1 / 90)


def test_a_run_reports_its_frame_duration_and_thread():
    seen = []
    release = threading.Event()

    def work(f):
        seen.append((f.index, threading.current_thread().name))
        release.wait(GUARD_S)

    w = Worker("echo", work)
    assert not w.busy and w.ident is None and w.t0 == IDLE and w.error is None
    assert w.frame is None and w.began == IDLE and w.seconds == 0.0  # no run yet
    w.start(frame(3))
    assert w.busy and not w.wait(0.05) and w.frame.index == 3
    release.set()
    assert w.wait(GUARD_S) and not w.busy
    assert seen == [(3, "vrshare-echo")] and w.ident is not None
    assert w.t0 == IDLE and w.began != IDLE and 0 < w.seconds < GUARD_S and w.error is None
    thread = w.ident
    w.start(frame(4))
    assert w.wait(GUARD_S) and seen[-1][0] == 4 and w.ident == thread  # the same thread
    assert w.stop(GUARD_S) and w.ident is None


def test_what_a_run_raises_is_handed_to_the_loop_and_the_next_run_starts_clean():
    def work(f):
        if f.index == 1:
            raise KeyError("boom")

    w = Worker("faulty", work)
    w.start(frame(1))
    assert w.wait(GUARD_S) and isinstance(w.error, KeyError)
    w.hang = "a report"
    w.start(frame(2))
    assert w.error is None and w.hang is None
    assert w.wait(GUARD_S) and w.error is None
    assert w.stop(GUARD_S)


def test_a_stopped_worker_starts_a_new_thread_on_the_next_run():
    names = []
    w = Worker("again", lambda f: names.append(threading.get_ident()))
    assert w.stop(GUARD_S)  # never started: nothing to stop
    w.start(frame(0))
    assert w.wait(GUARD_S) and w.stop(GUARD_S)
    w.start(frame(1))
    assert w.wait(GUARD_S) and len(names) == 2 and w.ident is not None
    assert w.stop(GUARD_S)


def test_a_run_stuck_past_stop_is_given_up_and_its_outcome_dropped():
    began, release = threading.Event(), threading.Event()

    def work(f):
        if f.index == 0:
            began.set()
            release.wait(GUARD_S)
            raise ValueError("the stuck run's")

    w = Worker("stuck", work)
    w.start(frame(0))
    assert began.wait(GUARD_S)
    old, old_thread = w.ident, w._thread
    assert old_thread.daemon  # a run stuck for good never keeps the process from exiting
    assert not w.stop(0.05)
    assert not w.busy and w.wait(0)  # no run of this worker is in flight any more
    w.start(frame(1))  # on a fresh thread
    assert w.wait(GUARD_S) and w.ident != old and w.error is None
    release.set()  # the old thread returns; what it raised belongs to no run
    old_thread.join(GUARD_S)
    assert not old_thread.is_alive()
    assert w.error is None and w.frame.index == 1
    assert w.stop(GUARD_S)


def test_on_a_gpu_each_run_is_queued_on_the_workers_own_stream_and_finished_before_done(
        monkeypatch):
    """The worker's thread makes one non-blocking CUDA stream, runs every run inside it
    and synchronises it before the run counts as done (here a stand-in for CuPy's)."""
    events = []

    class Stream:
        made = []

        def __init__(self, non_blocking=False):
            self.non_blocking, self.entered = non_blocking, False
            Stream.made.append(self)

        def __enter__(self):
            self.entered = True
            return self

        def __exit__(self, *exc):
            self.entered = False

        def synchronize(self):
            events.append(("synchronize", self.entered))

    gpu = SimpleNamespace(is_gpu=True, xp=SimpleNamespace(cuda=SimpleNamespace(Stream=Stream)))
    monkeypatch.setattr(backend, "active", lambda: gpu)
    w = Worker("echo", lambda f: events.append(("run", f.index, [s.entered for s in Stream.made])))
    for i in range(2):
        w.start(frame(i))
        assert w.wait(GUARD_S) and w.error is None
    assert events == [("run", 0, [True]), ("synchronize", True),
                      ("run", 1, [True]), ("synchronize", True)]
    (stream,) = Stream.made
    assert stream.non_blocking
    assert w.stop(GUARD_S) and not stream.entered  # left when the thread ends


def test_a_run_that_returns_while_the_worker_stops_keeps_its_time():
    """Its outcome is dropped, but how long it took is what a hang report needs."""
    began, release = threading.Event(), threading.Event()
    took = []

    def work(f):
        t0 = time.perf_counter()
        began.set()
        release.wait(GUARD_S)
        took.append(time.perf_counter() - t0)

    w = Worker("echo", work)
    w.start(frame(0))
    assert began.wait(GUARD_S)  # stopped before it began, the run would never be made
    threading.Timer(0.05, release.set).start()
    assert w.stop(GUARD_S) and w.t0 == IDLE
    assert took and took[0] <= w.seconds < GUARD_S
