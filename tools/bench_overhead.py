"""Framework overhead per stage per frame.

Runs a pipeline of N trivial stages (each adds one to its own 4-float bank buffer)
through the real frame loop, unthrottled; a plain Python loop calling the same N
stages' ``process(frame, bank)``; and a bare Python loop calling the N functions those
stages call on the same arrays: in one process, alternating rounds so that machine
noise hits all alike. Prints microseconds per frame for each (wall, and this thread's
CPU time, which a machine shared with other work disturbs less), and the overhead per
stage per frame of the frame loop over each of the two plain loops (aim: <= 0.5 us over
the bare functions, on CPU time). Over the stages' own calls is what the frame loop
adds (clock, timings, versions, watchdog marks, the stats row); over the bare functions
adds the call of each stage's method too.

    python tools/bench_overhead.py [--stages 8] [--frames 20000] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from benchkit import Column, Table, Timer, write_json

from vrshare import Frame, FrameLoop, Pipeline, Stage, StageConfig, UnthrottledClock, WeightBank

AIM_US = 0.5  # framework overhead per stage per frame (us)


def touch(buf: np.ndarray) -> None:
    buf[0] += 1.0


def make_stage(i: int) -> Stage:
    class Touch(Stage):
        name = f"touch{i}"
        writes = (f"buf{i}",)

        def setup(self, bank, config):
            self.buf = bank.state(self.writes[0], 4)

        def process(self, frame, bank):
            touch(self.buf)

    return Touch()


def framework(n_stages: int, frames: int) -> Timer:
    """The time of ``frames`` frames through Pipeline + FrameLoop."""
    bank = WeightBank()
    pipe = Pipeline([make_stage(i) for i in range(n_stages)])
    pipe.setup(bank, StageConfig(None))
    loop = FrameLoop(pipe, bank, UnthrottledClock(90))
    with Timer() as t:
        stats = loop.run(frames)
    assert stats.frames == frames and bank["buf0"][0] == frames
    return t


def plain(n_stages: int, frames: int) -> Timer:
    """The time of the same stages' ``process`` calls in a plain loop (no books)."""
    bank = WeightBank()
    stages = [make_stage(i) for i in range(n_stages)]
    for st in stages:
        st.setup(bank, StageConfig(None))
    frame = Frame(0, 0.0, 0.0, 1 / 90)
    with Timer() as t:
        for _ in range(frames):
            for st in stages:
                st.process(frame, bank)
    assert bank["buf0"][0] == frames
    return t


def bare(n_stages: int, frames: int) -> Timer:
    """The time of the same work as a plain loop of function calls."""
    bufs = [np.zeros(4, np.float32) for _ in range(n_stages)]
    fns = [touch] * n_stages
    with Timer() as t:
        for _ in range(frames):
            for fn, buf in zip(fns, bufs, strict=True):
                fn(buf)
    assert bufs[0][0] == frames
    return t


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stages", type=int, default=8)
    p.add_argument("--frames", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported")
    p.add_argument("--json", type=str, default=None, help="save the figures here")
    args = p.parse_args(argv)

    loops = {"framework": framework, "plain": plain, "bare": bare}
    for run in loops.values():  # warm-up
        run(args.stages, 500)
    timers: dict[str, list[Timer]] = {side: [] for side in loops}
    for _ in range(args.rounds):
        for side, run in loops.items():
            timers[side].append(run(args.stages, args.frames))

    def us(side: str, clock: str) -> float:
        return statistics.median(getattr(t, clock) for t in timers[side]) / args.frames * 1e6

    result = {"stages": args.stages, "frames": args.frames, "rounds": args.rounds,
              "aim_us_per_stage": AIM_US}
    for clock, key in (("wall_s", "wall"), ("cpu_s", "cpu")):
        fw_us, plain_us, bare_us = (us(side, clock) for side in loops)
        result[key] = {"framework_us_per_frame": fw_us, "plain_us_per_frame": plain_us,
                       "bare_us_per_frame": bare_us, "ratio": fw_us / bare_us,
                       "overhead_us_per_stage_per_frame": (fw_us - bare_us) / args.stages,
                       "loop_us_per_stage_per_frame": (fw_us - plain_us) / args.stages}
    with Table([Column("loop", 34, "<"), Column("wall us/frame", 13),
                Column("cpu us/frame", 12)]) as table:
        for side, label in (("framework", "vrshare Pipeline+FrameLoop"),
                            ("plain", "plain loop of the stages' process"),
                            ("bare", "bare loop of the functions")):
            table.add_row(label, f"{result['wall'][f'{side}_us_per_frame']:.2f}",
                          f"{result['cpu'][f'{side}_us_per_frame']:.2f}")
    for key in ("wall", "cpu"):
        r = result[key]
        print(f"{key}: ratio {r['ratio']:.2f}x; overhead over the functions "
              f"{r['overhead_us_per_stage_per_frame']:.2f} us per stage per frame "
              f"(aim <= {AIM_US:.2f}); over the stages' calls "
              f"{r['loop_us_per_stage_per_frame']:.2f}")
    print(f"{args.stages} stages, {args.frames} frames, median of {args.rounds} rounds")
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
