"""Writes an interrupt must not cut in two: a signal that lands inside ``held`` reaches
its handler once, in order, when the block ends; outside, at once."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from vrshare.interrupts import defer, held


@pytest.fixture
def handler():
    """A SIGTERM handler written as the command's is: defer first, else note and raise."""
    seen: list[int] = []

    def handle(signum, frame):
        if defer(signum):
            return
        seen.append(signum)
        raise KeyboardInterrupt(f"signal {signum} ({len(seen)})")

    previous = signal.signal(signal.SIGTERM, handle)
    yield seen
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_outside_a_held_block_is_handled_at_once(handler):
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    assert handler == [signal.SIGTERM] and not defer(signal.SIGTERM)


def test_a_signal_inside_a_held_block_is_handled_once_when_it_ends(handler):
    done = []
    with pytest.raises(KeyboardInterrupt, match=r"\(1\)"):
        with held:
            signal.raise_signal(signal.SIGTERM)
            assert handler == []  # only noted
            done.append("write")  # reached: the block goes on to its end
    assert done == ["write"] and handler == [signal.SIGTERM]
    assert held.depth == 0 and held.pending == []


def test_a_signal_sent_to_the_process_while_other_threads_run_waits_too(handler):
    """Sent to the process, a signal may be taken by any thread; Python still runs the
    handler on the main thread wherever it is, so blocking it on the main thread alone
    would not hold it."""
    stop = threading.Event()
    others = [threading.Thread(target=stop.wait) for _ in range(3)]
    for thread in others:
        thread.start()
    done = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with held:
                os.kill(os.getpid(), signal.SIGTERM)
                deadline = time.monotonic() + 30.0  # only a hang guard
                while not held.pending and time.monotonic() < deadline:
                    stop.wait(0.001)  # the handler runs in here, whichever thread took it
                done.append("write")
    finally:
        stop.set()
        for thread in others:
            thread.join()
    assert done == ["write"] and handler == [signal.SIGTERM]


def test_nested_blocks_hold_until_the_outermost_ends(handler):
    with pytest.raises(KeyboardInterrupt):
        with held:
            with held:
                signal.raise_signal(signal.SIGTERM)
            assert handler == [] and held.depth == 1
    assert handler == [signal.SIGTERM]


def test_signals_noted_while_held_each_reach_the_handler_in_order(handler):
    with pytest.raises(KeyboardInterrupt, match=r"\(1\)") as raised:
        with held:
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
    assert handler == [signal.SIGTERM] * 2  # both counted; the first one's error is raised
    assert "(2)" not in str(raised.value)


def test_an_error_inside_the_block_still_lets_the_held_signal_through(handler):
    with pytest.raises(KeyboardInterrupt) as raised:
        with held:
            signal.raise_signal(signal.SIGTERM)
            raise OSError("disk full")
    assert isinstance(raised.value.__context__, OSError)  # the write's error is kept, chained
    assert handler == [signal.SIGTERM] and held.depth == 0


def test_other_threads_writes_are_not_held():
    """Handlers run only on the main thread, so no signal can land in another thread's
    write: there the block does nothing."""
    depths = []

    def write():
        with held:
            depths.append((held.depth, defer(signal.SIGTERM)))

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert depths == [(0, False)] and held.pending == []
