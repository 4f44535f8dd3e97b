"""Small stages for tests (importable as ``stagekit:Name`` with tests/ on sys.path), and a
way to run them."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from vrshare import FrameLoop, Pipeline, Stage, StageConfig, VirtualClock, WeightBank


class Write(Stage):
    """Writes ``frame.index`` into a (4,) buffer named by ``name``."""

    name = "write"
    writes = ("a",)

    def setup(self, bank, config):
        self.out = bank.state(self.writes[0], 4)

    def process(self, frame, bank):
        self.out[...] = frame.index


def make(name: str, reads=(), writes=(), raise_at: int | None = None,
         exc: type[BaseException] = RuntimeError) -> Stage:
    """A stage that copies the sum of its inputs + 1 into each of its outputs."""

    class Made(Stage):
        def setup(self, bank, config):
            self.outs = [bank.state(w, 4) for w in self.writes]
            self.calls = 0

        def process(self, frame, bank):
            if raise_at is not None and frame.index == raise_at:
                raise exc(f"{self.name} failed on purpose")
            total = sum(float(bank[r][0]) for r in self.reads) + 1.0
            for out in self.outs:
                out[...] = total
            self.calls += 1

    Made.name = name
    Made.reads = tuple(reads)
    Made.writes = tuple(writes)
    return Made()


def loop_of(stages, clock=None, *, steps=(), sources=(), budgets=None, cadences=None,
            **loop_keys):
    """Set ``stages`` up on a fresh bank and make their frame loop on ``clock`` (a 90 Hz
    virtual one by default), with ``steps`` and ``loop_keys`` (hang limits...) passed to
    it; returns the loop and the bank."""
    bank = WeightBank()
    pipe = Pipeline(stages, sources=sources, budgets_s=budgets, cadences=cadences)
    pipe.setup(bank, StageConfig(None))
    return FrameLoop(pipe, bank, clock or VirtualClock(90), steps, **loop_keys), bank


def run(stages, frames=10, **keys):
    """:func:`loop_of` ``stages`` (``keys`` as there) run for ``frames`` frames; returns
    the run's stats, the bank and the loop."""
    loop, bank = loop_of(stages, **keys)
    return loop.run(frames), bank, loop


@dataclass
class CounterSettings:
    step: float = 1.0  # added each frame


class Counter(Stage):
    """Adds ``step`` to the ``counter`` buffer every frame (a plug-in test stage)."""

    name = "counter"
    writes = ("counter",)
    Settings = CounterSettings

    def setup(self, bank, config):
        self.counter = bank.state("counter", (1,), "float64")

    def process(self, frame, bank):
        self.counter += self.settings.step

    def counters(self):
        return {"steps": int(self.counter[0] / self.settings.step)}


@dataclass
class SleepSettings:
    seconds: float = 0.002


class Sleeper(Stage):
    """Sleeps each frame: for budget overruns and Ctrl-C tests."""

    name = "sleeper"
    writes = ("slept",)
    Settings = SleepSettings

    def setup(self, bank, config):
        self.out = bank.state("slept", (1,))

    def process(self, frame, bank):
        time.sleep(self.settings.seconds)
        self.out[0] = np.float32(frame.index)


@dataclass
class DoublerSettings:
    raise_at: int = -1  # frame whose run raises
    fail_setup: bool = False


class Doubler(Stage):
    """Writes twice its input ``x`` into ``x2``, counting runs; module-level so that it
    pickles (process-mode tests)."""

    name = "doubler"
    reads = ("x",)
    writes = ("x2",)
    Settings = DoublerSettings

    def setup(self, bank, config):
        if self.settings.fail_setup:
            raise OSError("doubler cannot open its model")
        self.x = bank["x"]
        self.x2 = bank.state("x2", self.x.shape, "float64")
        self.x2[...] = -1.0
        self.runs = 0

    def process(self, frame, bank):
        if frame.index == self.settings.raise_at:
            raise ValueError("doubler failed on purpose")
        self.x2[...] = 2 * self.x
        self.runs += 1

    def counters(self):
        return {"runs": self.runs}


class ConfigProbe(Stage):
    """Writes the frame rate its ``setup`` was given into ``hz`` every frame; module-level
    so that it pickles (process-mode tests)."""

    name = "config_probe"
    writes = ("hz",)

    def setup(self, bank, config):
        self.hz = bank.state("hz", 1, "float64")
        self.rate = config.frame_hz

    def process(self, frame, bank):
        self.hz[0] = self.rate


@dataclass
class DiesSettings:
    in_setup: bool = False  # end in setup rather than in the first run


class Dies(Stage):
    """Ends its own process (exit code 7) in its first run, or in setup: module-level so
    that it pickles (process-mode tests)."""

    name = "dies"
    writes = ("d",)
    Settings = DiesSettings

    def setup(self, bank, config):
        if self.settings.in_setup:
            os._exit(7)
        bank.state("d", 1)

    def process(self, frame, bank):
        os._exit(7)


class Halver(Stage):
    """Writes half its float32 input ``h`` into ``h2`` and fails in ``counters`` and in
    ``close``; module-level so that it pickles (process-mode tests)."""

    name = "halver"
    reads = ("h",)
    writes = ("h2",)

    def setup(self, bank, config):
        self.h, self.h2 = bank["h"], bank.state("h2", 3, "float32")

    def process(self, frame, bank):
        self.h2[...] = self.h / 2

    def counters(self):
        raise LookupError("halver lost count")

    def close(self):
        raise OSError("halver could not save its state")


class Slowpoke(Stage):
    """Counts and closes slowly (``seconds`` each): a worker process that does not answer
    in time; module-level so that it pickles (process-mode tests)."""

    name = "slowpoke"
    writes = ("s",)
    Settings = SleepSettings

    def setup(self, bank, config):
        bank.state("s", 1)

    def process(self, frame, bank):
        pass

    def counters(self):
        time.sleep(self.settings.seconds)
        return {"late": 1}

    def close(self):
        time.sleep(self.settings.seconds)
